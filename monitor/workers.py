"""CPU work in a worker process: parsing large responses and preparing large batches (normalise, match, sign).

SQLite writes stay in the main process; the parsing and matching of the next poll run beside them on the
other core (measured on the ingest bench: see README, "Performance"). Small jobs run inline, where a
round trip to the worker would cost more than it saves. A worker that dies is replaced, and the job that
was lost runs inline: a broken pool never loses a poll.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any, TypeVar

from monitor.match import Matcher
from monitor.prepare import Known, prepare
from monitor.types import MatchedPost, RawItem, TopicSpec

log = logging.getLogger("monitor.workers")

T = TypeVar("T")
MIN_ITEMS = 16  # batches smaller than this are prepared inline (a round trip costs about what 5 items do)
MIN_BYTES = 16_000  # responses smaller than this are parsed inline (a 16 KB feed holds about 15 items)

_matcher: Matcher | None = None  # the worker process's own matcher, built once by _start


def _start(topics: Sequence[TopicSpec]) -> None:
    global _matcher  # noqa: PLW0603  # one matcher per worker process, compiled once
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    _matcher = Matcher(topics)


def _prepare_in_worker(items: Sequence[RawItem], source: str, known: Known, now: datetime) -> list[MatchedPost]:
    assert _matcher is not None
    return prepare(items, source, known, now, _matcher)


def default_processes() -> int:
    """One worker on a machine with two or more cores; none (all inline) on one core."""
    return 1 if (os.cpu_count() or 1) >= 2 else 0


class Workers:
    """A lazily started pool of worker processes for one config's topics."""

    def __init__(self, topics: Sequence[TopicSpec], *, processes: int | None = None) -> None:
        self.topics = tuple(topics)
        self.matcher = Matcher(self.topics)
        self.processes = default_processes() if processes is None else processes
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor | None:
        if self.processes <= 0:
            return None
        if self._pool is None:
            try:
                context = multiprocessing.get_context("forkserver")  # no fork of a process that runs threads
            except ValueError:  # no forkserver on this platform (Windows): work inline
                log.info("workers_unavailable: no forkserver here; parsing and matching run in the main process")
                self.processes = 0
                return None
            self._pool = ProcessPoolExecutor(
                self.processes, mp_context=context, initializer=_start, initargs=(self.topics,)
            )
        return self._pool

    async def prepare(self, items: Sequence[RawItem], source: str, known: Known, now: datetime) -> list[MatchedPost]:
        if len(items) < MIN_ITEMS:
            return prepare(items, source, known, now, self.matcher)
        return await self._run(
            _prepare_in_worker,
            lambda: prepare(items, source, known, now, self.matcher),
            items,
            source,
            dict(known),
            now,
        )

    async def parse(self, size: int, fn: Callable[..., T], /, *args: Any, time_limit: float = 30.0, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` (a pure, picklable function such as parse_feed), in a worker when `size` is large."""
        if size < MIN_BYTES:
            return fn(*args, **kwargs)
        return await self._run(_call, lambda: fn(*args, **kwargs), fn, args, kwargs)

    async def _run(self, remote: Callable[..., T], inline: Callable[[], T], *args: Any) -> T:
        pool = self._executor()
        if pool is None:
            return inline()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, remote, *args)
        except BrokenProcessPool:
            log.warning("worker_lost: restarting the worker pool; this job runs inline")
            self._discard()
            return inline()
        except (OSError, RuntimeError) as exc:  # the pool cannot start here: work inline from now on
            log.warning("workers_unavailable error=%r: parsing and matching run in the main process", str(exc))
            self._discard()
            self.processes = 0
            return inline()

    def _discard(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        """Stop the workers; jobs still queued are dropped (their polls are cancelled with the daemon)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _call(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    return fn(*args, **kwargs)
