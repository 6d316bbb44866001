"""Polite HTTP: the one module that owns httpx.

One shared `httpx.AsyncClient`; concurrent across hosts, at most `per_host` requests at once within a host;
timeouts (per operation and in total, so a server trickling bytes cannot hold a poll); a size cap enforced
while streaming; at most 5 redirects, each to http or https only; an identifying User-Agent; conditional
GET; robots.txt (RFC 9309, with `*` and `$` wildcards, through protego) cached per origin; and, when a
source sets `allow_private: false`, no connection to a private, loopback or link-local address, checked
on the address each connection is made to (every hop; so a name that resolves differently later cannot
slip by) and on the peer of a reused connection.

Every foreign error leaves as one of the `FetchError` subclasses of monitor.exceptions, chosen by one
table (`ERROR_TABLE`), with a one-line reason; every request becomes a `FetchRecord` for `fetches`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import functools
import ipaddress
import logging
import socket
import ssl
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
import msgspec
from protego import Protego

from monitor.collectors import aio_sync
from monitor.collectors.aio_backend import AsyncioBackend
from monitor.exceptions import (
    DecodeError,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    NetworkError,
    PrivateAddressRefused,
    ResponseTooLarge,
    RobotsDisallowed,
    TooManyRedirects,
    UnsupportedAddress,
)
from monitor.types import FetchRecord, FetchStatus, RobotsRecord

log = logging.getLogger("monitor.fetch")

T = TypeVar("T")
Offload = Callable[..., Awaitable[Any]]  # (size, fn, *args, time_limit=seconds, **kwargs) -> fn's result
HostGate = Callable[[str], contextlib.AbstractAsyncContextManager[object]]  # host -> held while its request runs

MAX_REDIRECTS = 5
ROBOTS_TTL = timedelta(hours=12)
ROBOTS_MAX_BYTES = 512_000
MAX_RETRY_AFTER = timedelta(days=1)  # a server asking for more is capped: we will ask again tomorrow
_SCHEMES = ("http", "https")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ALLOW_PRIVATE = "monitor.allow_private"  # request extension: the source's allow_private, seen by the hooks
# The hop being sent when private addresses are refused (its URL), else None: set by the request hook and read
# by the connection guard, which runs in the same task (httpcore connects in the requesting task).
_REFUSING: contextvars.ContextVar[str | None] = contextvars.ContextVar("monitor_refusing_private", default=None)
_SHOWN_URL = 200  # characters of a foreign URL quoted in an error


class Response(msgspec.Struct, frozen=True):
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


class RequestLimits(msgspec.Struct, frozen=True):
    """Per-source settings for each request."""

    timeout: timedelta = timedelta(seconds=30)  # also the limit on parsing one response (workers.py)
    max_bytes: int = 10_000_000
    user_agent: str = "monitor"
    robots: bool = True
    allow_private: bool = True  # false: refuse private, loopback and link-local addresses


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


# ---------------------------------------------------------------- foreign errors -> the FetchError tree

Reason = Callable[[BaseException, str, RequestLimits], str]


def _timed_out(exc: BaseException, url: str, limits: RequestLimits) -> str:
    return f"timed out after {limits.timeout.total_seconds():g}s ({type(exc).__name__})"


def _cannot_connect(exc: BaseException, url: str, limits: RequestLimits) -> str:
    host = urlsplit(url).hostname or url
    causes = list(_chain(exc))
    if any(isinstance(c, socket.gaierror) for c in causes):
        return f"cannot resolve host {host}"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return f"connection refused by {host}"
    if any(isinstance(c, ssl.SSLError) for c in causes):
        return f"TLS error with {host}: {_text(exc)}"
    return f"cannot connect to {host}: {_text(exc)}"


def _broke_protocol(exc: BaseException, url: str, limits: RequestLimits) -> str:
    return f"{urlsplit(url).hostname or url} broke the HTTP protocol: {_text(exc)}"


def _other(exc: BaseException, url: str, limits: RequestLimits) -> str:
    return f"{type(exc).__name__}: {_text(exc)}"


# First matching row wins: subclasses before their bases.
ERROR_TABLE: tuple[tuple[type[BaseException], type[FetchError], Reason], ...] = (
    (httpx.TimeoutException, FetchTimeout, _timed_out),
    (TimeoutError, FetchTimeout, _timed_out),
    (httpx.TooManyRedirects, TooManyRedirects, lambda e, u, _: f"too many redirects (more than {MAX_REDIRECTS})"),
    (httpx.UnsupportedProtocol, UnsupportedAddress, lambda e, u, _: f"not an http(s) address: {_shown(u)}"),
    (httpx.InvalidURL, UnsupportedAddress, lambda e, u, _: f"invalid address {_shown(u)}: {_text(e)}"),
    (httpx.ConnectError, NetworkError, _cannot_connect),
    (httpx.DecodingError, DecodeError, lambda e, u, _: f"response body could not be decoded: {_text(e)}"),
    (httpx.RemoteProtocolError, NetworkError, _broke_protocol),
    (ssl.SSLError, NetworkError, lambda e, u, _: f"TLS error with {urlsplit(u).hostname}: {_text(e)}"),
    (httpx.HTTPError, NetworkError, _other),
    (OSError, NetworkError, _other),
)
MAPPED = tuple(row[0] for row in ERROR_TABLE)


def map_error(exc: BaseException, url: str, limits: RequestLimits) -> FetchError:
    """The FetchError for a foreign error raised while fetching `url` (raise it `from exc`)."""
    for foreign, ours, reason in ERROR_TABLE:
        if isinstance(exc, foreign):
            return ours(reason(exc, url, limits), url=url)
    return NetworkError(_other(exc, url, limits), url=url)


def _text(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())


def _shown(url: str) -> str:
    return url if len(url) <= _SHOWN_URL else url[: _SHOWN_URL - 1] + "…"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes (httpx wraps the socket error twice)."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        yield current
        current = current.__cause__ or current.__context__
        seen += 1


# ---------------------------------------------------------------- addresses


def address_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why `address` is not a public one ("a loopback address", ...), or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "not a public address"
    if address.is_private:
        return "a private address"
    return None if address.is_global else "not a public address"


def _refusal(url: str, host: str, address: str, kind: str) -> PrivateAddressRefused:
    shown = host if host == address else f"{host} ({address})"
    return PrivateAddressRefused(
        f"refused {_shown(url)}: {shown} is {kind} (allow_private is false for this source)", url=url
    )


async def _note_hop(request: httpx.Request) -> None:
    """Request hook, every hop: tell the connection guard whether this hop may reach a private address."""
    _REFUSING.set(None if request.extensions.get(_ALLOW_PRIVATE, True) else str(request.url))


async def _public_addresses(url: str, host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, when every one is public; else PrivateAddressRefused naming one."""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return [host]  # unresolvable: connecting fails with the usual clear "cannot resolve host"
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        kind = address_kind(address)
        if kind is not None:
            raise _refusal(url, host, str(address), kind)
    return list(dict.fromkeys(str(a) for a in addresses))


# Handed to the transport in place of a verifying context, and swapped for one at the first TLS handshake: loading
# the trusted roots costs 50-100 ms of CPU at start-up, which a poll of http:// feeds never needs.
_DEFERRED_TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's own verifying context (certifi's roots, or SSL_CERT_FILE / SSL_CERT_DIR), built once."""
    return httpx.create_ssl_context(trust_env=True)


class _Stream(httpcore.AsyncNetworkStream):
    """A connection of the guarded backend: httpcore's own stream, its TLS handshake given the real context."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self.inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self.inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self.inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        try:
            context = _tls_context() if ssl_context is _DEFERRED_TLS else ssl_context
        except BaseException:  # unreadable roots (SSL_CERT_FILE): the connection is closed, as a failed handshake's is
            await self.inner.aclose()
            raise
        return _Stream(await self.inner.start_tls(context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        # "is_readable", asked of every idle connection at each assignment, is answered from the asyncio stream's
        # buffer (aio_backend.py): no socket to look up or poll
        return self.inner.get_extra_info(info)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to checked public addresses while a hop refuses private
    ones: the address checked is the address connected to (no DNS rebinding between check and connect)."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        url = _REFUSING.get()
        if url is None:
            return _Stream(await self.inner.connect_tcp(host, port, timeout, local_address, socket_options))
        addresses = await _public_addresses(url, host, port)
        for address in addresses[:-1]:
            with contextlib.suppress(httpcore.ConnectError, httpcore.ConnectTimeout):
                return _Stream(await self.inner.connect_tcp(address, port, timeout, local_address, socket_options))
        return _Stream(await self.inner.connect_tcp(addresses[-1], port, timeout, local_address, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


# The httpcore releases whose stock assignment `_LinearPool` was checked against (tests/test_fetch.py): on any
# other, a fresh install's newer httpcore say, the stock pool runs, slower and as correct.
LINEAR_POOL_VERSIONS = frozenset({"1.0.9"})


class _LinearPool(httpcore.AsyncConnectionPool):
    """httpcore's pool, its assignment of requests to connections done in one pass per request instead of one
    per pair of connections. Stock httpcore 1.0 counts the pool's connections again for every idle one
    (`len([c.is_idle() for c in connections])`, the length of the list whatever its items) and lists every idle
    connection for every queued request, each time a request comes or goes: with 16 connections kept alive that
    was a tenth of a 304-only poll's CPU. The decisions, and their order, are the stock ones (tests/test_fetch.py
    compares the two on random pool states, and holds the stock method's source so an upgrade is looked at)."""

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing: list[httpcore.AsyncConnectionInterface] = []
        connections = self._connections
        for connection in list(connections):  # closed, expired, or idle beyond the keep-alive limit: out
            if connection.is_closed():
                connections.remove(connection)
            elif connection.has_expired() or (
                connection.is_idle() and len(connections) > self._max_keepalive_connections
            ):
                connections.remove(connection)
                closing.append(connection)
        for pool_request in [request for request in self._requests if request.is_queued()]:
            origin = pool_request.request.url.origin
            reusable = next((c for c in connections if c.can_handle_request(origin) and c.is_available()), None)
            if reusable is not None:
                pool_request.assign_to_connection(reusable)
                continue
            if len(connections) >= self._max_connections:  # full: make room by closing an idle one, if any
                idle = next((c for c in connections if c.is_idle()), None)
                if idle is None:
                    continue
                connections.remove(idle)
                closing.append(idle)
            connection = self.create_connection(origin)
            connections.append(connection)
            pool_request.assign_to_connection(connection)
        return closing


def _guarded_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """httpx's transport with the guard as its pool's network backend (httpcore's hook for it, which httpx
    does not expose), on a pool that assigns requests in linear time (`_LinearPool`). Proxies from the
    environment are mounted beside it: there the proxy connects."""
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=True, verify=_DEFERRED_TLS)
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(backend, httpcore.AsyncNetworkBackend):  # another httpx inside: say so, never pass silently
        raise RuntimeError(f"httpx {httpx.__version__}: cannot guard connections (no network backend)")
    # httpcore's own backend picks anyio or trio; monitor runs on asyncio only, and its own backend skips anyio's
    # per-operation wrapping (aio_backend.py)
    pool._network_backend = _GuardedBackend(AsyncioBackend())  # type: ignore[union-attr]
    aio_sync.install()  # and its locks and events, which it would make with anyio (aio_sync.py)
    if type(pool) is httpcore.AsyncConnectionPool and httpcore.__version__ in LINEAR_POOL_VERSIONS:
        pool.__class__ = _LinearPool  # the same object and state; only the assignment method differs
    return transport


async def _check_response(response: httpx.Response) -> None:
    """Response hook, every hop: a redirect must lead to http(s); with allow_private false, the address
    actually connected to must be public (DNS may have changed since the request hook resolved it)."""
    request = response.request
    if response.status_code in _REDIRECTS and "location" in response.headers:
        target = urljoin(str(request.url), response.headers["location"].strip())
        if urlsplit(target).scheme.lower() not in _SCHEMES:
            raise UnsupportedAddress(
                f"redirected to {_shown(target)}, which is not an http(s) address", url=str(request.url)
            )
    if request.extensions.get(_ALLOW_PRIVATE, True) or _proxied(str(request.url)):
        return
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if not peer:
        return
    address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    kind = address_kind(address)
    if kind is not None:
        raise _refusal(str(request.url), request.url.host, str(address), kind)


def _proxied(url: str) -> bool:
    """Whether the environment sends `url` through a proxy (then the peer is the proxy, not the site)."""
    proxies = urllib.request.getproxies()
    scheme = urlsplit(url).scheme
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(urlsplit(url).hostname or "")


# ---------------------------------------------------------------- the fetcher


class _RobotsEntry(msgspec.Struct):
    rules: Protego | None  # None: no usable robots.txt, everything allowed
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
        host_gate: HostGate | None = None,
    ) -> None:
        self.per_host = per_host
        self.host_gate = host_gate  # a cluster-wide hold on one of the host's slots (monitor worker), or none
        self.offload = offload  # runs parses in a worker process, bounded in time (workers.Workers.parse)
        self.user_agent = user_agent
        self.clock = clock
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._robots: dict[str, _RobotsEntry] = {}
        self._robots_stored: dict[str, RobotsRecord] = {}  # read by an earlier process (remember_robots)
        # read from their sites, not yet handed out (robots_read): the latest per origin, bounded as `_robots` is
        self._robots_read: dict[str, RobotsRecord] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._robots_off_logged: set[str] = set()
        # Every connection may stay for the next request (until httpx's 5 s keep-alive expiry): with 32 kept, a poll
        # of 50 hosts at 2 connections each closed a connection at every answer and opened one for the next source.
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            limits=limits,
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
            transport=transport or _guarded_transport(limits),
            trust_env=True,
            event_hooks={"request": [_note_hop], "response": [_check_response]},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def session(
        self, source: str, limits: RequestLimits, known_raw: Callable[[int], Mapping[bytes, str]] | None = None
    ) -> Session:
        if not limits.robots and source not in self._robots_off_logged:
            self._robots_off_logged.add(source)
            log.info("robots_off source=%s: robots.txt is not consulted for this source", source)
        return Session(self, source, limits, known_raw=known_raw)

    def _slot(self, url: str) -> asyncio.Semaphore:
        host = (urlsplit(url).hostname or "").lower()
        if host not in self._host_slots:
            self._host_slots[host] = asyncio.Semaphore(self.per_host)
        return self._host_slots[host]

    def _gated(self, url: str) -> contextlib.AbstractAsyncContextManager[object]:
        if self.host_gate is None:
            return contextlib.nullcontext()
        return self.host_gate((urlsplit(url).hostname or "").lower())

    async def request(self, url: str, limits: RequestLimits, *, headers: Mapping[str, str] | None = None) -> Response:
        """GET `url` within the host's slot. Raises a FetchError subclass (monitor.exceptions)."""
        if urlsplit(url).scheme.lower() not in _SCHEMES:
            raise UnsupportedAddress(f"not an http(s) address: {_shown(url)}", url=url)
        async with self._slot(url), self._gated(url):
            started = time.monotonic()
            try:
                async with asyncio.timeout(limits.timeout.total_seconds()):
                    return await self._stream(url, limits, headers or {}, started)
            except FetchError:
                raise
            except MAPPED as exc:
                raise map_error(exc, url, limits) from exc

    async def _stream(self, url: str, limits: RequestLimits, headers: Mapping[str, str], started: float) -> Response:
        seconds = limits.timeout.total_seconds()
        request_headers = {"User-Agent": limits.user_agent, **headers}
        async with self._client.stream(
            "GET",
            url,
            headers=request_headers,
            timeout=httpx.Timeout(seconds),
            extensions={_ALLOW_PRIVATE: limits.allow_private},
        ) as resp:
            final_url = str(resp.url)
            lower_headers = {k.lower(): v for k, v in resp.headers.items()}
            if resp.status_code == 304:
                # h11 ends the (empty) message only when it is read: unread, httpcore closes the connection
                # instead of keeping it, and a re-poll of a host reconnected for every source.
                await resp.aread()
                return Response(final_url, 304, lower_headers, b"", int((time.monotonic() - started) * 1000))
            if resp.status_code >= 400:
                retry_after = (
                    parse_retry_after(lower_headers.get("retry-after"), self.clock())
                    if resp.status_code in (429, 503)
                    else None
                )
                raise HTTPStatusError(
                    f"HTTP {resp.status_code} {resp.reason_phrase}".strip(),
                    url=final_url,
                    http_status=resp.status_code,
                    retry_after=retry_after,
                )
            declared = lower_headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limits.max_bytes and "content-encoding" not in lower_headers:
                raise ResponseTooLarge(
                    f"response of {int(declared):,} bytes is over the {limits.max_bytes:,}-byte cap",
                    url=final_url,
                    http_status=resp.status_code,
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():  # decoded bytes: a gzip bomb hits the cap too
                size += len(chunk)
                if size > limits.max_bytes:
                    raise ResponseTooLarge(
                        f"response over the {limits.max_bytes:,}-byte cap (stopped reading)",
                        url=final_url,
                        http_status=resp.status_code,
                        bytes_read=size,
                    )
                chunks.append(chunk)
            elapsed = int((time.monotonic() - started) * 1000)
            return Response(final_url, resp.status_code, lower_headers, b"".join(chunks), elapsed)

    async def allowed(self, url: str, limits: RequestLimits) -> bool:
        """Whether robots.txt of the url's origin lets our user agent fetch it (cached per origin)."""
        origin = _origin(url)
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:
            entry = self._robots.get(origin)
            if entry is None or time.monotonic() - entry.fetched > ROBOTS_TTL.total_seconds():
                entry = self._stored_entry(origin)
                if entry is None:
                    entry = _RobotsEntry(await self._read_robots(origin, limits), time.monotonic())
                self._robots[origin] = entry
        if entry.rules is None:
            return True
        return bool(entry.rules.can_fetch(url, robots_agent(limits.user_agent)))

    def remember_robots(self, records: Iterable[RobotsRecord]) -> None:
        """robots.txt files an earlier process read (the store's `robots`): each is used instead of asking its site
        while younger than ROBOTS_TTL, then read again from the site."""
        self._robots_stored.update((record.origin, record) for record in records)

    def robots_read(self) -> list[RobotsRecord]:
        """The robots.txt files read from their sites since the last call, to keep for the next process: each a
        file, or None for a site without one (4xx). One that could not be read (network, 5xx, 429) is not kept."""
        read, self._robots_read = self._robots_read, {}
        return list(read.values())

    def _stored_entry(self, origin: str) -> _RobotsEntry | None:
        record = self._robots_stored.pop(origin, None)
        if record is None:
            return None
        age = (self.clock() - record.fetched_at).total_seconds()
        if not 0 <= age <= ROBOTS_TTL.total_seconds():  # stale, or from a clock ahead of ours
            return None
        rules = parse_robots(record.body) if record.body is not None else None
        return _RobotsEntry(rules, time.monotonic() - age)

    async def _read_robots(self, origin: str, limits: RequestLimits) -> Protego | None:
        robots_limits = msgspec.structs.replace(
            limits, max_bytes=ROBOTS_MAX_BYTES, timeout=min(limits.timeout, timedelta(seconds=15))
        )
        try:
            resp = await self.request(f"{origin}/robots.txt", robots_limits)
        except FetchError as exc:
            # 4xx: no rules (RFC 9309). Network trouble and 5xx: the real request will report it; a site
            # that is down must count as failing, not as skipped, so that its operator hears of it.
            log.debug("robots_unavailable origin=%s error=%s", origin, exc)
            if exc.http_status is not None and 400 <= exc.http_status < 500 and exc.http_status != 429:
                self._robots_read[origin] = RobotsRecord(origin, None, self.clock())  # the site has none
            return None
        self._robots_read[origin] = RobotsRecord(origin, resp.body, self.clock())
        return parse_robots(resp.body)


def parse_robots(body: bytes) -> Protego:
    """robots.txt rules as RFC 9309 reads them (groups by user agent, longest match, `*` and `$`)."""
    return Protego.parse(body.decode("utf-8", "replace"))


def robots_agent(user_agent: str) -> str:
    """The product token robots.txt groups are matched against: "monitor/0.1 (+url)" -> "monitor"."""
    return user_agent.split("/", 1)[0].split(maxsplit=1)[0] if user_agent.strip() else "*"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Session(msgspec.Struct):
    """Requests made for one source in one poll; every request is logged as a FetchRecord."""

    fetcher: Fetcher
    source: str
    limits: RequestLimits
    records: list[FetchRecord] = msgspec.field(default_factory=list)
    # raw digest -> post key of the source's newest `limit` stored posts (feeds skip those items unparsed);
    # None when nothing is stored from this poll (check --probe)
    known_raw: Callable[[int], Mapping[bytes, str]] | None = None

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """GET with conditional headers; a 304 comes back as a Response with `not_modified`. Raises FetchError
        (RobotsDisallowed, recorded as a skipped fetch, when robots.txt refuses the address)."""
        started_at = self.fetcher.clock()
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        t0 = time.monotonic()
        if self.limits.robots and not await self.fetcher.allowed(url, self.limits):
            refusal = RobotsDisallowed(
                f"robots.txt of {_origin(url)} disallows {_shown(url)} (set robots: false on the source to override)",
                url=url,
            )
            self.records.append(FetchRecord(self.source, url, started_at, FetchStatus.SKIPPED, error=str(refusal)))
            raise refusal
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
        """`fn(body, **kwargs)`: a pure, picklable parser, run in a worker process bounded by the source's
        timeout when the fetcher has one (inline otherwise, bounded by the parsers' structure limits)."""
        if self.fetcher.offload is None:
            return fn(body, **kwargs)
        result: T = await self.fetcher.offload(
            len(body), fn, body, time_limit=self.limits.timeout.total_seconds(), **kwargs
        )
        return result

    def note_items(self, count: int) -> None:
        """Record how many items the last response held."""
        if self.records:
            self.records[-1] = msgspec.structs.replace(self.records[-1], items=count)


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
