"""`monitor health` as Docker, systemd and cron run it: exit 0 healthy, 1 not, one reason per line."""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.health import DaemonSeen, daemon_check
from monitor.store import StoreURL, open_store, this_process
from monitor.store.sqlite import open_sqlite
from monitor.types import AlertKind, NewAlert
from tests.conftest import RawServer, refused_port, respond, run_monitor, start_daemon, wait_for, write_config
from tests.test_daemon import FEED


def failing_config(tmp_path: Path, failures: int = 2, store: Path | StoreURL | str = "store.db") -> Path:
    return write_config(
        tmp_path,
        f"""
store: "{store}"
topics: {{t: [separatist*]}}
sources:
  - {{name: first, type: feed, url: "http://127.0.0.1:{refused_port()}/feed", robots: false}}
  - {{name: second, type: feed, url: "http://127.0.0.1:{refused_port()}/feed", robots: false}}
health:
  failures: {failures}
""",
    )


def test_every_source_failing_exits_1_with_one_reason_per_source(tmp_path: Path, backend: Path | StoreURL) -> None:
    config = failing_config(tmp_path, store=backend)
    for _ in range(2):
        assert run_monitor(config, "poll").returncode == 0  # poll itself exits 0 with sources failing
    with open_store(backend) as store:  # this test process plays a live daemon
        store.lock_daemon(this_process(), datetime.now(UTC))
        done = run_monitor(config, "health")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("source first: 2 failed polls in a row, never worked: ")
    assert lines[1].startswith("source second: 2 failed polls in a row")
    assert "daemon" not in done.stdout  # the daemon is fine: only the failing checks are listed


def test_sources_below_the_limit_are_healthy(tmp_path: Path, backend: Path | StoreURL) -> None:
    config = failing_config(tmp_path, failures=3, store=backend)
    for _ in range(2):
        run_monitor(config, "poll")
    with open_store(backend) as store:
        store.lock_daemon(this_process(), datetime.now(UTC))
        done = run_monitor(config, "health", "--format", "json")
    assert done.returncode == 0, done.stdout
    rows = json.loads(done.stdout)
    assert [(r["check"], r["subject"], r["ok"]) for r in rows] == [
        ("daemon", "", True),
        ("source", "first", True),
        ("source", "second", True),
        ("outbox", "", True),
    ]
    assert rows[1]["detail"] == "source first: ok (2 failed polls, limit 3)"


def test_no_daemon_a_dead_one_and_a_stale_heartbeat_are_unhealthy(tmp_path: Path) -> None:
    config = write_config(tmp_path, "store: store.db\ntopics: {t: [x]}\nsources: []\n")
    done = run_monitor(config, "health")
    assert (done.returncode, done.stdout.strip()) == (
        1,
        f"store: no store yet at {tmp_path / 'store.db'} (no `monitor run` has started)",
    )
    with open_sqlite(tmp_path / "store.db"):
        pass
    done = run_monitor(config, "health")
    assert (done.returncode, done.stdout.strip()) == (1, "daemon: no `monitor run` has ever run on this store")
    with open_sqlite(tmp_path / "store.db") as store:
        store.lock_daemon(this_process(), datetime.now(UTC) - timedelta(minutes=10))
        stale = run_monitor(config, "health")
        store.heartbeat(datetime.now(UTC))
        fresh = run_monitor(config, "health")
    dead = run_monitor(config, "health")
    assert stale.returncode == 1 and stale.stdout.startswith("daemon: heartbeat 10m")
    assert "(over 3m)" in stale.stdout
    assert fresh.returncode == 0 and fresh.stdout.startswith("healthy: daemon: running")
    assert dead.returncode == 1 and dead.stdout.startswith("daemon: not running (last heartbeat")


def test_a_heartbeat_just_under_three_minutes_is_fresh() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    seen = DaemonSeen(running=True, holder="h:1:1", heartbeat_at=now - timedelta(minutes=3))
    assert daemon_check(seen, now).ok
    assert not daemon_check(DaemonSeen(True, "h:1:1", now - timedelta(minutes=3, seconds=1)), now).ok


def test_alerts_undelivered_over_an_hour_are_unhealthy(tmp_path: Path, backend: Path | StoreURL) -> None:
    config = write_config(tmp_path, f'store: "{backend}"\ntopics: {{t: [x]}}\nsources: []\n')
    now = datetime.now(UTC)
    with open_store(backend) as store:
        store.lock_daemon(this_process(), now)
        store.insert_alert(NewAlert(kind=AlertKind.DIGEST), created_at=now - timedelta(minutes=30), channels=["email"])
        assert run_monitor(config, "health").returncode == 0  # half an hour: still in time
        store.insert_alert(NewAlert(kind=AlertKind.DIGEST), created_at=now - timedelta(hours=2), channels=["email"])
        done = run_monitor(config, "health")
    assert done.returncode == 1
    assert done.stdout.strip() == "outbox: 1 alert(s) undelivered on email for over 1h (oldest #2, 2h old, 0 attempts)"


def test_a_real_daemon_is_healthy_then_not_once_stopped(
    tmp_path: Path, raw_server: RawServer, daemons: list[subprocess.Popen[bytes]]
) -> None:
    raw_server.routes["/feed"] = respond(200, FEED, {"Content-Type": "application/rss+xml"})
    config = write_config(
        tmp_path,
        f"""
store: store.db
topics: {{t: [separatist*]}}
sources:
  - {{name: news, type: feed, url: "{raw_server.url("/feed")}", interval: 1h, robots: false}}
""",
    )
    log = tmp_path / "run.log"
    proc = start_daemon(config, log)
    daemons.append(proc)
    wait_for(lambda: run_monitor(config, "health").returncode == 0, "the daemon to be healthy")
    done = run_monitor(config, "health")
    assert done.returncode == 0, done.stdout + log.read_text()
    assert f"daemon: running (pid {proc.pid} on " in done.stdout
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    after = run_monitor(config, "health")
    assert after.returncode == 1 and after.stdout.startswith("daemon: not running")
