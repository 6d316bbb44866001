"""`monitor check --probe`: fetch each source once, store nothing, and say what it holds.

An operator sees a dead address, a robots.txt refusal or a feed too shallow for its poll interval
before relying on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.collectors import SOURCE_TYPES
from monitor.collectors.fetch import Fetcher
from monitor.config import Config, SourceConfig
from monitor.exceptions import FetchError, ParseError
from monitor.pipeline import limits_of, open_fetcher
from monitor.types import SourceState
from monitor.workers import Workers

log = logging.getLogger("monitor.probe")


@dataclass(frozen=True)
class ProbeReport:
    source: str
    type: str
    answer: str  # "ok" or why not
    items: int = 0
    dated: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    interval_s: float = 0.0
    warnings: tuple[str, ...] = ()

    @property
    def per_day(self) -> float | None:
        if self.oldest is None or self.newest is None or self.dated < 2:
            return None
        days = max((self.newest - self.oldest).total_seconds() / 86400, 1 / 24)
        return self.dated / days

    def note(self) -> str:
        notes = list(self.warnings)
        if self.answer == "ok" and self.items == 0:
            notes.append("no items")
        elif self.answer == "ok" and self.dated < self.items:
            notes.append(f"{self.items - self.dated} items without a date")
        span = (self.newest - self.oldest).total_seconds() if self.oldest and self.newest else None
        if span is not None and self.dated >= 2 and span < self.interval_s:
            notes.append("the feed covers less time than the poll interval: posts may be missed")
        return "; ".join(notes)

    def as_row(self) -> dict[str, Any]:
        per_day = self.per_day
        return {
            "source": self.source,
            "type": self.type,
            "answer": self.answer,
            "items": self.items,
            "dated": self.dated,
            "oldest": self.oldest.isoformat() if self.oldest else None,
            "newest": self.newest.isoformat() if self.newest else None,
            "per_day": round(per_day, 1) if per_day is not None else None,
            "note": self.note(),
        }


async def probe_sources(
    config: Config, sources: Sequence[SourceConfig], *, clock: Callable[[], datetime]
) -> list[ProbeReport]:
    workers = Workers(config.topics)  # parsing off the event loop and bounded in time, as in a poll
    try:
        async with open_fetcher(config, workers, clock=clock) as fetcher:
            return list(await asyncio.gather(*(_probe(s, fetcher, clock()) for s in sources)))
    finally:
        workers.close()


async def _probe(source: SourceConfig, fetcher: Fetcher, now: datetime) -> ProbeReport:
    session = fetcher.session(source.name, limits_of(source))
    try:
        collected = await SOURCE_TYPES[source.type].collect(source, session, SourceState(name=source.name), now)
    except (FetchError, ParseError) as exc:
        return ProbeReport(source.name, source.type, answer=str(exc))
    except Exception as exc:  # a collector's bug must not hide the other sources' reports
        log.exception("probe_crashed source=%s", source.name)
        return ProbeReport(source.name, source.type, answer=f"internal error: {type(exc).__name__}: {exc}")
    dates = [i.published for i in collected.items if i.published is not None]
    return ProbeReport(
        source.name,
        source.type,
        answer="ok",
        items=len(collected.items),
        dated=len(dates),
        oldest=min(dates, default=None),
        newest=max(dates, default=None),
        interval_s=source.interval.total_seconds(),
        warnings=collected.warnings,
    )
