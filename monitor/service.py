"""The composition root shared by `monitor poll` and `monitor run`: polling, then alerts and mail.

Everything here wires lower layers together; the clock comes in from the command line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from monitor.config import Config, SourceConfig
from monitor.outbox import Outbox
from monitor.pipeline import open_fetcher, poll_sources
from monitor.rematch import topic_changes
from monitor.store import Store
from monitor.types import AlertKind, AlertRow, HealthDetails, RunResult
from monitor.workers import Workers

log = logging.getLogger("monitor")


class ResultRow(msgspec.Struct, frozen=True):
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
        return {
            "source": r.source,
            "status": status,
            "items": r.items,
            "new": r.new_posts,
            "updated": r.updated_posts,
            "matches": r.matches,
            "ms": r.duration_ms,
            "note": note or "",
        }


class PollSummary(msgspec.Struct, frozen=True):
    results: tuple[ResultRow, ...]
    alerts: tuple[str, ...] = ()  # one line per alert raised or delivery problem

    def headline(self) -> str:
        rs = [r.result for r in self.results]
        failed = [r.source for r in rs if not r.ok]
        text = (
            f"{len(rs)} sources polled: {sum(r.ok and not r.skipped for r in rs)} ok, {len(failed)} failed"
            f"{' (' + ', '.join(failed) + ')' if failed else ''}, {sum(r.skipped for r in rs)} skipped; "
            f"{sum(r.new_posts for r in rs)} new posts, {sum(r.updated_posts for r in rs)} updated, "
            f"{sum(r.matches for r in rs)} topic matches"
        )
        return "\n".join([text, *self.alerts])


async def poll_once(
    config: Config,
    store: Store,
    sources: Sequence[SourceConfig],
    *,
    clock: Callable[[], datetime],
    on_result: Callable[[RunResult], None] | None = None,
    alerts: bool = True,
) -> PollSummary:
    """`monitor poll`: every source once (our own backoff ignored), then alert evaluation and delivery.
    `on_result` is called as each source finishes (progress on a terminal). `alerts=False` (a daemon holds the
    store: alerts are its job) polls and stores only. Raises StoreCorrupt if a poll found the store damaged."""
    topic_changes(config, store, clock())  # a changed topic set is logged, pointing at `monitor rematch`
    workers = Workers(config.topics, prepare_in_workers=False)  # a small parse worker: peak memory of a poll
    try:
        async with open_fetcher(config, workers, clock=clock) as fetcher:
            results = await poll_sources(
                sources,
                fetcher=fetcher,
                store=store,
                matcher=workers.matcher,
                clock=clock,
                respect_backoff=False,
                workers=workers,
                on_result=on_result,
            )
    finally:
        workers.close()
    damage = store.damage()
    if damage is not None:
        raise damage
    if not alerts:
        return PollSummary(results=tuple(ResultRow(r) for r in results))
    outbox = Outbox(config, store)
    raised = outbox.evaluate(clock())
    lines = [f"alert #{a.id} raised: {_describe(a)}" for a in raised]
    lines += [d.line() for d in await outbox.deliver_async(clock()) if d.status != "off"]
    if outbox.settings is None and store.undelivered():
        lines.append("mail is off (no alerts.email in the config): alerts are recorded, see `monitor alerts`")
    return PollSummary(results=tuple(ResultRow(r) for r in results), alerts=tuple(lines))


def _describe(alert: AlertRow) -> str:
    if alert.kind is AlertKind.SPIKE:
        return f"{alert.topic}: {alert.count} posts (expected {alert.expected or 0:.1f})"
    if alert.kind is AlertKind.HEALTH:
        details = alert.details
        state = f" {details.state.value}" if isinstance(details, HealthDetails) else ""
        return f"source {alert.source}{state}"
    if alert.kind is AlertKind.CAMPAIGN:
        topic = f"{alert.topic}: " if alert.topic else ""
        return f"{topic}campaign, cluster {alert.cluster_id} spread by {alert.count} voices"
    return "daily digest" if alert.kind is AlertKind.DIGEST else alert.kind.value
