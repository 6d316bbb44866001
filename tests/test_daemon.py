"""`monitor run` as an operator runs it: one daemon per store, `poll` beside it, a graceful SIGTERM (real processes)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from itertools import pairwise
from pathlib import Path

import pytest

from monitor.exceptions import StoreLocked
from monitor.store import this_process
from monitor.store.sqlite import open_sqlite
from monitor.types import AlertKind, Holder, NewAlert
from tests.conftest import (
    NOW,
    RawServer,
    SmtpServer,
    refused_port,
    run_monitor,
    run_python,
    start_daemon,
    wait_for,
    write_config,
)

FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><guid>a1</guid><title>Separatist rally</title><link>http://example.org/a1</link></item>
</channel></rss>"""


def offline_config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path,
        f"""
store: store.db
topics: {{t: [x]}}
sources:
  - {{name: offline, type: feed, url: "http://127.0.0.1:{refused_port()}/feed", interval: 1h, robots: false}}
""",
    )


def holder_pid(store: Path) -> int | None:
    try:
        row = sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True).execute("SELECT holder FROM daemon").fetchone()
    except sqlite3.Error:
        return None
    holder = Holder.parse(row[0]) if row else None
    return holder.pid if holder else None


@pytest.mark.slow
def test_a_second_daemon_exits_1_naming_the_holder_until_the_first_dies(
    tmp_path: Path, daemons: list[subprocess.Popen[bytes]]
) -> None:
    config = offline_config(tmp_path)
    first = start_daemon(config, tmp_path / "first.log")
    daemons.append(first)
    wait_for(lambda: holder_pid(tmp_path / "store.db") == first.pid, "the first daemon to hold the store")
    second = run_monitor(config, "run", timeout=60)
    assert second.returncode == 1
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "held by another `monitor run`" in lines[0] and f"pid {first.pid}" in lines[0]
    assert "Traceback" not in second.stderr

    os.killpg(first.pid, signal.SIGKILL)  # the OS releases the lock of a process however it dies
    first.wait(10)
    third = start_daemon(config, tmp_path / "third.log")
    daemons.append(third)
    wait_for(lambda: holder_pid(tmp_path / "store.db") == third.pid, "a new daemon after the first was killed")
    third.send_signal(signal.SIGTERM)
    assert third.wait(15) == 0


STOPPED_WHILE_STARTING = """
import asyncio, logging, os, signal, sys
from datetime import UTC, datetime
from monitor.collectors import SOURCE_MODELS
from monitor.config import load_config
from monitor.daemon import run_daemon
from monitor.store import open_store

logging.basicConfig(level=logging.INFO, format="%(message)s")
config = load_config(sys.argv[1], source_types=SOURCE_MODELS)
asked = []

def clock():  # its first call is the daemon taking the store's lock: a SIGTERM comes right then
    if not asked:
        asked.append(os.kill(os.getpid(), signal.SIGTERM))
    return datetime.now(UTC)

with open_store(config.store, create=True) as store:
    sys.exit(asyncio.run(run_daemon(config, store, clock=clock)))
"""


def test_a_sigterm_while_the_daemon_starts_stops_it_cleanly(tmp_path: Path) -> None:
    """The stop asked between taking the lock and the daemon's running is kept: exit 0, not death by SIGTERM."""
    config = offline_config(tmp_path)
    done = run_python(STOPPED_WHILE_STARTING, str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "signal_received signal=SIGTERM" in done.stderr and "daemon_stopped" in done.stderr
    with open_sqlite(tmp_path / "store.db") as store:
        assert store.daemon_holder() is None  # the lock was given back


def test_the_daemon_lock_is_one_per_store_and_its_heartbeat_is_written(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with open_sqlite(path) as first, open_sqlite(path) as second:
        assert first.daemon_holder() is None
        first.lock_daemon(this_process(), NOW)
        with pytest.raises(StoreLocked, match=f"pid {os.getpid()}") as refused:
            second.lock_daemon(this_process(), NOW)
        assert refused.value.holder == str(this_process())
        assert second.daemon_holder() == this_process()
        first.heartbeat(NOW + timedelta(minutes=1))
        row = first.conn.execute("SELECT holder, started_at, heartbeat_at FROM daemon").fetchone()
        assert row == (str(this_process()), "2026-03-01T12:00:00Z", "2026-03-01T12:01:00Z")
        first.unlock_daemon()
        assert second.daemon_holder() is None
        second.lock_daemon(this_process(), NOW)  # free again


def test_poll_beside_a_daemon_polls_and_stores_but_leaves_alerts_to_it(
    tmp_path: Path, raw_server: RawServer, smtp: SmtpServer
) -> None:
    raw_server.routes["/feed"] = lambda req: _answer(req, FEED)
    config = write_config(
        tmp_path,
        f"""
store: store.db
topics: {{separatism: [separatist*]}}
sources:
  - {{name: news, type: feed, url: "{raw_server.url("/feed")}", robots: false}}
alerts:
  email: {{host: 127.0.0.1, port: {smtp.port}, sender: m@example.org, to: [a@example.org], timeout: 5s}}
""",
    )
    with open_sqlite(tmp_path / "store.db") as daemon:  # this test process plays the daemon
        now = datetime.now(UTC)  # a fresh alert: one over 24 h old is stale and never mailed
        daemon.insert_alert(NewAlert(kind=AlertKind.DIGEST), created_at=now, channels=["email"])
        daemon.lock_daemon(this_process(), now)
        done = run_monitor(config, "poll")
        assert done.returncode == 0, done.stderr
        assert f"alerts are left to the daemon, pid {os.getpid()}" in done.stderr
        assert smtp.sink.messages == []  # the daemon's pending alert was not mailed by the poll
        assert daemon.conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 1  # but the poll stored
    done = run_monitor(config, "poll")  # no daemon now: the poll delivers
    assert done.returncode == 0 and "left to the daemon" not in done.stderr
    assert len(smtp.sink.messages) == 1


def _answer(req: BaseHTTPRequestHandler, body: bytes, delay: float = 0.0) -> None:
    time.sleep(delay)
    req.send_response(200)
    req.send_header("Content-Type", "application/rss+xml")
    req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body)


@pytest.mark.slow
def test_sigterm_gives_a_poll_in_flight_its_grace_period(
    tmp_path: Path, raw_server: RawServer, daemons: list[subprocess.Popen[bytes]]
) -> None:
    """The README gives polls in flight 5 s to finish: a source answering in 2 s completes and is recorded."""
    asked = threading.Event()

    def slow(req: BaseHTTPRequestHandler) -> None:
        asked.set()
        _answer(req, FEED, delay=2.0)

    raw_server.routes["/slow"] = slow
    config = write_config(
        tmp_path,
        f"""
store: store.db
topics: {{separatism: [separatist*]}}
sources:
  - {{name: slow, type: feed, url: "{raw_server.url("/slow")}", interval: 1h, robots: false}}
""",
    )
    proc = start_daemon(config, tmp_path / "run.log")
    daemons.append(proc)
    assert asked.wait(30), (tmp_path / "run.log").read_text()
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(15)
    took = time.monotonic() - signalled
    log = (tmp_path / "run.log").read_text()
    assert code == 0 and took < 10, log  # the contract: stopped within 10 s
    db = sqlite3.connect(str(tmp_path / "store.db"))
    assert db.execute("SELECT source, status, items FROM fetches").fetchall() == [("slow", "ok", 1)], log
    assert db.execute("SELECT count(*) FROM posts").fetchone()[0] == 1
    assert "Traceback" not in log


def test_a_source_keeps_its_phase_every_gap_between_polls_is_its_interval() -> None:
    # APScheduler's jitter counted each interval from the jittered time before: gaps drifted by up to 10%.
    from monitor.daemon import _trigger

    trigger = _trigger(timedelta(minutes=1))
    fire = NOW
    times = [fire]
    for _ in range(50):
        fire = trigger.get_next_fire_time(fire, fire)
        times.append(fire)
    assert {later - earlier for earlier, later in pairwise(times)} == {timedelta(minutes=1)}


def test_first_polls_are_spread_evenly_over_at_most_the_spread() -> None:
    from monitor.daemon import FIRST_POLL_SPREAD, first_polls

    many = first_polls(NOW, 1000)
    assert many[0] == NOW and many == sorted(many) and len(set(many)) == 1000
    assert many[-1] - NOW < FIRST_POLL_SPREAD
    assert first_polls(NOW, 4) == [NOW + timedelta(seconds=0.5 * i) for i in range(4)]
    assert first_polls(NOW, 0) == []


@pytest.mark.slow
def test_a_restarted_daemon_obeys_the_robots_txt_its_predecessor_kept(
    tmp_path: Path, raw_server: RawServer, daemons: list[subprocess.Popen[bytes]]
) -> None:
    """The daemon keeps each robots.txt it reads in the store (`robots`), and a daemon started after it obeys the
    kept file without asking the host again within the 12 hours."""
    raw_server.routes["/robots.txt"] = lambda req: _answer(req, b"User-agent: *\nDisallow: /private/\n")
    raw_server.routes["/feed"] = lambda req: _answer(req, FEED)
    config = write_config(
        tmp_path,
        f"""
store: store.db
topics: {{separatism: [separatist*]}}
sources:
  - {{name: news, type: feed, url: "{raw_server.url("/feed")}", interval: 1h, robots: true}}
""",
    )
    store = tmp_path / "store.db"

    def polls() -> int:
        try:
            with contextlib.closing(sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)) as db:
                return int(db.execute("SELECT count(*) FROM fetches WHERE source = 'news'").fetchone()[0])
        except sqlite3.Error:  # not created yet
            return 0

    for run, log in enumerate((tmp_path / "first.log", tmp_path / "second.log"), start=1):
        proc = start_daemon(config, log)
        daemons.append(proc)
        wait_for(lambda run=run: polls() >= run, f"poll {run} of the source", log)  # type: ignore[misc]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, log.read_text()
    with contextlib.closing(sqlite3.connect(str(store))) as db:
        assert [r[0] for r in db.execute("SELECT origin FROM robots")] == [raw_server.url("").rstrip("/")]
    assert [p for p, _ in raw_server.requests].count("/robots.txt") == 1
