"""`--metrics HOST:PORT`: the figures of `monitor run`, `monitor run --role scheduler` and `monitor worker` in
the Prometheus text format (prometheus-client).

Off by default; served on loopback unless the operator asks for another address (the figures name every
source and topic). The process updates them as it works, on its event loop; the HTTP server runs in
prometheus-client's own thread and only reads them. Each role fills the figures of its own work: the daemon
all but the queue's, a scheduler the queue's and the store's sizes, a worker its polls and alerts.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, start_http_server

from monitor.exceptions import MonitorError
from monitor.types import AlertRow, RunResult

log = logging.getLogger("monitor.metrics")

DEFAULT_PORT = 9108
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0)


@dataclass(frozen=True)
class Listen:
    """Where the metrics are served."""

    host: str
    port: int  # 0: any free port (the bound one is logged)

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_listen(value: str) -> Listen:
    """`127.0.0.1:9108`, `[::1]:9108`, `localhost:9108` or a bare port (on 127.0.0.1). Raises ValueError."""
    text = value.strip()
    if text.isdigit():
        host, port_text = "127.0.0.1", text
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{value!r}: expected HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
        host = host.removeprefix("[").removesuffix("]")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{value!r}: the port must be a number from 0 to 65535")
    return Listen(host=host, port=int(port_text))


class Metrics:
    """The daemon's counters, gauges and histograms, in a registry of their own."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series beside each counter: half the lines, nothing lost
        self.registry = CollectorRegistry()
        r = self.registry
        self.polls = Counter("monitor_polls", "Polls of a source (every outcome).", ["source"], registry=r)
        self.failures = Counter("monitor_poll_failures", "Polls of a source that failed.", ["source"], registry=r)
        self.new_posts = Counter("monitor_posts_new", "Posts stored for the first time.", ["source"], registry=r)
        self.fetch_seconds = Histogram(
            "monitor_fetch_duration_seconds",
            "Time one poll of a source took (fetch, parse, store).",
            ["source"],
            buckets=FETCH_BUCKETS,
            registry=r,
        )
        self.lateness = Histogram(
            "monitor_scheduler_lateness_seconds",
            "How late the scheduler started a job after its due time.",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.posts = Gauge("monitor_posts_stored", "Posts in the store.", registry=r)
        self.matches = Gauge("monitor_matches_stored", "Stored matches of a topic.", ["topic"], registry=r)
        self.raised = Counter("monitor_alerts_raised", "Alerts written to the outbox.", ["kind"], registry=r)
        self.delivered = Counter(
            "monitor_alerts_delivered", "Alert deliveries by channel and outcome.", ["channel", "status"], registry=r
        )
        self.sources = Gauge("monitor_sources", "Sources scheduled.", registry=r)
        self.queued = Counter("monitor_polls_queued", "Polls queued for the workers.", registry=r)
        self.coalesced = Counter(
            "monitor_polls_coalesced", "Due polls not queued: the source's last poll was still waiting.", registry=r
        )
        self.requeued = Counter("monitor_jobs_requeued", "Jobs of silent workers put back in the queue.", registry=r)
        self.queue_jobs = Gauge("monitor_queue_jobs", "Jobs in the queue, by state.", ["state"], registry=r)
        self._server: object | None = None

    def serve(self, where: Listen) -> tuple[str, int]:
        """Start serving; returns the bound address. Raises MonitorError when the address cannot be bound."""
        try:
            server, _thread = start_http_server(where.port, addr=where.host, registry=self.registry)
        except OSError as exc:
            raise MonitorError(f"--metrics {where.host}:{where.port}: cannot listen: {exc.strerror or exc}") from exc
        self._server = server
        host, port = server.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        server = self._server
        if server is not None:
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]
            self._server = None

    # what the daemon reports
    def polled(self, result: RunResult) -> None:
        self.polls.labels(result.source).inc()
        if not result.ok:
            self.failures.labels(result.source).inc()
        self.new_posts.labels(result.source).inc(result.new_posts)
        if not result.skipped:
            self.fetch_seconds.labels(result.source).observe(result.duration_ms / 1000)

    def late(self, seconds: float) -> None:
        self.lateness.observe(max(seconds, 0.0))

    def alerts_raised(self, rows: Iterable[AlertRow]) -> None:
        for row in rows:
            self.raised.labels(row.kind.value).inc()

    def deliveries(self, outcomes: Iterable[tuple[str, str]]) -> None:
        """(channel, status) of each delivery step: sent, retry or failed."""
        for channel, status in outcomes:
            if status != "off":
                self.delivered.labels(channel, status).inc()

    def store_sizes(self, posts: int, matches: Mapping[str, int]) -> None:
        self.store_posts(posts)
        self.store_matches(matches)

    def store_posts(self, posts: int) -> None:
        """The exact count (at start and hourly); `stored` adds each poll's new posts in between."""
        self.posts.set(posts)

    def stored(self, new_posts: int) -> None:
        """The posts a poll of this process stored, added to the count taken at start and hourly (counting a large
        store is a scan of an index of its posts: not every minute)."""
        self.posts.inc(new_posts)

    def store_matches(self, matches: Mapping[str, int]) -> None:
        for topic, count in matches.items():
            self.matches.labels(topic).set(count)

    def scheduled(self, count: int) -> None:
        self.sources.set(count)

    # what a scheduler reports
    def queue_step(self, queued: int, coalesced: int, requeued: int) -> None:
        self.queued.inc(queued)
        self.coalesced.inc(coalesced)
        self.requeued.inc(requeued)

    def backlog(self, waiting: int, running: int) -> None:
        self.queue_jobs.labels("waiting").set(waiting)
        self.queue_jobs.labels("running").set(running)


def serve_metrics(where: Listen | None) -> Metrics | None:
    """Figures served at `where` (None: no figures). Raises MonitorError when the address cannot be bound."""
    if where is None:
        return None
    figures = Metrics()
    host, port = figures.serve(where)
    log.info("metrics_listening url=http://%s:%d/metrics", f"[{host}]" if ":" in host else host, port)
    return figures
