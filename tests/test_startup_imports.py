"""What a `monitor poll` process loads before it has work for it: not numpy (signatures of new posts, a spike's
judgement), matplotlib, apprise or jinja2. Start-up time and memory of every poll, and of a re-poll above all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpcore

from monitor.collectors import aio_sync
from monitor.workers import MIN_BYTES
from tests.conftest import run_python

HEAVY = ("numpy", "matplotlib", "apprise", "jinja2")
PROBE = f"""
import json, sys
import monitor.cli, monitor.config, monitor.collectors, monitor.store, monitor.service, monitor.workers
from monitor.store import open_store
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""


def test_the_poll_path_loads_no_heavy_library_at_start_up() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(done.stdout) == []


def test_numpy_still_loads_when_a_signature_is_made() -> None:
    probe = (
        "import sys; from monitor import dedupe; "
        "sig = dedupe.signature('t', ' '.join(f'word{i}' for i in range(30))); "
        "print(len(sig), 'numpy' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.split() == ["513", "True"]


def test_a_config_of_feeds_imports_the_feed_collector_only() -> None:
    """The collector registry is lazy: every type is known by name, a type's module is imported when a config
    names it (so a config of feeds never loads selectolax or the API collectors)."""
    probe = """
import json, sys
from monitor.collectors import SOURCE_MODELS, SOURCE_TYPES
names = list(SOURCE_TYPES)
before = sorted(m for m in sys.modules if m.startswith("monitor.collectors."))
model = SOURCE_MODELS["feed"]
print(json.dumps({"names": names, "before": before, "model": model.__name__,
                  "after": sorted(m for m in sys.modules if m.startswith("monitor.collectors.")),
                  "selectolax": "selectolax" in sys.modules, "unknown": SOURCE_MODELS.get("gopher")}))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    answer = json.loads(done.stdout)
    assert answer["names"] == ["feed", "html", "telegram", "mastodon", "reddit", "vk"]
    assert answer["before"] == [] and answer["after"] == ["monitor.collectors.feed"]
    assert answer["model"] == "FeedSource" and answer["selectolax"] is False and answer["unknown"] is None


def test_a_worker_process_that_parses_loads_no_event_loop_tls_config_or_numpy() -> None:
    """What the worker process imports to parse a feed (monitor.workerproc, the parser): lxml, not asyncio, ssl,
    msgspec or numpy, which it never uses (each is megabytes of a second process). Preparing the posts (the
    matcher, signatures) adds numpy and still no msgspec: the records it returns are monitor.worktypes'."""
    probe = """
import json, sys
from datetime import UTC, datetime
import monitor.workerproc
from monitor.collectors.feedparse import parse_feed
heavy = ("asyncio", "ssl", "msgspec", "numpy", "yaml", "httpx")
page = parse_feed(b"<rss><channel><item><title>t</title><link>https://x.example/1</link></item></channel></rss>",
                  url="https://x.example/feed", content_type="application/rss+xml")
parsing = sorted(m for m in heavy if m in sys.modules)
from monitor.match import Matcher
from monitor.prepare import prepare
from monitor.worktypes import TopicSpec
prepared = prepare(page.items, "feed", {}, datetime.now(UTC), Matcher([TopicSpec("t", ("t",))]))
print(json.dumps([parsing, len(prepared), sorted(m for m in heavy if m in sys.modules)]))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(done.stdout) == [[], 1, ["numpy"]]


def test_building_the_http_client_loads_no_trusted_roots() -> None:
    """The verifying TLS context (certifi's roots, 50-100 ms) is built at the first https connection only."""
    probe = """
import asyncio, json
from datetime import UTC, datetime
from monitor.collectors import fetch
async def go():
    async with fetch.Fetcher(clock=lambda: datetime.now(UTC)):
        pass
asyncio.run(go())
print(json.dumps(fetch._tls_context.cache_info().currsize))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(done.stdout) == 0


SPY = """
import atexit, json, subprocess, sys
started = []
real = subprocess.Popen.__init__
def spy(self, args, *rest, **kwargs):
    if any("monitor.workerproc" in str(arg) for arg in args):
        started.append(1)
    real(self, args, *rest, **kwargs)
subprocess.Popen.__init__ = spy
heavy = ("numpy", "lxml", "selectolax", "rich", "matplotlib", "apprise", "monitor.outbox.content", "monitor.emails",
         "sqlite_utils", "monitor.mail", "smtplib", "anyio._backends._asyncio")
atexit.register(lambda: print("PROBE " + json.dumps(
    {"workers": len(started), "loaded": sorted(m for m in heavy if m in sys.modules)}), file=sys.stderr))
from monitor.cli import entry
sys.argv = ["monitor", "--config", sys.argv[1], "-q", "poll"]
entry()
"""


def test_a_re_poll_of_unchanged_feeds_starts_no_worker_and_loads_no_parser(tmp_path: Path) -> None:
    """Every answer a 304: no worker process (a second Python) is started, and neither numpy nor a parser nor
    the alerts' message templates (nothing to send) are imported. The first poll, with bodies large enough for
    the worker, does start one (on two cores or more), and creates the store without sqlite-utils; with no
    alerts.email, neither poll loads the SMTP side."""
    item = "<item><title>Story {i}</title><link>https://x.example/{i}</link><description>{text}</description></item>"
    body = "".join(item.format(i=i, text=f"words of story {i} " * 40) for i in range(40))
    feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>'.encode()
    assert len(feed) > MIN_BYTES

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", '"v1"')
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(feed)))
            self.end_headers()
            self.wfile.write(feed)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        sources = "".join(
            f'  - {{name: f{i}, type: feed, url: "http://127.0.0.1:{port}/feed/{i}.xml", robots: false}}\n'
            for i in range(3)
        )
        config = tmp_path / "config.yaml"
        config.write_text(f"store: store.db\ntopics: {{t: [story]}}\nsources:\n{sources}", encoding="utf-8")
        runs = []
        for _ in range(2):
            done = run_python(SPY, str(config), cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            line = next(x for x in done.stderr.splitlines() if x.startswith("PROBE "))
            runs.append(json.loads(line.removeprefix("PROBE ")))
    finally:
        server.shutdown()
        server.server_close()
    cold, repoll = runs
    if (os.cpu_count() or 1) >= 2:
        assert cold["workers"] >= 1  # the first poll parsed in a worker: the count below is not vacuous
    assert "numpy" in cold["loaded"] and "sqlite_utils" not in cold["loaded"]  # a new store: monitor's own runner
    assert "monitor.mail" not in cold["loaded"]  # no alerts.email: no SMTP side
    # httpcore's locks and events on asyncio's own (aio_sync): anyio's event-loop backend stays out of both polls
    anyio_backend, checked = "anyio._backends._asyncio", httpcore.__version__ in aio_sync.CHECKED_VERSIONS
    assert (anyio_backend in cold["loaded"]) is not checked
    assert repoll == {"workers": 0, "loaded": [] if checked else [anyio_backend]}
    # the poll ends without the collector's last pass (gc.freeze), never without closing its store: the last
    # connection's close checkpoints the log into the file and removes it
    assert (tmp_path / "store.db").exists() and not (tmp_path / "store.db-wal").exists()
