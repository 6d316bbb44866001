"""Alert decisions: which spikes, source-health changes and digests become outbox rows, and when a failed
delivery is tried again.

Pure: does no I/O; takes counts, states and `now`, returns decisions. The outbox (outbox.py) reads the
store, asks here, writes the rows and sends the mail.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from monitor.spikes import DetectorParams, evaluate
from monitor.types import CountSeries

RETRY_FIRST = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)
# A pending alert older than this when mail becomes possible is not sent any more: it is stale news.
STALE_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class NewAlert:
    """A row to add to the outbox."""

    kind: str  # spike | health | digest
    topic: str | None = None
    source: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    count: int | None = None
    expected: float | None = None
    score: float | None = None
    details: str | None = None  # JSON


@dataclass(frozen=True)
class SourceHealth:
    """A source's state as the health check sees it (from the `sources` table)."""

    name: str
    type: str
    failures: int
    last_error: str | None
    last_ok_at: datetime | None
    last_error_at: datetime | None
    note: str | None  # collector health note, e.g. a selector that matched nothing


def spike_alerts(
    series_by_topic: Mapping[str, CountSeries],
    last_spike_at: Mapping[str, datetime | None],
    params: DetectorParams,
) -> list[NewAlert]:
    """One alert per topic whose current window is a spike and whose cooldown has passed."""
    alerts = []
    for topic, series in series_by_topic.items():
        spike = evaluate(topic, series, params, last_spike_at.get(topic))
        if spike is not None:
            alerts.append(
                NewAlert(
                    kind="spike",
                    topic=topic,
                    window_start=spike.window_start,
                    window_end=spike.window_end,
                    count=spike.count,
                    expected=round(spike.expected, 3),
                    score=round(spike.score, 3),
                )
            )
    return alerts


def health_alerts(
    sources: Sequence[SourceHealth],
    last: Mapping[str, tuple[str, datetime]],
    *,
    failures: int,
    quiet: timedelta,
    now: datetime,
) -> list[NewAlert]:
    """`broken` when a source fails `failures` polls in a row (or its selectors stop matching), then one
    `recovered` when it works again. `last` maps source -> (state, created_at) of its last health alert.
    A source that flaps is told about at most once per `quiet` period."""
    alerts = []
    for source in sources:
        previous_state, previous_at = last.get(source.name) or ("recovered", None)
        broken = source.failures >= failures or bool(
            source.note and source.failures == 0 and source.last_ok_at is not None
        )
        healthy = source.failures == 0 and not source.note
        if previous_state != "broken" and broken and (previous_at is None or now - previous_at >= quiet):
            reason = source.last_error if source.failures else source.note
            alerts.append(
                NewAlert(
                    kind="health",
                    source=source.name,
                    count=source.failures,
                    details=json.dumps(
                        {"state": "broken", "failures": source.failures, "error": reason, "type": source.type},
                        ensure_ascii=False,
                    ),
                )
            )
        elif previous_state == "broken" and healthy:
            alerts.append(
                NewAlert(
                    kind="health",
                    source=source.name,
                    count=0,
                    details=json.dumps(
                        {
                            "state": "recovered",
                            "type": source.type,
                            "broken_since": previous_at.isoformat() if previous_at else None,
                        },
                        ensure_ascii=False,
                    ),
                )
            )
    return alerts


def digest_due(at: str | None, zone: tzinfo, now: datetime, last_digest_for: str | None) -> str | None:
    """The local day label of a digest that is due now (at or after `at` local time, not yet made), else None."""
    if not at:
        return None
    local_now = now.astimezone(zone)
    hour, minute = (int(x) for x in at.split(":"))
    if local_now.time() < time(hour, minute):
        return None
    day = local_now.date().isoformat()
    return None if last_digest_for == day else day


def next_attempt(attempts: int, now: datetime) -> datetime:
    """When to try a failed delivery again: 1 min, 2, 4, ... capped at an hour."""
    delay: timedelta = RETRY_FIRST * (2 ** max(0, min(attempts - 1, 16)))
    return now + min(delay, RETRY_CAP)
