"""When each source is due, and how fast workers beat their heartbeat: pure (takes the config and `now`).

The scheduler keeps each source on a fixed cadence (due, due + interval, ...), the first polls spread as
`monitor run` spreads them. A poll still queued when its source is due again is not queued twice (the queue's
lock): the missed turn collapses into the waiting one, as APScheduler's `coalesce` does in `monitor run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.config import Config, SourceConfig

FIRST_POLL_SPREAD = timedelta(seconds=30)  # as monitor.daemon: first polls spread over at most this
HEARTBEAT_MAX_S = 10.0  # Procrastinate's default heartbeat
HEARTBEAT_MIN_S = 1.0
STALLED_BEATS = 5  # a worker silent for this many heartbeats is dead: its running jobs go back in the queue


@dataclass(frozen=True)
class Beats:
    heartbeat_s: float  # a worker writes its heartbeat this often
    stalled_after_s: float  # the scheduler retries the jobs of a worker silent this long

    @classmethod
    def of(cls, config: Config) -> Beats:
        """Short enough that a dead worker's source is polled again within its interval; workers and the scheduler
        read the same config, so they agree."""
        intervals = [s.interval.total_seconds() for s in config.sources if s.enabled] or [600.0]
        heartbeat = min(HEARTBEAT_MAX_S, max(HEARTBEAT_MIN_S, min(intervals) / 10))
        return cls(heartbeat_s=heartbeat, stalled_after_s=heartbeat * STALLED_BEATS)


class Cadence:
    """Each enabled source's next due time; `due(now)` returns those due and moves them one interval on."""

    def __init__(self, sources: list[SourceConfig], start: datetime) -> None:
        self.sources = {s.name: s for s in sources}
        shortest = min((s.interval for s in sources), default=FIRST_POLL_SPREAD)
        spread = min(FIRST_POLL_SPREAD, shortest, timedelta(seconds=0.5) * len(sources))
        self.next_at = {s.name: start + spread * i / max(len(sources), 1) for i, s in enumerate(sources)}

    def due(self, now: datetime) -> list[SourceConfig]:
        found = []
        for name, at in self.next_at.items():
            if at > now:
                continue
            source = self.sources[name]
            turns = (now - at) // source.interval + 1  # a scheduler that fell behind skips the turns it missed
            self.next_at[name] = at + source.interval * turns
            found.append(source)
        return found
