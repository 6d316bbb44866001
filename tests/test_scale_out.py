"""Polls spread over workers (issue 13, part 2): `monitor run --role scheduler` and `monitor worker` as real
processes on a throwaway PostgreSQL cluster, loopback feeds (bench/scale_out.py's FeedWorld) and a real aiosmtpd.

Each run's guarantees: every source polled once per interval, never two polls of a source at once, every post
stored once, every alert mailed once; a SIGKILLed worker's polls done by the others within one interval; the
per-host limit held across workers. Plus the pure cadence, the queue's schema applied once, and exit 2 on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from bench.scale_out import Cluster, FeedWorld, config_text, wait_for
from monitor.config import Config
from monitor.scaleout import queue
from monitor.scaleout.timing import Beats, Cadence
from monitor.scaleout.worker import Jobs
from monitor.store import ClusterStore, cluster_store, open_store
from monitor.store.postgres.cluster import SOURCE_KEY
from monitor.types import StoreURL
from tests import pgserver
from tests.conftest import (
    RawServer,
    SmtpServer,
    make_config,
    refused_port,
    respond,
    run_monitor,
    run_python,
    sql,
    write_config,
)

SOURCES = 300
INTERVAL_S = 10.0
KILL_SOURCES = 100  # the kill run: polls kept in flight by slow answers, a load the 2-core CI box must keep up with
FEED = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>News</title><item><title>On separatism</title>'
    b"<link>http://127.0.0.1/1</link><guid>1</guid><description>A text on separatism.</description></item>"
    b"</channel></rss>"
)
KILL_INTERVAL_S = 20.0  # the kill run's feeds answer slowly (polls in flight to cut): fewer polls a second


# ------------------------------------------------------------------------------------------ without a server
def test_scheduler_and_worker_need_a_postgresql_store(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, "store: store.db\ntopics: {t: [x]}\nsources:\n  - {name: s, type: feed, url: 'http://127.0.0.1:9/'}\n"
    )
    for args in (("worker",), ("run", "--role", "scheduler")):
        done = run_monitor(path, *args, timeout=60)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "needs a PostgreSQL store" in lines[0], done.stderr
        assert "monitor run" in lines[0]  # what to use instead
    assert not (tmp_path / "store.db").exists()  # nothing created


def test_help_names_the_roles(tmp_path: Path) -> None:
    path = write_config(tmp_path, "store: store.db\ntopics: {t: [x]}\nsources: []\n")
    worker = run_monitor(path, "worker", "--help", timeout=60)
    run = run_monitor(path, "run", "--help", timeout=60)
    assert worker.returncode == run.returncode == 0
    assert "--concurrency" in worker.stdout and "scheduler" in worker.stdout
    assert "--role" in run.stdout and "monitor worker" in run.stdout


def test_cadence_keeps_each_source_on_its_interval(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        """
        store: store.db
        topics: {t: [x]}
        sources:
          - {name: a, type: feed, url: 'http://127.0.0.1:9/a', interval: 10s}
          - {name: b, type: feed, url: 'http://127.0.0.1:9/b', interval: 20s}
        """,
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    cadence = Cadence(list(config.sources), start)
    due: dict[str, list[int]] = {}
    for second in range(0, 61):
        for source in cadence.due(start + timedelta(seconds=second)):
            due.setdefault(source.name, []).append(second)
    assert due["a"] == [0, 10, 20, 30, 40, 50, 60]
    assert len(due["b"]) == 3 and all(y - x == 20 for x, y in itertools.pairwise(due["b"]))
    # a scheduler that stalled for 35 s queues each source once, and keeps the cadence afterwards
    later = start + timedelta(seconds=95)
    assert [s.name for s in cadence.due(later)] == ["a", "b"]
    assert cadence.due(later + timedelta(seconds=4)) == []
    assert [s.name for s in cadence.due(later + timedelta(seconds=5))] == ["a"]
    assert Beats.of(config).stalled_after_s < 10  # a dead worker's polls come back within the shortest interval


# ------------------------------------------------------------------------------------------ on PostgreSQL
def test_queue_schema_is_applied_once(pg_url: StoreURL) -> None:
    with open_store(pg_url) as store:
        cluster = cluster_store(store)
        assert cluster is not None
        first = queue.ensure_schema(cluster)
        assert first[0].startswith("schema ") and len(first) > 1  # the schema, its migrations recorded with it
        assert queue.ensure_schema(cluster) == []
        with store.pool.connection() as conn:  # type: ignore[attr-defined]
            assert conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0] is not None


def test_host_slots_hold_the_limit_across_stores(pg_url: StoreURL) -> None:
    """Two stores (as two worker processes would hold) and 24 requests to one host at once: at most per_host run."""
    with open_store(pg_url) as one, open_store(pg_url) as two:
        slots = [s.host_slots(3) for s in (cluster_store(one), cluster_store(two)) if s is not None]
        running = 0
        most = 0

        async def request(n: int) -> None:
            nonlocal running, most
            async with slots[n % 2].hold("feeds.example.org"), slots[(n + 1) % 2].hold("other.example.org"):
                running += 1
                most = max(most, running)
                await asyncio.sleep(0.02)
                running -= 1

        async def all_at_once() -> None:
            async with asyncio.timeout(60):
                await asyncio.gather(*(request(n) for n in range(24)))

        asyncio.run(all_at_once())
        for held in slots:
            held.close()
    assert most == 3


def test_a_source_is_polled_by_one_process_of_the_cluster_at_a_time(pg_url: StoreURL) -> None:
    """Source locks of two stores (two workers): one holder per source, a second poll in the same process refused
    too, and a holder whose connection dies (a killed worker) leaves the source free."""
    with open_store(pg_url) as one_store, open_store(pg_url) as two_store:
        one, two = (cluster_store(s) for s in (one_store, two_store))
        assert one is not None and two is not None
        first, second = one.source_locks(), two.source_locks()
        gone = False

        async def scenario() -> list[bool]:
            nonlocal gone
            seen = []
            async with first.hold("a") as held:
                seen.append(held)
                async with second.hold("a") as other, first.hold("a") as again, second.hold("b") as b:
                    seen += [other, again, b]
            async with second.hold("a") as after:
                seen.append(after)
            async with first.hold("a") as held:
                held_here = (
                    "FROM pg_locks WHERE locktype = 'advisory' AND objid = ? AND pid <> pg_backend_pid() AND "
                    "database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
                sql(one_store, f"SELECT pg_terminate_backend(pid) {held_here}", (SOURCE_KEY,))
                # the server ends the backend a moment after it is asked to (a killed worker's, as soon as it notices)
                gone = wait_for(lambda: sql(one_store, f"SELECT count(*) {held_here}", (SOURCE_KEY,)) == [(0,)], 30)
                async with second.hold("a") as after_death:
                    seen += [held, after_death]
            async with first.hold("a") as reconnected:  # the dead connection is replaced
                seen.append(reconnected)
            return seen

        try:
            assert asyncio.run(scenario()) == [True, False, False, True, True, True, True, True]
            assert gone
        finally:
            first.close()
            second.close()


def news_config(tmp_path: Path, pg_url: StoreURL, raw_server: RawServer) -> Config:
    """One feed source, `news`, on the loopback server, in a store on the test's PostgreSQL server."""
    raw_server.routes["/feed"] = respond(200, FEED, {"Content-Type": "application/rss+xml"})
    return make_config(
        tmp_path,
        f"""
        store: "{pg_url}"
        topics: {{t: [separatism]}}
        sources:
          - {{name: news, type: feed, url: "{raw_server.url("/feed")}"}}
        """,
    )


@contextlib.asynccontextmanager
async def worker_jobs(config: Config, cluster: ClusterStore, pg_url: StoreURL) -> AsyncIterator[Jobs]:
    """A worker's jobs, in this process: its fetcher and queue open, everything it holds closed at the end."""
    queue.ensure_schema(cluster)
    jobs = Jobs(config, cluster, queue.open_app(str(pg_url), cluster), lambda: datetime.now(UTC))
    try:
        async with jobs.fetcher, jobs.app.open_async():
            yield jobs
    finally:
        jobs.workers.close()
        jobs.slots.close()
        jobs.source_locks.close()


def test_a_worker_skips_the_poll_of_a_source_another_one_is_polling(
    tmp_path: Path, pg_url: StoreURL, raw_server: RawServer
) -> None:
    config = news_config(tmp_path, pg_url, raw_server)
    with open_store(pg_url) as store, open_store(pg_url) as elsewhere:
        cluster, other = cluster_store(store), cluster_store(elsewhere)
        assert cluster is not None and other is not None
        holder = other.source_locks()

        def feed_requests() -> int:
            return sum(path == "/feed" for path, _ in raw_server.requests)

        async def polls() -> tuple[int, int]:
            try:
                async with worker_jobs(config, cluster, pg_url) as jobs:
                    async with holder.hold("news") as held:
                        assert held
                        await jobs.poll("news")  # the other worker still polls it: skipped
                    skipped = feed_requests()
                    await jobs.poll("news")
                    return skipped, feed_requests()
            finally:
                holder.close()

        assert asyncio.run(polls()) == (0, 1)
        assert sql(store, "SELECT count(*) FROM posts") == [(1,)]
        assert sql(store, "SELECT task_name FROM procrastinate_jobs") == [(queue.EVALUATE,)]  # the match's evaluation


def test_a_worker_started_after_another_obeys_the_robots_txt_that_one_kept(
    tmp_path: Path, pg_url: StoreURL, raw_server: RawServer
) -> None:
    """Workers share the store's `robots`: the first reads the host's robots.txt and keeps it, and a worker started
    after it obeys the kept file (within the 12 hours) without asking the host again."""
    raw_server.routes["/robots.txt"] = respond(200, b"User-agent: *\nDisallow: /private/\n")
    config = news_config(tmp_path, pg_url, raw_server)
    with open_store(pg_url) as store:
        cluster = cluster_store(store)
        assert cluster is not None

        async def one_worker_polls() -> None:
            async with worker_jobs(config, cluster, pg_url) as jobs:
                await jobs.poll("news")

        for _ in range(2):
            asyncio.run(one_worker_polls())
        assert [path for path, _ in raw_server.requests].count("/feed") == 2
        assert [path for path, _ in raw_server.requests].count("/robots.txt") == 1
        assert sql(store, "SELECT origin FROM robots") == [(raw_server.url("").rstrip("/"),)]


STOPPED_WHILE_STARTING = """
import os, signal, sys
from monitor import cli
from monitor.scaleout import queue

schema = queue.ensure_schema

def ensure_schema(store):  # the worker's first step: a SIGTERM comes right then, before Procrastinate's handlers
    os.kill(os.getpid(), signal.SIGTERM)
    schema(store)

queue.ensure_schema = ensure_schema
cli.main(["--config", sys.argv[1], *sys.argv[2:]], prog_name="monitor")
"""


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["worker"], ["stopping before the first job", "worker_stopped polls=0"]),
        (["run", "--role", "scheduler"], []),
    ],
)
def test_a_sigterm_while_a_worker_or_the_scheduler_starts_stops_it_cleanly(
    tmp_path: Path, pg_url: StoreURL, command: list[str], said: list[str]
) -> None:
    config = write_config(
        tmp_path,
        f"""
        store: "{pg_url}"
        topics: {{t: [separatism]}}
        sources:
          - {{name: offline, type: feed, url: "http://127.0.0.1:{refused_port()}/feed"}}
        """,
    )
    run = run_python(STOPPED_WHILE_STARTING, str(config), *command, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]  # it was -15: killed by the default action
    assert all(words in run.stderr for words in said), run.stderr[-2000:]
    assert "Traceback" not in run.stderr


# ------------------------------------------------------------------------------------------ real processes
def jobs(pg: pgserver.Cluster, database: str, where: str) -> list[str]:
    rows = pg.psql(f"SELECT args->>'source' FROM procrastinate_jobs j {where}", database)
    return [r for r in rows.splitlines() if r]


def settle(pg: pgserver.Cluster, database: str, cluster: Cluster, timeout: float = 60) -> None:
    """Stop the scheduler, let the workers finish what is queued, then stop them (nothing cut mid-poll)."""
    scheduler = cluster.procs["scheduler"]
    scheduler.send_signal(signal.SIGTERM)
    assert scheduler.wait(30) == 0, cluster.log("scheduler")[-3000:]
    assert wait_for(lambda: not jobs(pg, database, "WHERE status IN ('todo', 'doing')"), timeout), "queue not drained"


def check_each_source_polled_once_per_interval(
    world: FeedWorld, since: float, until: float, *, reruns: bool = False, interval: float = INTERVAL_S
) -> None:
    """Between consecutive polls of each source: no more than 1.5 intervals (none missed; the half is the queue's
    latency), and unless a cut poll ran again (`reruns`), no less than half of one (none polled twice)."""
    for k in range(world.feeds):
        starts = [r.started for r in world.log[str(k)] if since <= r.started <= until]
        assert len(starts) >= 2, f"feed {k}: {len(starts)} polls"
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert reruns or min(gaps) >= interval / 2, f"feed {k} polled twice in one interval: gaps {gaps}"
        assert max(gaps) <= interval * 1.5, f"feed {k} missed an interval: gaps {gaps}"


def check_posts_and_mail(world: FeedWorld, url: StoreURL, smtp: SmtpServer) -> None:
    with open_store(url, readonly=True) as store:
        with store.pool.connection() as conn:  # type: ignore[attr-defined]
            stored = dict(conn.execute("SELECT source, count(*) FROM posts GROUP BY source").fetchall())
        alerts = store.alerts(limit=1000)
    served = {f"f{k:03d}": len(world.log[str(k)]) for k in range(world.feeds)}
    assert stored == served  # each request brought one new post: every one stored, none twice
    smtp.settle()
    messages = [m for m in smtp.sink.parsed() if isinstance(m, EmailMessage)]
    copies = Counter(str(m["X-Monitor-Alert"]) for m in messages)
    spikes = [a for a in alerts if a.kind.value == "spike"]
    assert len(spikes) == (world.spiking + 2) // 3  # one spike per topic (then its cooldown)
    assert len(messages) == len(alerts) and set(copies.values()) == {1}, copies
    assert {a.status.value for a in alerts} == {"sent"}


def start_world(
    tmp_path: Path,
    pg: pgserver.Cluster,
    smtp: SmtpServer | None,
    *,
    sources: int,
    delay: float,
    per_host: int,
    interval: float = INTERVAL_S,
) -> tuple[FeedWorld, StoreURL, str, Cluster]:
    world = FeedWorld(sources, spiking=15 if smtp else 0, delay=delay)
    database = pg.new_database()
    url = StoreURL(pg.url(database))
    config = tmp_path / "config.yaml"
    text = config_text(
        world, url.url, interval=f"{interval:g}s", per_host=per_host, smtp_port=smtp.port if smtp else None
    )
    config.write_text(text, encoding="utf-8")
    return world, url, database, Cluster(config, tmp_path)


@pytest.mark.slow
def test_a_scheduler_and_three_workers_poll_each_source_once_per_interval(
    tmp_path: Path, pg_cluster: pgserver.Cluster, smtp: SmtpServer
) -> None:
    world, url, database, cluster = start_world(tmp_path, pg_cluster, smtp, sources=SOURCES, delay=0.0, per_host=32)
    try:
        for n in range(3):
            cluster.worker(f"worker{n}")
        cluster.scheduler()
        assert wait_for(lambda: all(world.log[str(k)] for k in range(SOURCES)), 3 * INTERVAL_S), "not all polled"
        since = time.monotonic()
        time.sleep(INTERVAL_S * 3.5)
        until = time.monotonic()
        settle(pg_cluster, database, cluster)
        codes = cluster.stop()
    finally:
        cluster.stop()
        world.close()
    assert set(codes.values()) == {0}, {n: cluster.log(n)[-2000:] for n in codes}
    assert world.max_active_per_feed == 1  # never two polls of one source at once
    check_each_source_polled_once_per_interval(world, since, until)
    check_posts_and_mail(world, url, smtp)
    polled = [cluster.log(f"worker{n}").count("collected source=") for n in range(3)]
    assert all(p > SOURCES / 10 for p in polled), polled  # the polls are spread over the three


def scraped(log: str) -> dict[str, float]:
    """The figures served at the `metrics_listening` address a process logged (series name with labels -> value)."""
    found = re.search(r"metrics_listening url=(http://127\.0\.0\.1:\d+/metrics)", log)
    assert found, log[-2000:]
    with urllib.request.urlopen(found.group(1), timeout=10) as answer:
        text = answer.read().decode()
    return {
        name: float(value)
        for name, _, value in (line.rpartition(" ") for line in text.splitlines() if line and line[0] != "#")
    }


def polls(figures: dict[str, float]) -> float:
    return sum(v for k, v in figures.items() if k.startswith("monitor_polls_total{"))


def test_the_scheduler_and_a_worker_serve_their_metrics(tmp_path: Path, pg_cluster: pgserver.Cluster) -> None:
    sources = 20
    world, _url, _database, cluster = start_world(tmp_path, pg_cluster, None, sources=sources, delay=0.0, per_host=8)
    try:
        cluster.worker("worker0", 4, "--metrics", "127.0.0.1:0")
        cluster.scheduler("--metrics", "127.0.0.1:0")
        assert wait_for(lambda: all(world.log[str(k)] for k in range(sources)), 3 * INTERVAL_S), "not all polled"
        assert wait_for(lambda: "metrics_listening" in cluster.log("scheduler"), 30)
        # a feed's request is served before its poll is stored and counted: wait for the count, not the request
        assert wait_for(lambda: polls(scraped(cluster.log("worker0"))) >= sources, 30)
        worker = scraped(cluster.log("worker0"))
        assert wait_for(lambda: 'monitor_queue_jobs{state="waiting"}' in scraped(cluster.log("scheduler")), 30)
        scheduler = scraped(cluster.log("scheduler"))
        codes = cluster.stop()
    finally:
        cluster.stop()
        world.close()
    assert set(codes.values()) == {0}, {n: cluster.log(n)[-2000:] for n in codes}
    assert polls(worker) >= sources and worker["monitor_sources"] == sources
    assert sum(v for k, v in worker.items() if k.startswith("monitor_posts_new_total{")) >= sources
    assert scheduler["monitor_polls_queued_total"] >= sources and scheduler["monitor_sources"] == sources
    assert "monitor_polls_total" not in "".join(scheduler)  # the polls are the workers' figures


@pytest.mark.slow
def test_a_killed_workers_polls_are_done_by_the_others_within_one_interval(
    tmp_path: Path, pg_cluster: pgserver.Cluster, smtp: SmtpServer
) -> None:
    world, url, database, cluster = start_world(
        tmp_path, pg_cluster, smtp, sources=KILL_SOURCES, delay=0.2, per_host=32, interval=KILL_INTERVAL_S
    )
    try:
        victim = cluster.worker("worker0")
        for n in (1, 2):
            cluster.worker(f"worker{n}")
        cluster.scheduler()
        assert wait_for(lambda: all(world.log[str(k)] for k in range(KILL_SOURCES)), 3 * KILL_INTERVAL_S), (
            "not all polled"
        )
        since = time.monotonic()
        assert wait_for(lambda: "queue_worker id=" in cluster.log("worker0"), KILL_INTERVAL_S)
        worker_id = int(cluster.log("worker0").split("queue_worker id=")[1].split()[0])
        mine = f"WHERE status = 'doing' AND worker_id = {worker_id}"
        assert wait_for(lambda: len(jobs(pg_cluster, database, mine)) >= 2, 2 * KILL_INTERVAL_S), (
            "the victim polls nothing"
        )
        in_flight = jobs(pg_cluster, database, mine)
        os.kill(victim.pid, signal.SIGKILL)
        killed = time.monotonic()
        victim.wait(10)
        # two and a half intervals: a source polled just before `since` has its second turn in the window even when
        # a loaded machine starts it a few seconds late (two exactly failed on a busy CI box: 1 poll seen)
        time.sleep(KILL_INTERVAL_S * 2.5)
        settle(pg_cluster, database, cluster)
        codes = cluster.stop()
    finally:
        cluster.stop()
        world.close()
    assert codes["worker0"] == -signal.SIGKILL
    assert codes["worker1"] == codes["worker2"] == codes["scheduler"] == 0
    # every source's turn came round after the kill as before it: none waited more than its interval (and the
    # queue's latency), whichever worker had it
    check_each_source_polled_once_per_interval(world, since, time.monotonic(), reruns=True, interval=KILL_INTERVAL_S)
    for k in range(KILL_SOURCES):
        assert any(killed < r.started <= killed + KILL_INTERVAL_S * 1.5 for r in world.log[str(k)]), f"feed {k}"
    for name in in_flight:  # the polls cut by the kill ran again (the feed's next answer carries their post)
        assert any(r.started > killed for r in world.log[str(int(name[1:]))])
    assert world.max_active_per_feed == 1
    assert "job_requeued" in cluster.log("scheduler")  # the dead worker's jobs went back in the queue
    check_posts_and_mail(world, url, smtp)


@pytest.mark.slow
def test_the_per_host_limit_holds_across_workers(tmp_path: Path, pg_cluster: pgserver.Cluster) -> None:
    """Three workers, each allowed 2 requests to the host itself: 2 in the whole cluster (the server counts)."""
    world, _url, _database, cluster = start_world(tmp_path, pg_cluster, None, sources=40, delay=0.25, per_host=2)
    try:
        for n in range(3):
            cluster.worker(f"worker{n}")
        cluster.scheduler()
        assert wait_for(lambda: world.requests() >= 60, 6 * INTERVAL_S), "polls too few"
        codes = cluster.stop()
    finally:
        cluster.stop()
        world.close()
    assert set(codes.values()) == {0}
    assert world.max_active == 2, world.max_active  # the limit, reached and never passed
    polled = [cluster.log(f"worker{n}").count("collected source=") for n in range(3)]
    assert sum(1 for p in polled if p) >= 2, polled  # several workers did request the host


@pytest.mark.slow
def test_a_standby_scheduler_takes_over_when_the_first_dies(tmp_path: Path, pg_cluster: pgserver.Cluster) -> None:
    """One scheduler at a time (the store's daemon lock); the standby's queueing resumes after a SIGKILL."""
    world, _url, _database, cluster = start_world(tmp_path, pg_cluster, None, sources=20, delay=0.0, per_host=8)
    try:
        cluster.worker("worker0")
        first = cluster.scheduler()
        assert wait_for(lambda: "scheduler_started" in cluster.log("scheduler"), 60), cluster.log("scheduler")
        cluster.start("standby", "run", "--role", "scheduler")
        assert wait_for(lambda: "scheduler_standby" in cluster.log("standby"), 60), cluster.log("standby")
        assert "scheduler_started" not in cluster.log("standby")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        killed = time.monotonic()
        assert wait_for(lambda: "scheduler_took_over" in cluster.log("standby"), 30), cluster.log("standby")
        assert wait_for(lambda: all(any(r.started > killed for r in world.log[str(k)]) for k in range(20)), 30)
        codes = cluster.stop()
    finally:
        cluster.stop()
        world.close()
    assert codes["standby"] == codes["worker0"] == 0
