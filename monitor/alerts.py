"""Alert decisions: which spikes, source-health changes and digests become outbox rows.

Pure: does no I/O; takes counts, states and `now`, returns decisions. The outbox (monitor/outbox/) reads the
store, asks here, and writes the rows; what happens to a row on its way out is decided in `delivery.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta, tzinfo

import msgspec

from monitor.config import Config
from monitor.spikes import DetectorParams, evaluate
from monitor.types import AlertKind, CountSeries, DigestDetails, HealthDetails, HealthState, NewAlert


def detector_params(config: Config) -> DetectorParams:
    """The detector's parameters from the config's `alerts` section (the daemon, `monitor plot` and the demo)."""
    a = config.alerts
    return DetectorParams(window=a.window, baseline=a.baseline, min_count=a.min_count, cooldown=a.cooldown)


class SourceHealth(msgspec.Struct, frozen=True):
    """A source's state as the health check sees it (from the `sources` table)."""

    name: str
    type: str
    failures: int  # consecutive failed polls now
    last_error: str | None
    last_ok_at: datetime | None
    last_error_at: datetime | None
    note: str | None  # collector health note, e.g. a selector that matched nothing
    run_failures: int = 0  # the current run of failures, or the last one once the source works again
    failing_since: datetime | None = None  # that run's first failure


class LastHealth(msgspec.Struct, frozen=True):
    """The source's last health alert: what it said and when."""

    state: HealthState
    created_at: datetime


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
                    kind=AlertKind.SPIKE,
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
    last: Mapping[str, LastHealth],
    *,
    failures: int,
    quiet: timedelta,
    now: datetime,
) -> list[NewAlert]:
    """`broken` when a source fails `failures` polls in a row (or its selectors stop matching), then one
    `recovered` when it works again, saying how many polls had failed and since when. `last` maps source ->
    its last health alert. A source that flaps is told about at most once per `quiet` period."""
    alerts = []
    for source in sources:
        previous = last.get(source.name)
        previous_state = previous.state if previous else HealthState.RECOVERED
        broken = source.failures >= failures or bool(
            source.note and source.failures == 0 and source.last_ok_at is not None
        )
        healthy = source.failures == 0 and not source.note
        if (
            previous_state is not HealthState.BROKEN
            and broken
            and (previous is None or now - previous.created_at >= quiet)
        ):
            alerts.append(
                NewAlert(
                    kind=AlertKind.HEALTH,
                    source=source.name,
                    count=source.failures,
                    details=HealthDetails(
                        state=HealthState.BROKEN,
                        source_type=source.type,
                        failures=source.failures,
                        error=source.last_error if source.failures else source.note,
                        since=source.failing_since if source.failures else None,
                    ),
                )
            )
        elif previous_state is HealthState.BROKEN and healthy:
            alerts.append(
                NewAlert(
                    kind=AlertKind.HEALTH,
                    source=source.name,
                    count=0,
                    details=HealthDetails(
                        state=HealthState.RECOVERED,
                        source_type=source.type,
                        failures=source.run_failures,
                        since=source.failing_since if source.run_failures else None,
                    ),
                )
            )
    return alerts


def digest_alert(day: str, now: datetime) -> NewAlert:
    """The digest of the 24 hours up to now, for the local `day`."""
    return NewAlert(
        kind=AlertKind.DIGEST, window_start=now - timedelta(days=1), window_end=now, details=DigestDetails(day=day)
    )


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
