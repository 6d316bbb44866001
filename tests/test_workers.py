"""The worker processes: the same results as inline work, a time limit that kills and replaces, a lost worker
that loses no poll, and no worker that outlives its parent (real processes, SIGKILL, /proc)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from monitor.collectors.feedparse import parse_feed
from monitor.exceptions import ParseError, ParseTimeout
from monitor.prepare import prepare, unique_items
from monitor.types import RawItem, TopicSpec
from monitor.workers import MIN_BYTES, MIN_ITEMS, Workers
from tests.conftest import NOW, REPO

TOPICS = (TopicSpec("world", ("world", "мир*")), TopicSpec("war", ("war", "войн*")))
BIG = b"x" * MIN_BYTES  # a body large enough to go to the worker


def burn(body: bytes, seconds: float) -> int:
    """A parse that takes `seconds` of CPU (stands in for a page that costs minutes)."""
    end = time.monotonic() + seconds
    spins = 0
    while time.monotonic() < end:
        spins += 1
    return spins


def refuse(body: bytes) -> int:
    raise ParseError("not a feed: a test")


def crash(body: bytes) -> int:
    missing: dict[str, int] = {}
    return missing["bug"]  # a bug in a parser


def exit_hard(body: bytes) -> int:
    os._exit(3)  # a parser that takes its process down (a crash in a C library)


def my_pid(body: bytes) -> int:
    return os.getpid()


def stamped_nap(body: bytes, seconds: float) -> tuple[float, float]:
    """A parse that sleeps `seconds`: (when it started, when it ended), by the wall clock both processes share."""
    started = time.time()
    time.sleep(seconds)
    return started, time.time()


def exit_once(body: bytes, path: str) -> int:
    """A parse that takes its worker down the first time only (the marker file says it already did)."""
    if not os.path.exists(path):  # noqa: PTH110  # in the worker, no pathlib import
        with open(path, "w"):  # noqa: PTH123
            pass
        os._exit(3)
    return os.getpid()


def wait_for_file(body: bytes, path: str) -> int:
    """A parse that holds its worker until `path` exists (bounded: 60 s)."""
    end = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < end:  # noqa: PTH110  # in the worker, no pathlib import
        time.sleep(0.01)
    return os.getpid()


@pytest.fixture
def items(corpus: Path) -> list[RawItem]:
    feed = parse_feed((corpus / "rss/en_nytimes-world.xml").read_bytes(), url="https://www.nytimes.com/")
    unique, _ = unique_items(feed.items)
    assert len(unique) >= MIN_ITEMS
    return unique


@pytest.fixture
def workers() -> object:
    pool = Workers(TOPICS, processes=1)
    yield pool
    pool.close()


def test_the_worker_prepares_exactly_what_inline_preparation_does(items: list[RawItem], workers: Workers) -> None:
    remote = asyncio.run(workers.prepare(items, "nyt", {}, NOW))
    assert workers.pids  # the batch really went to a worker
    assert remote == prepare(items, "nyt", {}, NOW, workers.matcher) and any(p.matches for p in remote)


def test_the_keys_a_poll_computed_reach_the_posts_in_a_worker_and_here(items: list[RawItem]) -> None:
    """unique_items already computed each item's key: preparing (in a worker or here) takes it, not again."""
    keys = [f"given-{i}" for i in range(len(items))]  # not what post_key gives: these can only come from `keys`
    for prepare_in_workers in (True, False):
        pool = Workers(TOPICS, processes=1, prepare_in_workers=prepare_in_workers)
        try:
            prepared = asyncio.run(pool.prepare(items, "nyt", {}, NOW, keys))
            assert bool(pool.pids) == prepare_in_workers
        finally:
            pool.close()
        assert [p.post.key for p in prepared] == keys


def test_a_worker_that_only_parsed_builds_its_matcher_before_its_first_batch(
    items: list[RawItem], workers: Workers
) -> None:
    """A worker starts without the topics (a parse needs no matcher); they are sent before it prepares."""
    pid = asyncio.run(workers.parse(len(BIG), my_pid, BIG))
    remote = asyncio.run(workers.prepare(items, "nyt", {}, NOW))
    assert workers.pids == [pid]  # the same worker, not a fresh one
    assert remote == prepare(items, "nyt", {}, NOW, workers.matcher) and any(p.matches for p in remote)


def test_with_prepare_in_workers_off_batches_are_prepared_here_and_parses_still_go_out(
    items: list[RawItem],
) -> None:
    pool = Workers(TOPICS, processes=1, prepare_in_workers=False)
    try:
        here = asyncio.run(pool.prepare(items, "nyt", {}, NOW))
        assert pool.pids == []  # no worker started for a batch
        assert here == prepare(items, "nyt", {}, NOW, pool.matcher)
        assert asyncio.run(pool.parse(len(BIG), my_pid, BIG)) in pool.pids
    finally:
        pool.close()


def test_large_bodies_are_parsed_in_the_worker(corpus: Path, workers: Workers) -> None:
    body = (corpus / "rss/en_dawn-pk_escaped-html.xml").read_bytes()
    assert len(body) >= MIN_BYTES
    parsed = asyncio.run(workers.parse(len(body), parse_feed, body, url="https://www.dawn.com/"))
    assert asyncio.run(workers.parse(len(BIG), my_pid, BIG)) in workers.pids
    assert parsed == parse_feed(body, url="https://www.dawn.com/")


def test_a_worker_parses_without_openssl_and_to_the_same_digests(corpus: Path, workers: Workers) -> None:
    """The worker keeps hashlib off OpenSSL (megabytes of a small process); the digests it makes are the ones
    made here, where hashlib has OpenSSL (blake2b is built in either way)."""
    body = (corpus / "rss/en_nytimes-world.xml").read_bytes()
    remote = asyncio.run(workers.parse(len(body), parse_feed, body, url="https://www.nytimes.com/", known={}))
    assert workers.pids  # it did run in the worker
    # asked with a built-in function: a job function of this module would import the module, and pytest with it
    probe = "[m for m in ('_hashlib', 'ssl', 'numpy', 'lxml') if __import__('sys').modules.get(m)]"
    assert asyncio.run(workers.parse(len(BIG), eval, probe)) == ["lxml"]
    here = parse_feed(body, url="https://www.nytimes.com/", known={})  # known: every item gets its raw digest
    assert sys.modules.get("_hashlib") and [i.raw_digest for i in remote.items] == [i.raw_digest for i in here.items]
    assert all(i.raw_digest for i in here.items)


def test_small_bodies_are_parsed_inline(workers: Workers) -> None:
    assert asyncio.run(workers.parse(10, my_pid, b"x")) == os.getpid() and workers.pids == []


def test_a_job_over_its_time_limit_is_killed_and_the_worker_replaced(workers: Workers) -> None:
    async def go() -> tuple[int, BaseException, int]:
        first = await workers.parse(len(BIG), my_pid, BIG)
        try:
            await workers.parse(len(BIG), burn, BIG, 600.0, time_limit=1.0)  # a job that wants 10 minutes
        except ParseTimeout as exc:
            error: BaseException = exc
        after = await workers.parse(len(BIG), my_pid, BIG)
        return first, error, after

    first, error, after = asyncio.run(go())
    assert str(error).startswith("parsing took longer than 1 s; stopped")
    assert _is_zombie_or_gone(first)  # the worker was killed, not waited for
    assert after != first and workers.pids == [after]  # a fresh worker does the next job


def test_a_killed_worker_is_replaced_and_the_job_sent_to_the_new_one(
    items: list[RawItem], workers: Workers, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> tuple[list[object], list[object]]:
        first = await workers.prepare(items, "nyt", {}, NOW)
        for pid in workers.pids:
            os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
        second = await workers.prepare(items, "nyt", {}, NOW)
        return list(first), list(second)

    with caplog.at_level("WARNING"):
        first, second = asyncio.run(go())
    assert first == second
    assert "worker_lost" in caplog.text


def test_errors_in_the_worker_come_back_as_they_were_raised(workers: Workers) -> None:
    with pytest.raises(ParseError, match="not a feed: a test"):
        asyncio.run(workers.parse(len(BIG), refuse, BIG))
    with pytest.raises(KeyError) as info:
        asyncio.run(workers.parse(len(BIG), crash, BIG))
    assert any("in the worker process" in note for note in getattr(info.value, "__notes__", []))
    assert asyncio.run(workers.parse(len(BIG), my_pid, BIG)) in workers.pids  # the worker survived both


def test_a_job_that_takes_its_worker_down_twice_fails_alone(workers: Workers) -> None:
    with pytest.raises(ParseError, match=r"parsing stopped the worker process twice \(exit code 3\)"):
        asyncio.run(workers.parse(len(BIG), exit_hard, BIG))
    assert asyncio.run(workers.parse(len(BIG), my_pid, BIG)) in workers.pids


def test_a_batch_is_prepared_inline_while_the_worker_is_busy(
    items: list[RawItem], workers: Workers, tmp_path: Path
) -> None:
    """A busy worker (here: held by a parse until a file appears) makes a prepare run in this process at once,
    never wait behind the parse; the worker is still busy when the batch comes back."""
    release = tmp_path / "release"

    async def go() -> tuple[list[object], bool, int]:
        parsing = asyncio.ensure_future(workers.parse(len(BIG), wait_for_file, BIG, str(release)))
        for _ in range(600):  # until the parse holds the worker (bounded)
            if workers.pids:
                break
            await asyncio.sleep(0.01)
        prepared = await workers.prepare(items, "nyt", {}, NOW)
        still_parsing = not parsing.done()
        release.touch()
        return list(prepared), still_parsing, await parsing

    prepared, still_parsing, parse_pid = asyncio.run(go())
    assert still_parsing and parse_pid in workers.pids
    assert prepared == prepare(items, "nyt", {}, NOW, workers.matcher)


def test_the_worker_takes_its_next_job_while_the_event_loop_is_busy(workers: Workers) -> None:
    """Jobs wait in a queue the worker's thread reads, not on the event loop: while the loop is held (as by a
    store's save), the worker finishes one job and starts the next; under the former per-job hand-off from the
    loop it sat idle until the loop was free."""

    async def go() -> tuple[list[tuple[float, float]], float]:
        await workers.parse(len(BIG), my_pid, BIG)  # the worker is up: its start-up is not part of what is seen
        jobs = [asyncio.ensure_future(workers.parse(len(BIG), stamped_nap, BIG, 0.1)) for _ in range(3)]
        await asyncio.sleep(0)  # each job is queued
        time.sleep(2.0)  # the event loop is busy: nothing of it runs meanwhile
        loop_free_at = time.time()
        return list(await asyncio.gather(*jobs)), loop_free_at

    stamps, loop_free_at = asyncio.run(go())
    assert all(end < loop_free_at for _, end in stamps), (stamps, loop_free_at)  # all three done inside the hold
    ordered = sorted(stamps)
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(ordered)), ordered  # one at a time


def test_jobs_queued_behind_one_that_kills_its_worker_all_get_a_new_one(
    workers: Workers, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The worker dies under the first job while two more wait in the queue: the next job's thread finds no
    worker, the event loop starts one and queues the job again, and the first job is retried on a new worker:
    all three are answered, by live workers, with one loss logged."""
    marker = tmp_path / "exited"

    async def go() -> list[int]:
        await workers.parse(len(BIG), my_pid, BIG)  # the worker is up
        jobs = [
            asyncio.ensure_future(workers.parse(len(BIG), exit_once, BIG, str(marker))),
            asyncio.ensure_future(workers.parse(len(BIG), my_pid, BIG)),
            asyncio.ensure_future(workers.parse(len(BIG), my_pid, BIG)),
        ]
        return list(await asyncio.gather(*jobs))

    with caplog.at_level("WARNING"):
        pids = asyncio.run(go())
    assert marker.exists() and set(pids) <= set(workers.pids), (pids, workers.pids)
    assert caplog.text.count("worker_lost what='parsing' exit=3") == 1, caplog.text


def test_a_job_whose_workers_keep_dying_fails_in_bounded_tries_and_never_runs_here(workers: Workers) -> None:
    """Every worker is SIGKILLed as soon as it exists (another process gone wrong, an OOM killer): the job is
    queued again a bounded number of times and then fails with ParseError; it never falls back to this process,
    where a hostile parse would stall every other source."""
    stop = threading.Event()

    def killer() -> None:
        deadline = time.monotonic() + 30  # bounded whatever happens
        while not stop.is_set() and time.monotonic() < deadline:
            for pid in workers.pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        with pytest.raises(ParseError, match="worker"):
            asyncio.run(workers.parse(len(BIG), stamped_nap, BIG, 0.5))
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_a_job_cancelled_while_it_runs_takes_its_worker_with_it(workers: Workers, tmp_path: Path) -> None:
    """A cancelled poll (the daemon stopping, a reload) cannot leave its parse running on: the worker is killed,
    and the next job gets a new one."""
    never = tmp_path / "never"

    async def go() -> tuple[int, int]:
        first = await workers.parse(len(BIG), my_pid, BIG)
        holding = asyncio.ensure_future(workers.parse(len(BIG), wait_for_file, BIG, str(never)))
        for _ in range(600):  # until its thread has the worker (bounded)
            await asyncio.sleep(0.01)
            if not workers._idle:
                break
        holding.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holding
        return first, await workers.parse(len(BIG), my_pid, BIG)

    first, after = asyncio.run(go())
    assert _is_zombie_or_gone(first)
    assert after != first and workers.pids == [after]


def test_a_job_cancelled_before_its_turn_leaves_the_busy_worker_alone(workers: Workers, tmp_path: Path) -> None:
    release = tmp_path / "release"

    async def go() -> tuple[int, int]:
        holding = asyncio.ensure_future(workers.parse(len(BIG), wait_for_file, BIG, str(release)))
        queued = asyncio.ensure_future(workers.parse(len(BIG), my_pid, BIG))
        for _ in range(600):  # until the first job holds the worker (bounded)
            await asyncio.sleep(0.01)
            if workers.pids and not workers._idle:
                break
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.touch()
        holder = await holding
        return holder, await workers.parse(len(BIG), my_pid, BIG)

    holder, next_job = asyncio.run(go())
    assert next_job == holder and workers.pids == [holder]  # the same worker, never killed


def test_no_workers_means_inline(items: list[RawItem]) -> None:
    workers = Workers(TOPICS, processes=0)
    result = asyncio.run(workers.prepare(items, "nyt", {}, NOW))
    assert workers.pids == [] and result == prepare(items, "nyt", {}, NOW, workers.matcher)


def test_known_unchanged_items_are_skipped_and_changed_ones_keep_first_seen(items: list[RawItem]) -> None:
    workers = Workers(TOPICS, processes=0)
    first = prepare(items, "nyt", {}, NOW, workers.matcher)
    earlier = NOW.replace(year=2025)
    known = {p.post.key: (earlier, p.post.content_hash) for p in first}
    assert prepare(items, "nyt", known, NOW, workers.matcher) == []
    changed_key = first[0].post.key
    known[changed_key] = (earlier, "0" * 32)
    again = prepare(items, "nyt", known, NOW, workers.matcher)
    assert [p.post.key for p in again] == [changed_key] and again[0].post.first_seen_at == earlier


def test_close_stops_every_worker(workers: Workers) -> None:
    pid = asyncio.run(workers.parse(len(BIG), my_pid, BIG))
    workers.close()
    assert _wait_gone([pid], 10) == []


# --- no orphans: a parent killed with SIGKILL takes its workers with it ---------------------------------------

PARENT = textwrap.dedent(
    """
    import asyncio, sys, time
    from monitor.workers import Workers
    from tests.test_workers import BIG, my_pid
    workers = Workers((), processes=1)
    pid = asyncio.run(workers.parse(len(BIG), my_pid, BIG))
    print(pid, flush=True)
    time.sleep(300)
    """
)


@pytest.mark.slow
def test_a_worker_dies_with_its_parent_after_sigkill() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        assert _parent_of(worker) == parent.pid
        parent.kill()
        parent.wait(10)
        assert _wait_gone([worker], 10) == []
        assert _group(parent.pid) == []  # nothing at all is left of its process group
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _is_zombie_or_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _group(pgid: int) -> list[int]:
    """Live processes (not zombies) in process group `pgid`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    """The pids still alive after waiting up to `seconds` for them to end (bounded, polled)."""
    deadline = time.monotonic() + seconds
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if not _is_zombie_or_gone(p)]
        if alive:
            time.sleep(0.1)
    return alive
