"""`monitor health`: is the daemon alive, are the sources working, does the outbox drain?

Pure: does no I/O; takes what the store says and `now`, returns one check per concern (each with its reason
when it fails). The command reads the store, prints the failing reasons one per line, and exits 1 if any.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.types import SourceState, StuckDelivery
from monitor.units import format_duration

HEARTBEAT_STALE = timedelta(minutes=3)  # the daemon writes its heartbeat each minute
DELIVERY_STUCK = timedelta(hours=1)  # an alert not delivered within this long is a problem


@dataclass(frozen=True)
class Check:
    """One health check: what it looked at, whether it passed, and why (a one-line reason)."""

    check: str  # daemon | source | outbox
    subject: str  # the source's name, the channel, or "" for the daemon
    ok: bool
    detail: str

    def as_row(self) -> dict[str, object]:
        return {"check": self.check, "subject": self.subject, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class DaemonSeen:
    """The daemon as the store shows it."""

    running: bool  # a process holds the daemon lock now
    holder: str | None  # who holds (or last held) it
    heartbeat_at: datetime | None  # its last heartbeat, if it ever ran on this store


def _ago(now: datetime, when: datetime) -> str:
    """An age for people: to the second under 10 minutes, to the minute above."""
    seconds = int(max((now - when).total_seconds(), 0))
    return format_duration(timedelta(seconds=seconds if seconds < 600 else seconds // 60 * 60))


def daemon_check(seen: DaemonSeen, now: datetime) -> Check:
    if seen.heartbeat_at is None:
        return Check("daemon", "", False, "daemon: no `monitor run` has ever run on this store")
    age = _ago(now, seen.heartbeat_at)
    if not seen.running:
        return Check("daemon", "", False, f"daemon: not running (last heartbeat {age} ago, {seen.holder})")
    if now - seen.heartbeat_at > HEARTBEAT_STALE:
        limit = format_duration(HEARTBEAT_STALE)
        return Check("daemon", "", False, f"daemon: heartbeat {age} old (over {limit}): {seen.holder} is stuck")
    return Check("daemon", "", True, f"daemon: running ({seen.holder}), heartbeat {age} ago")


def source_checks(
    enabled: Sequence[str], states: Sequence[SourceState], *, failures: int, now: datetime
) -> list[Check]:
    """A source fails the check at `failures` consecutive failed polls (`health.failures`, as its health alert)."""
    by_name = {s.name: s for s in states}
    checks = []
    for name in enabled:
        state = by_name.get(name)
        if state is None:
            checks.append(Check("source", name, True, f"source {name}: not polled yet"))
        elif state.failures >= failures:
            since = f" since {_ago(now, state.last_ok_at)} ago (last success)" if state.last_ok_at else ", never worked"
            checks.append(
                Check(
                    "source",
                    name,
                    False,
                    f"source {name}: {state.failures} failed polls in a row{since}: {state.last_error or 'no error'}",
                )
            )
        else:
            note = f" ({state.failures} failed polls, limit {failures})" if state.failures else ""
            checks.append(Check("source", name, True, f"source {name}: ok{note}"))
    return checks


def outbox_checks(stuck: Sequence[StuckDelivery], now: datetime) -> list[Check]:
    """One failing check per channel with deliveries pending beyond DELIVERY_STUCK."""
    by_channel: dict[str, list[StuckDelivery]] = {}
    for s in stuck:
        by_channel.setdefault(s.channel, []).append(s)
    if not by_channel:
        return [Check("outbox", "", True, f"outbox: no alert waiting over {format_duration(DELIVERY_STUCK)}")]
    checks = []
    for channel, items in sorted(by_channel.items()):
        oldest = min(items, key=lambda s: s.created_at)
        error = f": {oldest.error}" if oldest.error else ""
        checks.append(
            Check(
                "outbox",
                channel,
                False,
                f"outbox: {len(items)} alert(s) undelivered on {channel} for over {format_duration(DELIVERY_STUCK)}"
                f" (oldest #{oldest.alert_id}, {_ago(now, oldest.created_at)} old, {oldest.attempts} attempts{error})",
            )
        )
    return checks
