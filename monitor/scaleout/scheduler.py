"""`monitor run --role scheduler`: queues each source's poll when it is due; the workers run them.

One scheduler per store: it holds the store's daemon lock (as `monitor run` does) and writes the daemon
heartbeat that `monitor health` reads. A second scheduler waits as a standby and takes over when the lock goes.
Besides the polls it queues an alert evaluation every minute (health and digest alerts, delivery retries),
puts the jobs of dead workers back in the queue, and prunes the fetch log and old jobs hourly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from monitor import fetchlog
from monitor.config import Config
from monitor.exceptions import MonitorError, StoreLocked
from monitor.metrics import Listen, Metrics, serve_metrics
from monitor.scaleout import postgres_store, queue
from monitor.scaleout.timing import Beats, Cadence
from monitor.store import ClusterStore, this_process

log = logging.getLogger("monitor.scheduler")

TICK = timedelta(minutes=1)  # as monitor.daemon: alerts evaluated at least this often
STORE_HEARTBEAT = timedelta(minutes=1)  # the store's `daemon.heartbeat_at` (read by `monitor health`)
HEARTBEAT = timedelta(hours=1)  # the log's heartbeat line, the fetch log's and the old jobs' pruning
STEP_S = 0.5  # how often due sources are queued (a poll starts at most this late)
STANDBY_RETRY_S = 2.0  # a standby scheduler asks for the lock this often (besides the lock's own wait)


class Scheduler:
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
        self.beats = Beats.of(config)
        self.cadence = Cadence([s for s in config.sources if s.enabled], clock())
        self.stopping = asyncio.Event()
        self.queued = 0
        self.coalesced = 0
        self.requeued = 0
        self.figures = figures
        if figures is not None:
            figures.scheduled(len(self.cadence.sources))
        self._next: dict[str, float] = {}

    def _time_for(self, chore: str, every_s: float) -> bool:
        now = time.monotonic()
        if now < self._next.get(chore, 0.0):
            return False
        self._next[chore] = now + every_s
        return True

    async def run(self) -> None:
        while not self.stopping.is_set():
            try:
                await self.step()
            except StoreLocked:
                raise  # another scheduler took the lock while ours was lost: this one must stop
            except MonitorError as exc:
                log.warning("scheduler_step_failed error=%s", exc)
            except queue.QueueError as exc:  # the database is away: try again at the next step
                log.warning("scheduler_step_failed error=%r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), STEP_S)

    async def step(self) -> None:
        queued = coalesced = requeued = 0
        for source in self.cadence.due(self.clock()):
            if await queue.defer_poll(self.app, source.name):
                queued += 1
            else:
                coalesced += 1
                log.info("poll_coalesced source=%s: its last poll is still waiting in the queue", source.name)
        if self._time_for("stalled", self.beats.heartbeat_s):
            for job in await queue.requeue_stalled(self.app, self.beats.stalled_after_s):
                requeued += 1
                log.warning("job_requeued job=%s: its worker stopped beating", job)
            if self.figures is not None:
                self.figures.backlog(*await queue.backlog(self.app))
        self.queued += queued
        self.coalesced += coalesced
        self.requeued += requeued
        if self.figures is not None:
            self.figures.queue_step(queued, coalesced, requeued)
        if self._time_for("evaluate", TICK.total_seconds()):
            await queue.defer_evaluate(self.app)
        if self._time_for("store-heartbeat", STORE_HEARTBEAT.total_seconds()):
            self.store.heartbeat(self.clock())
        if self._time_for("heartbeat", HEARTBEAT.total_seconds()):
            await self._hourly()

    async def _hourly(self) -> None:
        pruned = await fetchlog.prune(self.store, self.clock(), kept=self.config.health.fetch_log)
        await queue.prune_jobs(self.app)
        waiting, running = await queue.backlog(self.app)
        if self.figures is not None:  # hourly: an exact count of a large PostgreSQL table is a scan
            self.figures.store_sizes(self.store.post_count(), self.store.match_counts())
        log.info(
            "heartbeat queued=%d coalesced=%d requeued=%d waiting=%d running=%d fetch_log_pruned=%d",
            self.queued,
            self.coalesced,
            self.requeued,
            waiting,
            running,
            pruned,
        )


async def run_scheduler(
    config: Config, store: ClusterStore, *, clock: Callable[[], datetime], metrics: Listen | None = None
) -> int:
    """Queue polls until SIGTERM/SIGINT. Raises StoreLocked if another scheduler took over the store meanwhile;
    `metrics` serves the scheduler's figures there (a standby's too: it says it is alive)."""
    url = postgres_store(config, "monitor run --role scheduler").url
    # From the first step: a signal while the queue's schema is applied is kept and stops the scheduler
    # cleanly, instead of killing it by the default action.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        queue.ensure_schema(store)
        figures = serve_metrics(metrics)
        try:
            return await _schedule(config, store, url, clock, figures, stopping)
        finally:
            if figures is not None:
                figures.close()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _schedule(
    config: Config,
    store: ClusterStore,
    url: str,
    clock: Callable[[], datetime],
    figures: Metrics | None,
    stopping: asyncio.Event,
) -> int:
    if not await _take_lock(store, clock, stopping):
        return 0
    app = queue.open_app(url, store)
    try:
        async with app.open_async():
            scheduler = Scheduler(config, store, app, clock, figures)
            scheduler.stopping = stopping
            log.info(
                "scheduler_started sources=%d stalled_after_s=%g store=%s",
                len(scheduler.cadence.sources),
                scheduler.beats.stalled_after_s,
                store.location,
            )
            await scheduler.run()
            log.info("scheduler_stopped queued=%d coalesced=%d", scheduler.queued, scheduler.coalesced)
    finally:
        store.unlock_daemon()
    return 0


async def _take_lock(store: ClusterStore, clock: Callable[[], datetime], stopping: asyncio.Event) -> bool:
    """The daemon lock, waiting as a standby while another scheduler (or `monitor run`) holds it. False: stopped."""
    holder = this_process()
    said = False
    while not stopping.is_set():
        try:
            await asyncio.to_thread(store.lock_daemon, holder, clock())
        except StoreLocked as exc:
            if not said:
                log.info("scheduler_standby %s: taking over when it stops", exc)
                said = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), STANDBY_RETRY_S)
            continue
        if said:
            log.info("scheduler_took_over holder=%s", holder)
        return True
    return False
