"""`monitor worker`: runs the polls and alert evaluations the scheduler (or a poll) queued, through the same
pipeline as `monitor run` (pipeline.run_source, outbox.Outbox); any number of them, on any machine.

A poll holds its source's cluster-wide lock (SourceLocks: a requeued job whose first run is still going skips),
and each request one of its host's cluster-wide slots (HostSlots) as well as this process's own. SIGTERM or
SIGINT: no new job starts, running ones get STOP_GRACE_S, then are cancelled (their transaction rolls back and
the scheduler queues the source again at its next turn).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from datetime import datetime
from types import FrameType

from monitor.config import Config, SourceConfig
from monitor.metrics import Listen, Metrics, serve_metrics
from monitor.outbox import Outbox
from monitor.pipeline import keep_robots, open_fetcher, recall_robots, run_source
from monitor.scaleout import postgres_store, queue
from monitor.scaleout.timing import Beats
from monitor.store import ClusterStore, this_process
from monitor.workers import Workers

log = logging.getLogger("monitor.worker")

STOP_GRACE_S = 5.0  # as monitor.daemon: in-flight polls get this long to finish when the worker is stopped
CONCURRENCY = 16  # polls at once per worker (as one pass of `monitor poll`: memory stays bounded)


class EarlySignals:
    """SIGTERM/SIGINT from the start of `monitor worker`, before Procrastinate installs its own handlers (the
    queue's schema, the store, the HTTP client are set up first): kept, so the worker stops cleanly without
    taking a job instead of dying by the default action. Procrastinate saves this handler and puts it back
    after its own first signal; a signal after that ends the process at once, as its default did before.
    Left: the two queries Procrastinate runs before it installs its handlers (a signal then ends the process;
    no job is held yet)."""

    def __init__(self) -> None:
        self.seen: signal.Signals | None = None
        self._handing_over = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def hand_over(self) -> None:
        """From now on a signal here is the second one (Procrastinate had the first)."""
        self._handing_over = True

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        sig = signal.Signals(signum)
        if self._handing_over:
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        elif self.seen is None:
            self.seen = sig


class Jobs:
    """What the two tasks do in this worker."""

    def __init__(
        self,
        config: Config,
        store: ClusterStore,
        app: queue.App,
        clock: Callable[[], datetime],
        figures: Metrics | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.app = app
        self.clock = clock
        self.sources: dict[str, SourceConfig] = {s.name: s for s in config.sources}
        self.workers = Workers(config.topics)
        self.outbox = Outbox(config, store)
        self.slots = store.host_slots(config.defaults.per_host)
        self.source_locks = store.source_locks()
        self.fetcher = open_fetcher(config, self.workers, clock=clock, host_gate=self.slots.hold)
        recall_robots(self.fetcher, store, clock())  # the cluster's kept robots.txt files: no host asked again
        self.figures = figures
        self.polls = 0
        self.failed = 0

    async def poll(self, name: str) -> None:
        source = self.sources.get(name)
        if source is None or not source.enabled:  # the scheduler's config names a source this one does not
            log.warning("poll_skipped source=%s: not an enabled source of this worker's config", name)
            return
        async with self.source_locks.hold(name) as ours:
            if not ours:  # a requeued job whose first run is still going (its worker stalled, not dead)
                log.warning("poll_skipped source=%s: another worker is still polling it", name)
                return
            result = await run_source(
                source,
                fetcher=self.fetcher,
                store=self.store,
                matcher=self.workers.matcher,
                now=self.clock(),
                workers=self.workers,
            )
        keep_robots(self.fetcher, self.store)  # for the workers that start after this one
        self.polls += 1
        self.failed += 0 if result.ok else 1
        if self.figures is not None:
            self.figures.polled(result)
        damage = self.store.damage()
        if damage is not None:  # every further write would fail the same way: stop, as monitor run does
            log.error("store_damaged error=%s: stopping", damage)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        if result.ok and result.matches:
            await queue.defer_evaluate(self.app)

    async def evaluate(self) -> None:
        """Alerts due now, then their delivery (one evaluation at a time in the cluster: the job's lock)."""
        raised = self.outbox.evaluate(self.clock())
        delivered = await self.outbox.deliver_async(self.clock())
        if self.figures is not None:
            self.figures.alerts_raised(raised)
            self.figures.deliveries((d.channel, d.status) for d in delivered)


async def run_worker(
    config: Config,
    store: ClusterStore,
    *,
    clock: Callable[[], datetime],
    concurrency: int,
    metrics: Listen | None = None,
) -> int:
    """Run jobs until SIGTERM/SIGINT; `metrics` serves this worker's figures (its polls, alerts, deliveries)."""
    early = EarlySignals()
    url = postgres_store(config, "monitor worker").url
    queue.ensure_schema(store)
    figures = serve_metrics(metrics)
    try:
        return await _work(config, store, url, clock, concurrency, figures, early)
    finally:
        if figures is not None:
            figures.close()


async def _work(
    config: Config,
    store: ClusterStore,
    url: str,
    clock: Callable[[], datetime],
    concurrency: int,
    figures: Metrics | None,
    early: EarlySignals,
) -> int:
    beats = Beats.of(config)
    app = queue.open_app(url, store)
    jobs = Jobs(config, store, app, clock, figures)
    if figures is not None:
        figures.scheduled(sum(s.enabled for s in config.sources))  # the sources this worker can poll
    queue.register(app, jobs.poll, jobs.evaluate)
    name = str(this_process())
    try:
        async with jobs.fetcher, app.open_async():
            log.info(
                "worker_started name=%s sources=%d concurrency=%d heartbeat_s=%g store=%s",
                name,
                sum(s.enabled for s in config.sources),
                concurrency,
                beats.heartbeat_s,
                store.location,
            )
            if early.seen is not None:
                log.info("signal_received signal=%s: stopping before the first job", early.seen.name)
            else:
                early.hand_over()
                await queue.run_worker(
                    app,
                    name=name,
                    concurrency=concurrency,
                    heartbeat_s=beats.heartbeat_s,
                    stalled_after_s=beats.stalled_after_s,
                    grace_s=STOP_GRACE_S,
                )
    finally:
        jobs.workers.close()
        jobs.slots.close()
        jobs.source_locks.close()
    log.info("worker_stopped polls=%d failed=%d", jobs.polls, jobs.failed)
    return 1 if store.damage() is not None else 0
