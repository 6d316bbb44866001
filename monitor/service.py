"""The composition root shared by `monitor poll` and `monitor run`: polling, then alerts and mail.

Everything here wires lower layers together; the clock comes in from the command line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.collectors.fetch import Fetcher
from monitor.config import Config, SourceConfig
from monitor.daemon import Daemon
from monitor.match import Matcher
from monitor.pipeline import poll_sources
from monitor.store import Store
from monitor.types import RunResult

log = logging.getLogger("monitor")


@dataclass(frozen=True)
class ResultRow:
    result: RunResult

    def as_row(self) -> dict[str, Any]:
        r = self.result
        if r.skipped:
            status = "skipped"
        elif not r.ok:
            status = "FAILED"
        elif r.not_modified:
            status = "not modified"
        else:
            status = "ok"
        note = r.error or "; ".join(r.warnings)
        return {"source": r.source, "status": status, "items": r.items, "new": r.new_posts,
                "updated": r.updated_posts, "matches": r.matches, "ms": r.duration_ms, "note": note or ""}


@dataclass(frozen=True)
class PollSummary:
    results: tuple[ResultRow, ...]
    alerts: tuple[str, ...] = ()  # one line per alert raised or delivery problem

    def headline(self) -> str:
        rs = [r.result for r in self.results]
        failed = [r.source for r in rs if not r.ok]
        text = (f"{len(rs)} sources polled: {sum(r.ok and not r.skipped for r in rs)} ok, {len(failed)} failed"
                f"{' (' + ', '.join(failed) + ')' if failed else ''}, {sum(r.skipped for r in rs)} skipped; "
                f"{sum(r.new_posts for r in rs)} new posts, {sum(r.updated_posts for r in rs)} updated, "
                f"{sum(r.matches for r in rs)} topic matches")
        return "\n".join([text, *self.alerts])


async def poll_once(config: Config, store: Store, sources: Sequence[SourceConfig], *,
                    clock: Callable[[], datetime]) -> PollSummary:
    matcher = Matcher(config.topics)
    async with Fetcher(per_host=config.defaults.per_host, user_agent=config.defaults.user_agent,
                       clock=clock) as fetcher:
        results = await poll_sources(sources, fetcher=fetcher, store=store, matcher=matcher, clock=clock,
                                     respect_backoff=False)
    return PollSummary(results=tuple(ResultRow(r) for r in results))


async def run_daemon(config: Config, store: Store, *, clock: Callable[[], datetime]) -> int:
    daemon = Daemon(config, store, clock=clock)
    return await daemon.run()
