"""`monitor run`: APScheduler wiring (one job per source), signals and a clean shutdown.

Each source is an interval job with `max_instances=1` (a slow poll is never run twice at once) and
`coalesce` (missed runs collapse into one). First polls start right away, staggered so that a large config
does not open every connection in the same second; each source keeps the phase its first poll gave it, so
sources of one host stay apart and every gap between two polls of a source is its interval.

One daemon per store: `run_daemon` takes the store's daemon lock for its lifetime (the OS releases it when the
process dies) and writes a heartbeat into the store every minute. SIGTERM/SIGINT stop it within 10 s: no new
job starts, polls in flight get STOP_GRACE_S to finish (the scheduler is paused, not shut down, meanwhile:
its shutdown would cancel them at once), then what is left is cancelled. A poll's store transaction runs to
its end first: on a large SQLite store, the one that merges the full-text index (store/sqlite/fts.py) holds the
stop that long.

SIGHUP re-reads the config: added sources start, removed ones stop, changed ones (interval, URL, selectors)
apply from their next poll, changed topics from the next poll on (new workers; polls in flight finish with
the old ones). A config with problems is logged, one line per problem, and the old one keeps running.
With `--metrics`, the daemon's figures are served in the Prometheus text format (monitor.metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor import fetchlog
from monitor.collectors.fetch import Fetcher
from monitor.config import Config, SourceConfig
from monitor.exceptions import ConfigError, MonitorError
from monitor.metrics import Listen, Metrics, serve_metrics
from monitor.outbox import Outbox
from monitor.pipeline import keep_robots, open_fetcher, recall_robots, run_source
from monitor.rematch import topic_changes
from monitor.store import Store, this_process
from monitor.types import RunResult
from monitor.workers import Workers

log = logging.getLogger("monitor.daemon")

STOP_GRACE_S = 5.0  # in-flight polls get this long to finish; then they are cancelled (their transaction rolls back)
FIRST_POLL_SPREAD = timedelta(seconds=30)  # first polls of all sources are spread over at most this
HEARTBEAT = timedelta(hours=1)  # the log's heartbeat line and the fetch-log pruning
STORE_HEARTBEAT = timedelta(minutes=1)  # the store's `daemon.heartbeat_at` (read by `monitor health`)
TICK = timedelta(minutes=1)

T = TypeVar("T")
AfterPoll = Callable[[list[RunResult], datetime], Awaitable[None]]
SIGNALS = (signal.SIGTERM, signal.SIGINT)
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
        load: Callable[[], Config] | None = None,
        on_reload: Callable[[Config], None] | None = None,
        metrics: Metrics | None = None,
    ):
        self.config = config
        self.load = load  # re-reads the config file (SIGHUP); None: reloading is off
        self.on_reload = on_reload
        self.metrics = metrics
        self.store = store
        self.clock = clock
        self.after_poll = after_poll
        self.on_tick = on_tick
        self.workers = Workers(config.topics)
        self._stopping = asyncio.Event()
        self._running: set[asyncio.Task[object]] = set()
        self._polls = 0
        self._failed = 0
        self._scheduler: AsyncIOScheduler | None = None
        self._fetcher: Fetcher | None = None
        self._reloading: asyncio.Task[None] | None = None
        self.fault: MonitorError | None = None  # what stopped the daemon (a damaged store), if anything

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> int:
        sources = [s for s in self.config.sources if s.enabled]
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_hangup)
        async with open_fetcher(self.config, self.workers, clock=self.clock) as fetcher:
            recall_robots(fetcher, self.store, self.clock())  # what the last process read: no host asked again
            scheduler = AsyncIOScheduler(timezone=UTC)
            self._scheduler, self._fetcher = scheduler, fetcher
            if self.metrics is not None:
                scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
                self.metrics.scheduled(len(sources))
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
        for sig in (*SIGNALS, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        log.info("daemon_stopped polls=%d failed=%d", self._polls, self._failed)
        return 1 if self.fault is not None else 0

    def _schedule(self, scheduler: AsyncIOScheduler, fetcher: Fetcher, sources: list[SourceConfig]) -> None:
        start = self.clock()
        for source, first in zip(sources, first_polls(start, len(sources)), strict=True):
            self._add_source(scheduler, fetcher, source, first)
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

    def _add_source(self, scheduler: AsyncIOScheduler, fetcher: Fetcher, source: SourceConfig, first: datetime) -> None:
        seconds = source.interval.total_seconds()
        scheduler.add_job(
            self.poll_job,
            _trigger(source.interval),
            args=[source, fetcher],
            id=f"source:{source.name}",
            name=source.name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(seconds)),
            next_run_time=first,
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
        keep_robots(fetcher, self.store)  # a robots.txt this poll read (once per host in ROBOTS_TTL), for a restart
        damage = self.store.damage()
        if damage is not None and self.fault is None:  # every further write would fail the same way
            log.error("store_damaged error=%s: stopping", damage)
            self.fault = damage
            self.stop()
            return
        self._polls += 1
        self._failed += 0 if result.ok else 1
        if self.metrics is not None:
            self.metrics.polled(result)
            self.metrics.stored(result.new_posts)
        if self.after_poll is not None and result.ok and result.matches and not self._stopping.is_set():
            await self._tracked(self.after_poll([result], self.clock()))

    async def _tick(self) -> None:
        if self.on_tick is not None and not self._stopping.is_set():
            await self._tracked(self.on_tick(self.clock()))
        if self.metrics is not None and not self._stopping.is_set():
            self.metrics.store_matches(self.store.match_counts())

    def _submitted(self, event: JobSubmissionEvent) -> None:
        if self.metrics is not None and event.scheduled_run_times:
            self.metrics.late((self.clock() - max(event.scheduled_run_times)).total_seconds())

    # ------------------------------------------------------------------------------------ reload (SIGHUP)
    def _on_hangup(self) -> None:
        if self.load is None or self._stopping.is_set():
            log.info("signal_received signal=SIGHUP: ignored (%s)", "stopping" if self.load else "no config file")
            return
        log.info("signal_received signal=SIGHUP: reloading the config")
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.ensure_future(self._reload())

    async def _reload(self) -> None:
        assert self.load is not None
        try:
            new = self.load()
        except ConfigError as exc:
            log.error("reload_failed problems=%d: the previous config keeps running", len(exc.problems))
            for problem in exc.problems:
                log.error("reload_problem %s", problem)
            return
        old = self.config
        if new.store != old.store:
            log.error("reload_failed store=%s: a new store needs a restart; the previous config runs on", new.store)
            return
        for warning in new.warnings:
            log.warning("config_warning %s", warning)
        if (new.defaults.per_host, new.defaults.user_agent) != (old.defaults.per_host, old.defaults.user_agent):
            log.warning("reload_partial: defaults.per_host and defaults.user_agent apply after a restart")
        if new.topics != old.topics:
            retired, self.workers = self.workers, Workers(new.topics)
            retired.retire()  # polls in flight finish with the old matcher
        added, removed, changed = self._reschedule(old, new)
        self.config = new
        if self.on_reload is not None:
            self.on_reload(new)
        if self.metrics is not None:
            self.metrics.scheduled(sum(1 for s in new.sources if s.enabled))
        log.info(
            "config_reloaded sources=%d added=%s removed=%s changed=%s topics=%s",
            sum(1 for s in new.sources if s.enabled),
            ",".join(added) or "-",
            ",".join(removed) or "-",
            ",".join(changed) or "-",
            "changed" if new.topics != old.topics else "same",
        )

    def _reschedule(self, old: Config, new: Config) -> tuple[list[str], list[str], list[str]]:
        """Start added sources, stop removed ones, give changed ones their new settings (and interval)."""
        scheduler, fetcher = self._scheduler, self._fetcher
        assert scheduler is not None and fetcher is not None
        before = {s.name: s for s in old.sources if s.enabled}
        after = {s.name: s for s in new.sources if s.enabled}
        added = [name for name in after if name not in before]
        removed = [name for name in before if name not in after]
        changed = [name for name in after if name in before and after[name] != before[name]]
        for name in removed:
            scheduler.remove_job(f"source:{name}")
        for name, first in zip(added, first_polls(self.clock(), len(added)), strict=True):
            self._add_source(scheduler, fetcher, after[name], first)
        for name in changed:
            job_id = f"source:{name}"
            scheduler.modify_job(job_id, args=[after[name], fetcher])
            if after[name].interval != before[name].interval:
                scheduler.reschedule_job(job_id, trigger=_trigger(after[name].interval))
        return added, removed, changed

    async def _heartbeat(self) -> None:
        failing = sum(1 for s in self.store.source_states() if s.failures)
        pruned = await fetchlog.prune(self.store, self.clock(), kept=self.config.health.fetch_log)
        posts = self.store.post_count()
        if self.metrics is not None:
            self.metrics.store_posts(posts)
        log.info(
            "heartbeat polls=%d failed_polls=%d sources_failing=%d posts=%d fetch_log_pruned=%d",
            self._polls,
            self._failed,
            failing,
            posts,
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


def first_polls(start: datetime, count: int) -> list[datetime]:
    """When `count` sources starting together poll first: spread evenly over at most FIRST_POLL_SPREAD."""
    spread = min(FIRST_POLL_SPREAD, timedelta(seconds=0.5) * count)
    return [start + spread * index / max(count, 1) for index in range(count)]


def _trigger(interval: timedelta) -> IntervalTrigger:
    # No `jitter`: APScheduler adds it to each fire time and counts the next interval from the jittered one,
    # so every gap grew by up to 10% (+3 s on average at a 1-minute interval, +5.9 s at p99). The staggered
    # first polls already keep sources apart, and a fixed phase keeps them apart for good.
    return IntervalTrigger(seconds=interval.total_seconds())


def alert_hooks(
    outbox: Outbox | Callable[[], Outbox], clock: Callable[[], datetime], figures: Metrics | None = None
) -> tuple[AfterPoll, OnTick]:
    """The daemon's alert work: evaluate the polled topics after a poll with new matches, everything every minute;
    then deliver (the outbox's delivery is single-flight, so polls finishing together send each alert once).
    `outbox` may be a function giving the current one (a reload replaces it); `figures` counts what was done."""
    current: Callable[[], Outbox] = outbox if callable(outbox) else (lambda: outbox)

    async def after_poll(results: list[RunResult], now: datetime) -> None:
        box = current()
        raised = box.evaluate(now, topics=sorted({t for r in results for t in r.topics}))
        delivered = await box.deliver_async(clock())
        if figures is not None:
            figures.alerts_raised(raised)
            figures.deliveries((d.channel, d.status) for d in delivered)

    async def on_tick(now: datetime) -> None:
        box = current()
        raised = box.evaluate(now)
        delivered = await box.deliver_async(clock())
        if figures is not None:
            figures.alerts_raised(raised)
            figures.deliveries((d.channel, d.status) for d in delivered)

    return after_poll, on_tick


async def run_daemon(
    config: Config,
    store: Store,
    *,
    clock: Callable[[], datetime],
    load: Callable[[], Config] | None = None,
    metrics: Listen | None = None,
) -> int:
    """`monitor run`: the daemon with the outbox: alerts evaluated after polls with new matches and every minute.
    Holds the store's daemon lock for its lifetime: raises StoreLocked if another daemon holds it. `load`
    re-reads the config on SIGHUP; `metrics` serves the daemon's figures there."""
    # From the start, not only once Daemon.run is reached: a SIGTERM while the daemon starts up (the lock taken,
    # the outbox and matcher being built) is kept and stops it cleanly, instead of killing it by default action.
    # The loop is asyncio.run's (`monitor run`): it and these handlers end with this call.
    early: list[signal.Signals] = []
    for sig in SIGNALS:
        asyncio.get_running_loop().add_signal_handler(sig, early.append, sig)
    store.lock_daemon(this_process(), clock())
    topic_changes(config, store, clock())  # logs a changed topic set, pointing at `monitor rematch`
    outbox = Outbox(config, store)
    try:
        figures = serve_metrics(metrics)
    except MonitorError:
        store.unlock_daemon()
        raise
    if figures is not None:
        figures.store_sizes(store.post_count(), store.match_counts())
    after_poll, on_tick = alert_hooks(lambda: outbox, clock, figures)

    def on_reload(new: Config) -> None:
        nonlocal outbox
        outbox = Outbox(new, store)  # channels, routing and the detector's parameters as the new config says
        topic_changes(new, store, clock())

    daemon = Daemon(
        config,
        store,
        clock=clock,
        after_poll=after_poll,
        on_tick=on_tick,
        load=load,
        on_reload=on_reload,
        metrics=figures,
    )
    if early:
        log.info("signal_received signal=%s: stopping once started", early[0].name)
        daemon.stop()
    try:
        code = await daemon.run()
    finally:
        store.unlock_daemon()
        if figures is not None:
            figures.close()
    if daemon.fault is not None:
        raise daemon.fault
    return code
