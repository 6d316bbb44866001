"""`monitor run`: APScheduler wiring (one job per source), signals and a clean shutdown.

Each source is an interval job with a little jitter, `max_instances=1` (a slow poll is never run twice at
once) and `coalesce` (missed runs collapse into one). First polls start right away, staggered so that
a large config does not open every connection in the same second.

One daemon per store: `run_daemon` takes the store's daemon lock for its lifetime (the OS releases it when the
process dies) and writes a heartbeat into the store every minute. SIGTERM/SIGINT stop it within 10 s: no new
job starts, polls in flight get STOP_GRACE_S to finish (the scheduler is paused, not shut down, meanwhile:
its shutdown would cancel them at once), then what is left is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.collectors.fetch import Fetcher
from monitor.config import Config, SourceConfig
from monitor.exceptions import MonitorError
from monitor.outbox import Outbox
from monitor.pipeline import open_fetcher, run_source
from monitor.store import Store, this_process
from monitor.types import RunResult
from monitor.workers import Workers

log = logging.getLogger("monitor.daemon")

STOP_GRACE_S = 5.0  # in-flight polls get this long to finish; then they are cancelled (their transaction rolls back)
FIRST_POLL_SPREAD = timedelta(seconds=30)  # first polls of all sources are spread over at most this
HEARTBEAT = timedelta(hours=1)  # the log's heartbeat line and the fetch-log pruning
STORE_HEARTBEAT = timedelta(minutes=1)  # the store's `daemon.heartbeat_at` (read by `monitor health`)
FETCH_LOG_KEPT = timedelta(days=90)  # `fetches` gets a row per request: months of polling would grow it without end
TICK = timedelta(minutes=1)

T = TypeVar("T")
AfterPoll = Callable[[list[RunResult], datetime], Awaitable[None]]
OnTick = Callable[[datetime], Awaitable[None]]


class Daemon:
    """Runs until `stop()` (or a signal): polls each source on its interval, then calls `after_poll`."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        clock: Callable[[], datetime],
        after_poll: AfterPoll | None = None,
        on_tick: OnTick | None = None,
    ):
        self.config = config
        self.store = store
        self.clock = clock
        self.after_poll = after_poll
        self.on_tick = on_tick
        self.workers = Workers(config.topics)
        self._stopping = asyncio.Event()
        self._running: set[asyncio.Task[object]] = set()
        self._polls = 0
        self._failed = 0
        self.fault: MonitorError | None = None  # what stopped the daemon (a damaged store), if anything

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> int:
        sources = [s for s in self.config.sources if s.enabled]
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        async with open_fetcher(self.config, self.workers, clock=self.clock) as fetcher:
            scheduler = AsyncIOScheduler(timezone=UTC)
            self._schedule(scheduler, fetcher, sources)
            scheduler.start()
            log.info(
                "daemon_started sources=%d topics=%d store=%s",
                len(sources),
                len(self.config.topics),
                self.store.location,
            )
            await self._stopping.wait()
            log.info("daemon_stopping in_flight=%d", len(self._running))
            scheduler.pause()  # nothing new starts; the running jobs go on (shutdown would cancel them)
            await self._drain()
            scheduler.shutdown(wait=False)
        self.workers.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("daemon_stopped polls=%d failed=%d", self._polls, self._failed)
        return 1 if self.fault is not None else 0

    def _schedule(self, scheduler: AsyncIOScheduler, fetcher: Fetcher, sources: list[SourceConfig]) -> None:
        start = self.clock()
        spread = min(FIRST_POLL_SPREAD, timedelta(seconds=0.5) * len(sources))
        for index, source in enumerate(sources):
            seconds = source.interval.total_seconds()
            scheduler.add_job(
                self.poll_job,
                IntervalTrigger(seconds=seconds, jitter=min(seconds * 0.1, 60.0)),
                args=[source, fetcher],
                id=f"source:{source.name}",
                name=source.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(seconds)),
                next_run_time=start + spread * index / max(len(sources), 1),
            )
        scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=TICK.total_seconds()),
            id="tick",
            max_instances=1,
            coalesce=True,
            next_run_time=start,  # at once: a restarted daemon delivers what a killed one left pending
        )
        scheduler.add_job(
            self._heartbeat,
            IntervalTrigger(seconds=HEARTBEAT.total_seconds()),
            id="heartbeat",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._store_heartbeat,
            IntervalTrigger(seconds=STORE_HEARTBEAT.total_seconds()),
            id="store-heartbeat",
            max_instances=1,
            coalesce=True,
        )

    async def poll_job(self, source: SourceConfig, fetcher: Fetcher) -> None:
        """One scheduled poll of `source`, then `after_poll` if it brought new matches (the scheduler's job)."""
        if self._stopping.is_set():
            return
        result = await self._tracked(
            run_source(
                source,
                fetcher=fetcher,
                store=self.store,
                matcher=self.workers.matcher,
                now=self.clock(),
                workers=self.workers,
            )
        )
        if result is None:
            return
        damage = self.store.damage()
        if damage is not None and self.fault is None:  # every further write would fail the same way
            log.error("store_damaged error=%s: stopping", damage)
            self.fault = damage
            self.stop()
            return
        self._polls += 1
        self._failed += 0 if result.ok else 1
        if self.after_poll is not None and result.ok and result.matches and not self._stopping.is_set():
            await self._tracked(self.after_poll([result], self.clock()))

    async def _tick(self) -> None:
        if self.on_tick is not None and not self._stopping.is_set():
            await self._tracked(self.on_tick(self.clock()))

    async def _heartbeat(self) -> None:
        failing = sum(1 for s in self.store.source_states() if s.failures)
        pruned = self.store.prune_fetches(self.clock() - FETCH_LOG_KEPT)
        log.info(
            "heartbeat polls=%d failed_polls=%d sources_failing=%d posts=%d fetch_log_pruned=%d",
            self._polls,
            self._failed,
            failing,
            self.store.counts()["posts"],
            pruned,
        )

    async def _store_heartbeat(self) -> None:
        try:
            self.store.heartbeat(self.clock())
        except MonitorError as exc:
            log.warning("heartbeat_not_written error=%s", exc)

    async def _tracked(self, work: Awaitable[T]) -> T | None:
        """Run `work` as a task the shutdown waits for (and cancels after the grace period). The task is shielded
        from its job's cancellation: only `_drain` (or a second signal) cancels it."""
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        self._running.add(task)
        task.add_done_callback(self._finished)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if self._stopping.is_set():
                return None
            raise
        except Exception:
            log.exception("job_crashed")
            return None

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None and self._stopping.is_set():
            log.error("job_failed_while_stopping error=%r", task.exception())

    async def _drain(self) -> None:
        if not self._running:
            return
        _, pending = await asyncio.wait(set(self._running), timeout=STOP_GRACE_S)
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stopping.is_set():
            log.warning("second_signal signal=%s: cancelling in-flight work now", sig.name)
            for task in list(self._running):
                task.cancel()
            return
        log.info("signal_received signal=%s", sig.name)
        self.stop()


def alert_hooks(outbox: Outbox, clock: Callable[[], datetime]) -> tuple[AfterPoll, OnTick]:
    """The daemon's alert work: evaluate the polled topics after a poll with new matches, everything every minute;
    then deliver (the outbox's delivery is single-flight, so polls finishing together send each alert once)."""

    async def after_poll(results: list[RunResult], now: datetime) -> None:
        outbox.evaluate(now, topics=sorted({t for r in results for t in r.topics}))
        await outbox.deliver_async(clock())

    async def on_tick(now: datetime) -> None:
        outbox.evaluate(now)
        await outbox.deliver_async(clock())

    return after_poll, on_tick


async def run_daemon(config: Config, store: Store, *, clock: Callable[[], datetime]) -> int:
    """`monitor run`: the daemon with the outbox: alerts evaluated after polls with new matches and every minute.
    Holds the store's daemon lock for its lifetime: raises StoreLocked if another daemon holds it."""
    store.lock_daemon(this_process(), clock())
    after_poll, on_tick = alert_hooks(Outbox(config, store), clock)
    daemon = Daemon(config, store, clock=clock, after_poll=after_poll, on_tick=on_tick)
    try:
        code = await daemon.run()
    finally:
        store.unlock_daemon()
    if daemon.fault is not None:
        raise daemon.fault
    return code
