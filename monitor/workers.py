"""CPU work in worker processes, bounded in time: parsing responses and preparing large batches.

Why processes: parsing (lxml, selectolax) and matching hold the GIL and are CPU-bound, and one hostile
page must never freeze the event loop that fetches for every other source. Why our own small worker
and not a ProcessPoolExecutor: an executor cannot stop one job that runs too long; stopping it breaks
the whole pool. Here each job has a time limit; a worker that overruns is killed (SIGKILL) and replaced,
its job fails with ParseTimeout, and the other sources go on.

A worker is `python -c "...serve()"` (monitor.workerproc, which imports what a job needs only when it comes),
started by this process (no forkserver, no resource tracker): it
reads jobs from its stdin and writes results to its stdout, one length-prefixed pickle each, one job at
a time. It dies with its parent: a parent-death signal on Linux (prctl PR_SET_PDEATHSIG, SIGKILL) and,
everywhere, a thread watching that the parent is still its parent, and end of file on stdin.

Small jobs run inline, where a round trip would cost more than it saves; a small parse's cost is bounded by
the parsers' structure limits (collectors/structure.py: depth, tags and attributes of HTML; libxml2's
limits and MAX_ITEMS for feeds) on inputs below MIN_BYTES. A batch to prepare also runs inline when every
worker is busy: preparing is bounded work, a parse is not (a large parse always waits for a worker). A worker
lost between jobs is replaced and the job sent to the new one; a job that loses two workers fails with
ParseError (it would crash us too).

Jobs wait in the queue of a thread pool with one thread per worker; each thread takes an idle worker, runs the
job and gives the worker back, so a worker starts its next job the moment it answers. When the event loop itself
handed out each job, a worker sat idle while the loop was busy in a store's save (nearly half of a cold poll).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from monitor.exceptions import ParseError, ParseTimeout
from monitor.match import Matcher
from monitor.prepare import Known, prepare
from monitor.types import MatchedPost, RawItem, TopicSpec
from monitor.workerproc import (
    PARENT_ENV,
    PATH_ENV,
    LostError,
    OverrunError,
    call,
    prepare_posts,
    read_frame,
    write_frame,
)

log = logging.getLogger("monitor.workers")

T = TypeVar("T")
MIN_ITEMS = 16  # batches smaller than this are prepared inline (a round trip costs about what 5 items do)
MIN_BYTES = 16_000  # responses smaller than this are parsed inline (a 16 KB feed holds about 15 items)
PARSE_LIMIT = 30.0  # seconds for one parse when the caller gives none (the fetcher passes the source's timeout)
PREPARE_LIMIT = 120.0  # seconds for normalising, matching and signing one batch (5,000 items take about 2 s)
START_LIMIT = 60.0  # seconds a new worker gets to import and compile the topics, apart from its first job
_MAX_TRIES = 5  # times a job is queued: a worker lost under it twice fails it, so do workers lost before its turn
STOP_WAIT = 2.0  # seconds a closing worker gets to exit on its own before it is killed
_BOOT = (
    f"import json, os, sys; sys.path[:0] = json.loads(os.environ.pop({PATH_ENV!r}, '[]')); "
    "from monitor.workerproc import serve; serve()"
)


def default_processes() -> int:
    """One worker on a machine with two or more cores; none (all inline) on one core."""
    return 1 if (os.cpu_count() or 1) >= 2 else 0


# ---------------------------------------------------------------- the main process's side


class _Worker:
    """One worker process; one job at a time (calls run in a thread of `Workers`)."""

    def __init__(self, topics: tuple[TopicSpec, ...]) -> None:
        env = {**os.environ, PATH_ENV: json.dumps(sys.path), PARENT_ENV: str(os.getpid())}
        self.process = subprocess.Popen(  # started from the event loop's thread: the parent-death signal
            [sys.executable, "-c", _BOOT],  # fires when the thread that forked the child ends
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            bufsize=0,
        )
        self._topics = topics  # sent before the first batch to prepare, not to block here
        self._ready = False  # the worker answered its first message (it is up, its imports done)
        self._matching = False  # it has built its matcher

    @property
    def pid(self) -> int:
        return self.process.pid

    def call(self, job: tuple[Any, ...], time_limit: float) -> tuple[str, Any]:
        """Send one job and wait for its reply (blocking). Raises OverrunError or LostError."""
        assert self.process.stdin is not None and self.process.stdout is not None
        jobs, results = self.process.stdin.fileno(), self.process.stdout.fileno()
        matching = job[1] is prepare_posts
        if not self._ready or (matching and not self._matching):  # start-up (imports, the matcher) is not charged
            started = time.monotonic() + START_LIMIT  # to the first job; a worker that only parses builds no matcher
            write_frame(jobs, pickle.dumps(("topics", self._topics if matching else None)), started)
            read_frame(results, started)
            self._ready, self._matching = True, self._matching or matching
        deadline = time.monotonic() + time_limit
        write_frame(jobs, pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL), deadline)
        reply: tuple[str, Any] = pickle.loads(read_frame(results, deadline))
        return reply

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        self._reap(None)

    def stop(self) -> None:
        """Close its stdin (it exits at end of file), then kill it if it does not go in STOP_WAIT."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        if not self._reap(STOP_WAIT):
            self.kill()

    def _reap(self, timeout: float | None) -> bool:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.process.stdin is not None:
            self.process.stdin.close()
        return True


class _UnstaffedError(Exception):
    """No idle worker when the job's turn came (one was lost meanwhile): the event loop starts one."""


class _Ticket:
    """A job's hold on the worker running it, so that the event loop can kill that worker when the job is
    cancelled, and learns which one failed."""

    __slots__ = ("cancelled", "worker")

    def __init__(self) -> None:
        self.cancelled = False
        self.worker: _Worker | None = None


class Workers:
    """Worker processes for one config's topics, started on first use; `close()` stops them."""

    def __init__(
        self, topics: Sequence[TopicSpec], *, processes: int | None = None, prepare_in_workers: bool = True
    ) -> None:
        """`prepare_in_workers=False`: batches are prepared here, the workers only parse, so each stays a small
        process (no numpy, no matcher): `monitor poll`, where peak memory counts and the event loop has nobody
        else to serve."""
        self.topics = tuple(topics)
        self.prepare_in_workers = prepare_in_workers
        self.matcher = Matcher(self.topics)
        self.processes = default_processes() if processes is None else processes
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()  # _idle and _all, shared with the executor's threads
        self._in_flight = 0  # jobs given to the workers and not yet answered (event loop's thread only)
        self._threads: ThreadPoolExecutor | None = None
        self._retired = False  # a reload replaced these workers: each stops when its job is done

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers (for measurements and tests)."""
        with self._lock:
            return [w.pid for w in self._all if w.process.poll() is None]

    async def prepare(
        self, items: Sequence[RawItem], source: str, known: Known, now: datetime, keys: Sequence[str] | None = None
    ) -> list[MatchedPost]:
        """Normalise, match and sign `items` (prepare.prepare; `keys`: their post keys, when the caller has them),
        in a worker when the batch is large and a worker is free. Unlike a parse, this is our own bounded work
        (linear in text already cut to max_bytes), safe inline: when every worker is busy (or still starting),
        waiting for one would leave this core idle while the other queues, so the batch is prepared here instead
        (a cold poll of many feeds: both cores work)."""
        if len(items) < MIN_ITEMS or self.processes <= 0 or not self.prepare_in_workers or self._busy():
            return prepare(items, source, known, now, self.matcher, keys)
        job: tuple[Any, ...] = (prepare_posts, (list(items), source, dict(known), now, keys), {})
        return await self._run(
            job,
            PREPARE_LIMIT,
            f"preparing {len(items)} posts of {source}",
            lambda: prepare(items, source, known, now, self.matcher, keys),
        )

    async def parse(
        self, size: int, fn: Callable[..., T], /, *args: Any, time_limit: float = PARSE_LIMIT, **kwargs: Any
    ) -> T:
        """`fn(*args, **kwargs)` (a pure, picklable function such as parse_feed), in a worker when `size`
        (bytes) is large; ParseTimeout after `time_limit` seconds."""
        if size < MIN_BYTES or self.processes <= 0:
            return fn(*args, **kwargs)
        return await self._run((call, (fn, args, kwargs), {}), time_limit, "parsing", lambda: fn(*args, **kwargs))

    async def _run(self, job: tuple[Any, ...], time_limit: float, what: str, inline: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        lost = 0
        self._in_flight += 1
        try:
            for _ in range(_MAX_TRIES):
                if not self._staff():  # no worker can start here: work inline from now on
                    return inline()
                ticket = _Ticket()
                try:
                    status, value = await loop.run_in_executor(
                        self._executor(), self._call, ticket, ("job", *job), time_limit
                    )
                except asyncio.CancelledError:
                    self._abandon(ticket)  # its thread sees the pipe close and ends
                    raise
                except _UnstaffedError:  # a worker was lost after this job was queued: start one, queue it again
                    continue
                except OverrunError:
                    assert ticket.worker is not None  # the thread overran on the worker it had taken
                    self._discard(ticket.worker)
                    log.warning(
                        "worker_overrun what=%r limit_s=%g: the worker was killed and replaced", what, time_limit
                    )
                    raise ParseTimeout(
                        f"{what} took longer than {time_limit:g} s; stopped (the response may be hostile or "
                        "enormous: its structure is checked for that, see the README)"
                    ) from None
                except LostError as exc:
                    worker = ticket.worker
                    assert worker is not None  # the thread lost the worker it had taken
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        worker.process.wait(0.5)  # it closed its pipe: it is ending, with its own exit code
                    self._discard(worker)
                    code = worker.process.returncode
                    lost += 1
                    log.warning("worker_lost what=%r exit=%s attempt=%d: starting a new worker", what, code, lost)
                    if lost == 2:
                        raise ParseError(f"{what} stopped the worker process twice (exit code {code})") from exc
                    continue
                if status == "error":
                    raise value
                result: T = value
                return result
            raise ParseError(f"{what}: no worker could take it (workers kept ending before its turn; see worker_lost)")
        finally:
            self._in_flight -= 1

    def _busy(self) -> bool:
        """Every worker has a job (or one is queued for it)."""
        return self._in_flight >= max(self.processes, 1)

    def _call(self, ticket: _Ticket, job: tuple[Any, ...], time_limit: float) -> tuple[str, Any]:
        """In a thread of the executor: take an idle worker, run the job on it, give it back. Threads hand the
        workers jobs from the executor's queue, so a worker starts its next job as soon as it answers, not when the
        event loop (busy in a save) gets round to it."""
        with self._lock:
            worker = self._take_idle()
            if worker is None or ticket.cancelled:
                if worker is not None:
                    self._idle.append(worker)
                raise _UnstaffedError
            ticket.worker = worker
        reply = worker.call(job, time_limit)  # OverrunError and LostError: the event loop discards the worker
        with self._lock:
            if ticket.cancelled:  # the job's poll was cancelled: its worker was killed meanwhile
                return reply
            if self._retired:
                self._all.discard(worker)
            else:
                self._idle.append(worker)
        if self._retired:
            worker.stop()
        return reply

    def _staff(self) -> bool:
        """Start workers, here on the event loop's thread, until `processes` are alive; False if none can start."""
        with self._lock:
            for worker in [w for w in self._idle if w.process.poll() is not None]:
                self._idle.remove(worker)
                self._drop_ended(worker)
            alive = sum(1 for w in self._all if w.process.poll() is None)
        while alive < max(self.processes, 1):
            try:
                worker = _Worker(self.topics)
            except OSError as exc:
                log.warning("workers_unavailable error=%r: parsing and matching run in the main process", str(exc))
                self.processes = 0
                return False
            with self._lock:
                self._all.add(worker)
                self._idle.append(worker)
            alive += 1
        return True

    def _take_idle(self) -> _Worker | None:
        """An idle worker still running (under the lock); one that ended between jobs is dropped."""
        while self._idle:
            worker = self._idle.pop()
            if worker.process.poll() is None:
                return worker
            self._drop_ended(worker)
        return None

    def _drop_ended(self, worker: _Worker) -> None:
        """Forget an idle worker that ended between jobs (under the lock)."""
        log.warning(
            "worker_lost pid=%d exit=%s: it ended between jobs; starting a new one", worker.pid, worker.process.poll()
        )
        self._all.discard(worker)
        worker.kill()  # reaps it and closes its pipes

    def _executor(self) -> ThreadPoolExecutor:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(max(self.processes, 1), thread_name_prefix="monitor-worker")
        return self._threads

    def _abandon(self, ticket: _Ticket) -> None:
        with self._lock:
            ticket.cancelled = True
            worker = ticket.worker
        if worker is not None:
            self._discard(worker)

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
            with contextlib.suppress(ValueError):
                self._idle.remove(worker)
        worker.kill()

    def retire(self) -> None:
        """Stop the workers once the jobs already given to them are done (a reload's old topics): the idle ones
        now, a busy one when its job returns."""
        with self._lock:
            self._retired = True
            idle, self._idle = self._idle, []
            self._all.difference_update(idle)
        for worker in idle:
            worker.stop()

    def close(self) -> None:
        """Stop the workers (a job still running is cut off: its poll is being cancelled with us)."""
        with self._lock:
            workers = list(self._all)
            self._all.clear()
            self._idle.clear()
        for worker in workers:
            worker.stop()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None
