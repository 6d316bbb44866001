"""Polite HTTP: the one module that owns httpx.

One shared `httpx.AsyncClient`; concurrent across hosts, at most `per_host` requests at once within a host;
timeouts (per operation and in total, so a server trickling bytes cannot hold a poll); a size cap enforced
while streaming; at most 5 redirects, http and https only; an identifying User-Agent; conditional GET;
robots.txt cached per host. Every httpx error leaves as `FetchError` with a one-line reason, and every
request becomes a `FetchRecord` for the `fetches` table.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from monitor.exceptions import FetchError
from monitor.types import FetchRecord, FetchStatus

log = logging.getLogger("monitor.fetch")

T = TypeVar("T")
Offload = Callable[..., Awaitable[Any]]  # (size, fn, *args, **kwargs) -> fn's result

MAX_REDIRECTS = 5
ROBOTS_TTL = timedelta(hours=12)
ROBOTS_MAX_BYTES = 512_000
MAX_RETRY_AFTER = timedelta(days=1)  # a server asking for more is capped: we will ask again tomorrow


@dataclass(frozen=True)
class Response:
    """A successful (2xx) or not-modified (304) answer, body fully read and decoded from gzip/br."""

    url: str  # the final address after redirects
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    elapsed_ms: int

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")


@dataclass(frozen=True)
class RequestLimits:
    """Per-source settings for each request."""

    timeout: timedelta = timedelta(seconds=30)
    max_bytes: int = 10_000_000
    user_agent: str = "monitor"
    robots: bool = True


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), capped at a day."""
    if not value:
        return None
    value = value.strip()
    seconds: float | None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    return max(0.0, min(seconds, MAX_RETRY_AFTER.total_seconds()))


def _reason(exc: BaseException, url: str, limits: RequestLimits) -> str:
    """One clear line for an httpx / network error."""
    host = urlsplit(url).hostname or url
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return f"timed out after {limits.timeout.total_seconds():g}s ({type(exc).__name__})"
    if isinstance(exc, httpx.TooManyRedirects):
        return f"too many redirects (more than {MAX_REDIRECTS})"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return f"unsupported address (http and https only): {text}"
    if isinstance(exc, httpx.ConnectError):
        causes = list(_chain(exc))
        if any(isinstance(c, socket.gaierror) for c in causes):
            return f"cannot resolve host {host}"
        if any(isinstance(c, ConnectionRefusedError) for c in causes):
            return f"connection refused by {host}"
        if any(isinstance(c, ssl.SSLError) for c in causes):
            return f"TLS error with {host}: {text}"
        return f"cannot connect to {host}: {text}"
    if isinstance(exc, httpx.DecodingError):
        return f"response body could not be decoded: {text}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{host} broke the HTTP protocol: {text}"
    return f"{type(exc).__name__}: {text}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes (httpx wraps the socket error twice)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        yield current
        current = current.__cause__ or current.__context__
        seen += 1


@dataclass
class _RobotsEntry:
    parser: RobotFileParser | None  # None: no usable robots.txt, everything allowed
    fetched: float


class Fetcher:
    """Shared HTTP client with per-host limits and a robots.txt cache. Use one per process (or event loop)."""

    def __init__(
        self,
        *,
        per_host: int = 2,
        user_agent: str = "monitor",
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 128,
        offload: Offload | None = None,
    ) -> None:
        self.per_host = per_host
        self.offload = offload  # runs large parses in a worker process (workers.Workers.parse)
        self.user_agent = user_agent
        self.clock = clock
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._robots: dict[str, _RobotsEntry] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._robots_off_logged: set[str] = set()
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=32),
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
            transport=transport,
            trust_env=True,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def session(self, source: str, limits: RequestLimits) -> Session:
        if not limits.robots and source not in self._robots_off_logged:
            self._robots_off_logged.add(source)
            log.info("robots_off source=%s: robots.txt is not consulted for this source", source)
        return Session(self, source, limits)

    def _slot(self, url: str) -> asyncio.Semaphore:
        host = (urlsplit(url).hostname or "").lower()
        if host not in self._host_slots:
            self._host_slots[host] = asyncio.Semaphore(self.per_host)
        return self._host_slots[host]

    async def request(self, url: str, limits: RequestLimits, *, headers: Mapping[str, str] | None = None) -> Response:
        """GET `url` within the host's slot. Raises FetchError (with http_status / retry_after when known)."""
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchError(f"unsupported address (http and https only): {url}")
        async with self._slot(url):
            started = time.monotonic()
            try:
                async with asyncio.timeout(limits.timeout.total_seconds()):
                    return await self._stream(url, limits, headers or {}, started)
            except FetchError:
                raise
            except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, ssl.SSLError, OSError) as exc:
                raise FetchError(_reason(exc, url, limits)) from exc

    async def _stream(self, url: str, limits: RequestLimits, headers: Mapping[str, str], started: float) -> Response:
        seconds = limits.timeout.total_seconds()
        request_headers = {"User-Agent": limits.user_agent, **headers}
        async with self._client.stream("GET", url, headers=request_headers, timeout=httpx.Timeout(seconds)) as resp:
            final_url = str(resp.url)
            if urlsplit(final_url).scheme not in ("http", "https"):
                raise FetchError(f"redirected to an unsupported address: {final_url}")
            lower_headers = {k.lower(): v for k, v in resp.headers.items()}
            if resp.status_code == 304:
                return Response(final_url, 304, lower_headers, b"", int((time.monotonic() - started) * 1000))
            if resp.status_code >= 400:
                retry_after = (
                    parse_retry_after(lower_headers.get("retry-after"), self.clock())
                    if resp.status_code in (429, 503)
                    else None
                )
                raise FetchError(
                    f"HTTP {resp.status_code} {resp.reason_phrase}".strip(),
                    http_status=resp.status_code,
                    retry_after=retry_after,
                )
            declared = lower_headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limits.max_bytes and "content-encoding" not in lower_headers:
                raise FetchError(
                    f"response of {int(declared):,} bytes is over the {limits.max_bytes:,}-byte cap",
                    http_status=resp.status_code,
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():  # decoded bytes: a gzip bomb hits the cap too
                size += len(chunk)
                if size > limits.max_bytes:
                    raise FetchError(
                        f"response over the {limits.max_bytes:,}-byte cap (stopped reading)",
                        http_status=resp.status_code,
                        bytes_read=size,
                    )
                chunks.append(chunk)
            elapsed = int((time.monotonic() - started) * 1000)
            return Response(final_url, resp.status_code, lower_headers, b"".join(chunks), elapsed)

    async def allowed(self, url: str, limits: RequestLimits) -> bool:
        """Whether robots.txt of the url's host lets our user agent fetch it (cached per host)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:
            entry = self._robots.get(origin)
            if entry is None or time.monotonic() - entry.fetched > ROBOTS_TTL.total_seconds():
                entry = _RobotsEntry(await self._read_robots(origin, limits), time.monotonic())
                self._robots[origin] = entry
        if entry.parser is None:
            return True
        agent = limits.user_agent.split("/")[0] or "*"
        return entry.parser.can_fetch(agent, url)

    async def _read_robots(self, origin: str, limits: RequestLimits) -> RobotFileParser | None:
        robots_limits = replace(limits, max_bytes=ROBOTS_MAX_BYTES, timeout=min(limits.timeout, timedelta(seconds=15)))
        try:
            resp = await self.request(f"{origin}/robots.txt", robots_limits)
        except FetchError as exc:
            # 4xx: no rules. Network trouble: the real request will report it; do not block on robots.
            log.debug("robots_unavailable origin=%s error=%s", origin, exc)
            return None
        parser = RobotFileParser()
        parser.parse(resp.body.decode("utf-8", "replace").splitlines())
        return parser


@dataclass
class Session:
    """Requests made for one source in one poll; every request is logged as a FetchRecord."""

    fetcher: Fetcher
    source: str
    limits: RequestLimits
    records: list[FetchRecord] = field(default_factory=list)

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """GET with conditional headers; a 304 comes back as a Response with `not_modified`. Raises FetchError."""
        started_at = self.fetcher.clock()
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        t0 = time.monotonic()
        if self.limits.robots and not await self.fetcher.allowed(url, self.limits):
            self.records.append(
                FetchRecord(
                    self.source,
                    url,
                    started_at,
                    FetchStatus.SKIPPED,
                    error="robots.txt disallows this address",
                )
            )
            raise FetchError(f"robots.txt disallows {url} (set robots: false on the source to override)")
        try:
            resp = await self.fetcher.request(url, self.limits, headers=request_headers)
        except FetchError as exc:
            self.records.append(
                FetchRecord(
                    self.source,
                    url,
                    started_at,
                    FetchStatus.ERROR,
                    exc.http_status,
                    exc.bytes_read,
                    int((time.monotonic() - t0) * 1000),
                    error=str(exc),
                )
            )
            raise
        status = FetchStatus.NOT_MODIFIED if resp.not_modified else FetchStatus.OK
        self.records.append(
            FetchRecord(self.source, url, started_at, status, resp.status, len(resp.body), resp.elapsed_ms)
        )
        return resp

    async def parse(self, fn: Callable[..., T], body: bytes, /, **kwargs: Any) -> T:
        """`fn(body, **kwargs)`: a pure parser, run in a worker process when the body is large and one is set."""
        if self.fetcher.offload is None:
            return fn(body, **kwargs)
        result: T = await self.fetcher.offload(len(body), fn, body, **kwargs)
        return result

    def note_items(self, count: int) -> None:
        """Record how many items the last response held."""
        if self.records:
            self.records[-1] = replace(self.records[-1], items=count)


def backoff_delay(failures: int, interval: timedelta, cap: timedelta = timedelta(hours=6)) -> timedelta:
    """Wait before polling a failing source again: the interval doubled per extra failure, capped."""
    if failures <= 1:
        return interval
    ceiling = max(cap, interval)
    try:
        doubled: timedelta = interval * (2 ** min(failures - 1, 20))
    except OverflowError:
        return ceiling
    return min(doubled, ceiling)
