"""The done-when of channels, with real processes: a config with an email block and two notify channels (one
limited to a topic) delivers one message per channel per alert across a SIGKILL mid-delivery and a restart of
`monitor run`, against a loopback feed, a loopback webhook/ntfy receiver and the aiosmtpd server."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from monitor.store import open_store
from monitor.types import AlertStatus
from tests.conftest import HookServer, RawServer, SmtpServer, start_daemon, wait_for, write_config

TOKEN = "tok-daemon-5e4d3c2b1a"


class Feed:
    """An RSS feed whose items the test adds while the daemon polls it."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, datetime]] = []  # (guid, title, published)
        self.lock = threading.Lock()

    def add(self, prefix: str, title: str, count: int) -> None:
        now = datetime.now(UTC)
        with self.lock:
            self.items += [(f"{prefix}{i}", f"{title} {i}", now - timedelta(minutes=i + 1)) for i in range(count)]

    def serve(self, req: BaseHTTPRequestHandler) -> None:
        with self.lock:
            items = "".join(
                f"<item><guid>{guid}</guid><title>{title}</title><link>http://example.org/{guid}</link>"
                f"<description>{title}: reported from the square.</description>"
                f"<pubDate>{format_datetime(when)}</pubDate></item>"
                for guid, title, when in self.items
            )
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/rss+xml")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)


@pytest.mark.slow
def test_email_and_two_channels_one_message_each_per_alert_across_a_kill_and_a_restart(
    tmp_path: Path,
    raw_server: RawServer,
    smtp: SmtpServer,
    hook: HookServer,
    daemons: list[subprocess.Popen[bytes]],
) -> None:
    feed = Feed()
    raw_server.routes["/rss"] = feed.serve
    config = write_config(
        tmp_path,
        f"""
store: store.db
topics:
  separatism: [separatist*]
  weather: [storm*]
sources:
  - {{name: news, type: feed, url: "{raw_server.url("/rss")}", interval: 2s, robots: false}}
alerts:
  min_count: 3
  email: {{host: 127.0.0.1, port: {smtp.port}, sender: m@example.org, to: [a@example.org], timeout: 5s}}
  notify:
    - {{name: everyone, url_env: HOOK_ALL}}
    - {{name: separatism-desk, url_env: HOOK_SEP, topics: [separatism]}}
""",
    )
    env = {
        "HOOK_ALL": hook.url("json", f"all/{TOKEN}"),
        "HOOK_SEP": hook.url("ntfy", "separatism-desk"),
    }
    log = tmp_path / "daemon.log"

    def start() -> subprocess.Popen[bytes]:
        proc = start_daemon(config, log, "-vv", env=env)  # debug logging: the token must not show even there
        daemons.append(proc)
        return proc

    def at(path_start: str) -> list[dict[str, Any]]:
        return [m for m in hook.messages if m["path"].startswith(path_start) or m.get("topic") == path_start[1:]]

    # 1. the desk's endpoint stalls on its first request: the daemon is killed while that delivery is under way
    stalled = threading.Event()
    release = threading.Event()

    def stall(message: dict[str, Any]) -> bool:
        if message["path"].startswith("/separatism-desk") and not release.is_set():
            stalled.set()
            release.wait(30)
            return False  # the sender is gone: this request is refused, nothing was taken
        return True

    hook.hold = stall
    feed.add("s", "Separatist rally", 4)
    first = start()
    wait_for(lambda: len(smtp.sink.messages) == 1 and len(at("/all")) == 1, "email and everyone (alert 1)", log)
    wait_for(stalled.is_set, "the desk's delivery to be under way", log)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    release.set()

    # 2. restarted: a weather spike goes to email and everyone, not to the desk; the delivery pass after that poll
    # (or the minute's tick) gives the desk its one message of alert 1
    second = start()
    feed.add("w", "Storm warning", 4)
    wait_for(lambda: len(smtp.sink.messages) == 2 and len(at("/all")) == 2, "email and everyone (alert 2)", log)
    wait_for(lambda: len(at("/separatism-desk")) == 1, "the desk's message after the restart", log)

    # 3. a clean stop and another start send nothing again
    second.send_signal(signal.SIGTERM)
    assert second.wait(20) == 0
    third = start()
    with open_store(tmp_path / "store.db", readonly=True) as store:
        polls = store.counts().get("fetches", 0)

    def polled_twice_more() -> bool:
        with open_store(tmp_path / "store.db", readonly=True) as store:
            return store.counts().get("fetches", 0) >= polls + 2

    wait_for(polled_twice_more, "two more polls", log)
    time.sleep(1.0)  # a delivery pass after those polls would have sent by now
    third.send_signal(signal.SIGTERM)
    assert third.wait(20) == 0

    subjects = sorted(str(m["Subject"]).split(":")[0] for m in smtp.sink.parsed())
    assert subjects == ["[monitor] separatism", "[monitor] weather"]
    assert sorted(m["title"].split(":")[0] for m in at("/all")) == ["[monitor] separatism", "[monitor] weather"]
    (desk,) = at("/separatism-desk")
    assert desk["title"].startswith("[monitor] separatism") and desk["files"]["chart.png"].startswith(b"\x89PNG")
    with open_store(tmp_path / "store.db", readonly=True) as store:
        alerts = store.alerts()
        assert [a.status for a in alerts] == [AlertStatus.SENT, AlertStatus.SENT]
        channels = {a.topic: [(d.channel, d.status.value) for d in store.deliveries(a.id)] for a in alerts}
    assert channels == {
        "separatism": [("email", "sent"), ("everyone", "sent"), ("separatism-desk", "sent")],
        "weather": [("email", "sent"), ("everyone", "sent")],
    }
    assert TOKEN not in log.read_text(errors="replace")
    for path in tmp_path.glob("store.db*"):
        assert TOKEN.encode() not in path.read_bytes()
