"""1 vs 3 `monitor worker` processes on one machine: sources polled per second over loopback, in the same run.

    .venv/bin/python bench/scale_out.py                      # 300 sources, 20 s per run, 1 then 3 workers, twice
    .venv/bin/python bench/scale_out.py --sources 600 --seconds 30 --repeat 1

A throwaway PostgreSQL cluster (tests/pgserver.py) holds the store and the queue; a loopback HTTP server serves
the feeds (each request one new post); `monitor run --role scheduler` queues every source every second (an
interval shorter than a pass can take: the queue is never empty, so the workers' throughput is what is measured,
and a source never waits twice: its queueing lock). Printed: polls/s of each run, and the ratio 3 / 1 workers.
The harness (`FeedWorld`, `Cluster`) is also what tests/test_scale_out.py runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.pgserver, when run as a script


@dataclass
class Request:
    path: str
    started: float  # time.monotonic() of the test process
    ended: float = 0.0


class FeedWorld:
    """Feeds on 127.0.0.1: /feed/<k> answers with one item per request so far (the new one first), so each poll
    brings one new post. Feeds whose k is in `spiking` carry a term of topic `t<k // 3>` in every item (3 feeds a
    topic: three fresh matches, a spike). Counts requests per feed, in flight per feed and overall."""

    def __init__(self, feeds: int, *, spiking: int = 0, delay: float = 0.0) -> None:
        self.feeds = feeds
        self.spiking = spiking
        self.delay = delay
        self.log: dict[str, list[Request]] = defaultdict(list)
        self.active = 0
        self.max_active = 0
        self.active_per_feed: dict[str, int] = defaultdict(int)
        self.max_active_per_feed = 0
        self._lock = threading.Lock()
        self.born = datetime.now(UTC) - timedelta(minutes=5)
        world = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                request = Request(self.path, time.monotonic())
                with world._lock:
                    served = len(world.log[name])
                    world.log[name].append(request)
                    world.active += 1
                    world.max_active = max(world.max_active, world.active)
                    world.active_per_feed[name] += 1
                    world.max_active_per_feed = max(world.max_active_per_feed, world.active_per_feed[name])
                try:
                    if world.delay:
                        time.sleep(world.delay)
                    body = world.body(int(name), served + 1)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/rss+xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with world._lock:
                        world.active -= 1
                        world.active_per_feed[name] -= 1
                        request.ended = time.monotonic()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def body(self, feed: int, items: int) -> bytes:
        when = format_datetime(self.born)
        word = f"zqterm{feed // 3}" if feed < self.spiking else "weather"
        rows = "".join(
            f"<item><guid>f{feed}-{n}</guid><title>Report {n} of feed {feed}: {word}</title>"
            f"<link>http://example.org/{feed}/{n}</link><pubDate>{when}</pubDate>"
            f"<description>Item {n} of feed {feed}, about the {word} by the river.</description></item>"
            for n in reversed(range(items))
        )
        return f'<?xml version="1.0"?><rss version="2.0"><channel><title>f{feed}</title>{rows}</channel></rss>'.encode()

    def requests(self) -> int:
        with self._lock:
            return sum(len(v) for v in self.log.values())

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def config_text(world: FeedWorld, store_url: str, *, interval: str, per_host: int, smtp_port: int | None) -> str:
    topics = "".join(f"  t{g}: [zqterm{g}]\n" for g in range((world.spiking + 2) // 3)) or "  none: [zqnothing]\n"
    sources = "".join(
        f"  - {{name: f{k:03d}, type: feed, url: '{world.base}/feed/{k}', robots: false}}\n" for k in range(world.feeds)
    )
    email = (
        f"  email: {{host: 127.0.0.1, port: {smtp_port}, tls: none, sender: m@example.org, to: [a@example.org], "
        "timeout: 10s}\n"
        if smtp_port
        else ""
    )
    return (
        f"store: '{store_url}'\ndefaults: {{interval: {interval}, per_host: {per_host}, timeout: 20s}}\n"
        f"topics:\n{topics}sources:\n{sources}alerts:\n  window: 1h\n  min_count: 3\n{email}"
    )


@dataclass
class Cluster:
    """A scheduler and workers of `monitor`, as real processes on one config; their logs under `work`."""

    config: Path
    work: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.work / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(self.config), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.work,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"},
        )
        log.close()
        self.procs[name] = proc
        return proc

    def scheduler(self, *options: str) -> subprocess.Popen[bytes]:
        return self.start("scheduler", "run", "--role", "scheduler", *options)

    def worker(self, name: str, concurrency: int = 8, *options: str) -> subprocess.Popen[bytes]:
        return self.start(name, "worker", "--concurrency", str(concurrency), *options)

    def log(self, name: str) -> str:
        return (self.work / f"{name}.log").read_text(errors="replace")

    def stop(self, timeout: float = 30) -> dict[str, int | None]:
        """SIGTERM to every process still running, then their exit codes (None: killed after `timeout`)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, proc in self.procs.items():
            try:
                codes[name] = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                codes[name] = None
        return codes


def wait_for(condition: object, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(step)
    return False


def one_run(pg: object, sources: int, workers: int, seconds: float, work: Path) -> float:
    """Polls per second with `workers` workers, measured over `seconds` once every worker is polling."""
    from tests import pgserver

    assert isinstance(pg, pgserver.Cluster)
    world = FeedWorld(sources)
    config = work / "config.yaml"
    config.write_text(config_text(world, pg.url(pg.new_database()), interval="1s", per_host=32, smtp_port=None))
    cluster = Cluster(config, work)
    try:
        for n in range(workers):
            cluster.worker(f"worker{n}", concurrency=16)
        cluster.scheduler()
        if not wait_for(lambda: world.requests() >= sources, 120):
            raise RuntimeError(f"the workers did not start polling: {cluster.log('scheduler')[-2000:]}")
        first, started = world.requests(), time.monotonic()
        time.sleep(seconds)
        done, ended = world.requests(), time.monotonic()
    finally:
        cluster.stop()
        world.close()
    return (done - first) / (ended - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    from tests import pgserver

    reason = pgserver.skip_reason()
    if reason:
        sys.exit(f"scale_out: {reason}")
    pg = pgserver.start()
    ratios = []
    try:
        for r in range(args.repeat):
            rates = {}
            for workers in (1, 3):
                with tempfile.TemporaryDirectory(prefix="scale-out-") as work:
                    rates[workers] = one_run(pg, args.sources, workers, args.seconds, Path(work))
                print(f"round {r + 1}: {workers} worker(s): {rates[workers]:.1f} polls/s", flush=True)
            ratios.append(rates[3] / rates[1])
            print(f"round {r + 1}: 3 workers / 1 worker = {ratios[-1]:.2f}", flush=True)
    finally:
        pg.stop()
    print(f"median ratio 3 / 1 workers over {len(ratios)} round(s): {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
