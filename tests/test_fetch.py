"""Fetch behaviour against real HTTP servers on 127.0.0.1: conditional GET, redirects, caps, timeouts,
Retry-After, robots.txt, per-host limits, schemes."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import inspect
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import httpx
import msgspec
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.collectors import aio_sync
from monitor.collectors.fetch import (
    LINEAR_POOL_VERSIONS,
    ROBOTS_TTL,
    Fetcher,
    RequestLimits,
    _LinearPool,
    address_kind,
    backoff_delay,
    parse_retry_after,
    parse_robots,
    robots_agent,
)
from monitor.exceptions import (
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
from tests.conftest import NOW, RawServer, refused_port, respond, self_signed

LIMITS = RequestLimits(
    timeout=timedelta(seconds=5), max_bytes=100_000, user_agent="monitor-test/1.0 (+t)", robots=False
)


def clock() -> datetime:
    return NOW


def fetch(
    url: str, limits: RequestLimits = LIMITS, *, stall: float = 0.0, **kwargs: Any
) -> tuple[Any, list[FetchRecord]]:
    """`session.get(url)` on a fresh fetcher; `stall`: the event loop is blocked that long, 50 ms in, as a busy
    poll blocks it (parsing, storing), so that what arrives meanwhile waits unread."""

    async def go() -> tuple[Any, list[FetchRecord]]:
        if stall:
            asyncio.get_running_loop().call_later(0.05, time.sleep, stall)
        async with Fetcher(per_host=2, user_agent=limits.user_agent, clock=clock) as fetcher:
            session = fetcher.session("s", limits)
            try:
                return await session.get(url, **kwargs), session.records
            except FetchError as exc:
                return exc, session.records

    return asyncio.run(go())


def test_conditional_get_sends_validators_and_treats_304_as_nothing_new(httpserver: HTTPServer) -> None:
    def handler(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304)
        return Response(b"<rss/>", headers={"ETag": '"v1"', "Last-Modified": "Sun, 01 Mar 2026 10:00:00 GMT"})

    httpserver.expect_request("/feed").respond_with_handler(handler)
    first, records = fetch(httpserver.url_for("/feed"))
    assert first.status == 200 and first.etag == '"v1"' and first.body == b"<rss/>"
    assert records[0].status is FetchStatus.OK and records[0].bytes == 6
    second, records = fetch(httpserver.url_for("/feed"), etag=first.etag, last_modified=first.last_modified)
    assert second.not_modified and second.body == b""
    assert records[0].status is FetchStatus.NOT_MODIFIED and records[0].http_status == 304
    sent = httpserver.log[-1][0].headers
    assert sent["If-None-Match"] == '"v1"'
    assert sent["If-Modified-Since"] == "Sun, 01 Mar 2026 10:00:00 GMT"
    assert sent["User-Agent"] == LIMITS.user_agent


@contextlib.contextmanager
def serving_304s(*, pause: float = 0.0, hang_up: bool = False) -> Iterator[tuple[int, list[int]]]:
    """A keep-alive HTTP/1.1 server on 127.0.0.1 answering every GET with 304: its port, and the client port
    of each request (one per connection used). `pause` makes requests overlap; `hang_up` closes after each
    answer without saying so."""
    peers: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            peers.append(self.client_address[1])
            time.sleep(pause)
            self.send_response(304)
            self.send_header("ETag", '"v1"')
            self.end_headers()
            self.close_connection = hang_up

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # a short poll interval: a test with many servers stops them in a moment, not half a second each
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield server.server_address[1], peers
    finally:
        server.shutdown()
        server.server_close()


def test_answers_of_304_keep_the_connection_for_the_next_request() -> None:
    """A re-poll is all 304s: each must leave its keep-alive connection in the pool (unread, httpcore closed
    it and every source of a host paid a new connection)."""

    async def go(port: int) -> list[bool]:
        async with Fetcher(per_host=1, user_agent=LIMITS.user_agent, clock=clock) as fetcher:
            session = fetcher.session("s", LIMITS)
            return [(await session.get(f"http://127.0.0.1:{port}/f{i}", etag='"v1"')).not_modified for i in range(5)]

    with serving_304s() as (port, peers):
        assert asyncio.run(go(port)) == [True] * 5
    assert len(peers) == 5 and len(set(peers)) == 1


def test_concurrent_requests_to_one_host_share_at_most_per_host_connections() -> None:
    """The pool hands each request a free connection of its origin or a new one, never more than the host's
    slots (and 304s, read to their end, keep theirs)."""

    async def go(port: int) -> list[bool]:
        async with Fetcher(per_host=4, user_agent=LIMITS.user_agent, clock=clock) as fetcher:
            session = fetcher.session("s", LIMITS)
            answers = await asyncio.gather(*(session.get(f"http://127.0.0.1:{port}/f{i}") for i in range(40)))
            return [a.not_modified for a in answers]

    with serving_304s(pause=0.005) as (port, peers):  # requests overlap
        assert asyncio.run(go(port)) == [True] * 40
    assert len(peers) == 40 and 1 <= len(set(peers)) <= 4


def test_connections_to_many_hosts_are_all_kept_for_the_next_poll_of_each() -> None:
    """A re-poll over more hosts than 32 (httpx's usual keep-alive count) still reuses each host's connection:
    every connection may stay (until its keep-alive expires), none is closed to make room for the next host's."""
    origins = 40

    async def go(ports: list[int]) -> list[bool]:
        async with Fetcher(per_host=2, user_agent=LIMITS.user_agent, clock=clock) as fetcher:
            session = fetcher.session("s", LIMITS)
            return [
                (await session.get(f"http://127.0.0.1:{port}/f{round_}")).not_modified
                for round_ in range(2)
                for port in ports
            ]

    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(serving_304s()) for _ in range(origins)]
        assert asyncio.run(go([port for port, _ in servers])) == [True] * 2 * origins
    assert [len(peers) for _, peers in servers] == [2] * origins
    assert all(len(set(peers)) == 1 for _, peers in servers)  # each host's second request on its first connection


def test_a_kept_connection_the_server_closed_is_not_reused() -> None:
    """The pool asks an idle connection whether it is readable (the server hung up) before reusing it; the
    stream answers from the socket it looked up once."""

    async def go(port: int) -> list[bool]:
        async with Fetcher(per_host=1, user_agent=LIMITS.user_agent, clock=clock) as fetcher:
            session = fetcher.session("s", LIMITS)
            answers = []
            for i in range(3):
                answers.append((await session.get(f"http://127.0.0.1:{port}/f{i}")).not_modified)
                await asyncio.sleep(0.1)  # the server's FIN arrives
            return answers

    with serving_304s(hang_up=True) as (port, peers):
        assert asyncio.run(go(port)) == [True] * 3
    assert len(set(peers)) == 3


def test_follows_up_to_five_redirects_not_six(httpserver: HTTPServer) -> None:
    for hop in range(7):
        httpserver.expect_request(f"/r{hop}").respond_with_response(
            Response(status=302, headers={"Location": f"/r{hop + 1}"})
        )
    httpserver.expect_request("/r7").respond_with_data("end")
    ok, _ = fetch(httpserver.url_for("/r2"))  # 5 redirects: r2 -> ... -> r7
    assert ok.status == 200 and ok.url.endswith("/r7")
    too_many, records = fetch(httpserver.url_for("/r1"))  # 6 redirects
    assert isinstance(too_many, TooManyRedirects) and "too many redirects" in str(too_many)
    assert records[0].status is FetchStatus.ERROR


@pytest.mark.parametrize("target", ["file:///etc/passwd", "javascript:alert(document.cookie)", "ftp://127.0.0.1/x"])
def test_a_redirect_to_another_scheme_is_refused_naming_its_target(httpserver: HTTPServer, target: str) -> None:
    httpserver.expect_request("/x").respond_with_response(Response(status=301, headers={"Location": target}))
    result, records = fetch(httpserver.url_for("/x"))
    assert isinstance(result, UnsupportedAddress)
    assert str(result) == f"redirected to {target}, which is not an http(s) address"
    assert records[0].error == str(result) and "\n" not in str(result)
    assert len(httpserver.log) == 1  # the target was never requested


def test_non_http_address_is_refused_without_a_request() -> None:
    result, records = fetch("ftp://127.0.0.1/feed")
    assert isinstance(result, UnsupportedAddress) and str(result) == "not an http(s) address: ftp://127.0.0.1/feed"
    assert records[0].status is FetchStatus.ERROR


def test_size_cap_from_content_length(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/big").respond_with_data(b"x" * 200_000)
    result, records = fetch(httpserver.url_for("/big"))
    assert isinstance(result, ResponseTooLarge) and "cap" in str(result) and not result.site_trouble
    assert records[0].error is not None and "cap" in records[0].error


def test_size_cap_while_streaming_an_endless_body(raw_server: RawServer) -> None:
    def endless(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "application/rss+xml")
        req.end_headers()  # no Content-Length: read until close
        for _ in range(10_000):
            req.wfile.write(b"<item>" + b"y" * 4096 + b"</item>")

    raw_server.routes["/endless"] = endless
    result, records = fetch(raw_server.url("/endless"))
    assert isinstance(result, ResponseTooLarge) and "stopped reading" in str(result)
    assert 100_000 < records[0].bytes < 200_000  # stopped soon after the cap, not after 40 MB


def test_gzip_bomb_hits_the_cap_on_decoded_bytes(httpserver: HTTPServer) -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)  # ~5 KB on the wire, 5 MB decoded
    httpserver.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})
    result, _ = fetch(httpserver.url_for("/bomb"))
    assert isinstance(result, ResponseTooLarge) and "cap" in str(result)


def test_gzip_encoded_body_is_decoded(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gz").respond_with_data(gzip.compress(b"hello"), headers={"Content-Encoding": "gzip"})
    result, _ = fetch(httpserver.url_for("/gz"))
    assert result.body == b"hello"


def test_a_slow_server_times_out(raw_server: RawServer) -> None:
    raw_server.routes["/slow"] = respond(body=b"late", delay=3)
    limits = RequestLimits(timeout=timedelta(seconds=0.5), max_bytes=1000, user_agent="t", robots=False)
    result, records = fetch(raw_server.url("/slow"), limits)  # the answer would come at 3 s: a success if waited for
    assert isinstance(result, FetchTimeout) and "timed out after 0.5s" in str(result) and result.site_trouble
    assert records[0].status is FetchStatus.ERROR


def test_a_trickling_server_hits_the_total_deadline(raw_server: RawServer) -> None:
    def trickle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Length", "100")
        req.end_headers()
        for _ in range(100):  # one byte every 0.2 s: never idle long enough for a read timeout
            req.wfile.write(b"x")
            req.wfile.flush()
            time.sleep(0.2)

    raw_server.routes["/trickle"] = trickle
    limits = RequestLimits(timeout=timedelta(seconds=1), max_bytes=1000, user_agent="t", robots=False)
    result, records = fetch(raw_server.url("/trickle"), limits)  # the whole body would come in 20 s: a success
    assert isinstance(result, FetchTimeout) and "timed out" in str(result)
    assert records[0].status is FetchStatus.ERROR


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_read_on_429_and_503(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/busy").respond_with_response(Response(status=status, headers={"Retry-After": "120"}))
    result, records = fetch(httpserver.url_for("/busy"))
    assert isinstance(result, HTTPStatusError) and result.site_trouble
    assert result.http_status == status and result.retry_after == 120
    assert records[0].http_status == status


def test_http_error_status_is_a_fetch_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone").respond_with_response(Response(status=404))
    result, _ = fetch(httpserver.url_for("/gone"))
    assert isinstance(result, HTTPStatusError) and str(result) == "HTTP 404 NOT FOUND" and result.retry_after is None
    assert result.http_status == 404 and not result.site_trouble  # one missing page says nothing of the site


@pytest.mark.parametrize(("status", "trouble"), [(500, False), (502, True), (503, True), (504, True), (403, False)])
def test_gateway_errors_are_site_trouble_and_a_500_is_one_pages(
    httpserver: HTTPServer, status: int, trouble: bool
) -> None:
    httpserver.expect_request("/oops").respond_with_response(Response(status=status))
    result, _ = fetch(httpserver.url_for("/oops"))
    assert isinstance(result, HTTPStatusError) and result.http_status == status and result.site_trouble is trouble


def test_connection_refused_is_a_clear_error() -> None:
    result, _ = fetch(f"http://127.0.0.1:{refused_port()}/feed")
    assert isinstance(result, NetworkError) and "connection refused" in str(result) and result.site_trouble


def test_fetch_errors_survive_pickling_with_their_fields() -> None:
    import pickle

    error = HTTPStatusError("HTTP 429 Too Many Requests", url="https://e.org/x", http_status=429, retry_after=30.0)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is HTTPStatusError and str(copy) == str(error)
    assert (copy.url, copy.http_status, copy.retry_after, copy.site_trouble) == ("https://e.org/x", 429, 30.0, True)


def test_robots_txt_is_obeyed_and_cached(raw_server: RawServer) -> None:
    raw_server.routes["/robots.txt"] = respond(body=b"User-agent: *\nDisallow: /private/\n")
    raw_server.routes["/private/feed"] = respond(body=b"secret")
    raw_server.routes["/public/feed"] = respond(body=b"ok")
    limits = RequestLimits(timeout=timedelta(seconds=5), max_bytes=1000, user_agent="monitor-test/1", robots=True)

    async def go() -> tuple[object, object]:
        async with Fetcher(per_host=2, user_agent="monitor-test/1", clock=clock) as fetcher:
            session = fetcher.session("s", limits)
            with pytest.raises(RobotsDisallowed, match=r"robots\.txt of http://127\.0\.0\.1:\d+ disallows"):
                await session.get(raw_server.url("/private/feed"))
            public = await session.get(raw_server.url("/public/feed"))
            return public, session.records

    public, records = asyncio.run(go())
    assert public.body == b"ok"  # type: ignore[attr-defined]
    assert [r.status for r in records] == [FetchStatus.SKIPPED, FetchStatus.OK]  # type: ignore[attr-defined]
    paths = [p for p, _ in raw_server.requests]
    assert paths.count("/robots.txt") == 1 and "/private/feed" not in paths


def test_per_host_limit_holds_under_concurrency(raw_server: RawServer) -> None:
    raw_server.routes["/item"] = respond(body=b"x", delay=0.2)

    async def go() -> None:
        async with Fetcher(per_host=2, user_agent="t", clock=clock) as fetcher:
            session = fetcher.session("s", LIMITS)
            await asyncio.gather(*(session.get(raw_server.url(f"/item?n={i}")) for i in range(8)))

    asyncio.run(go())
    assert len(raw_server.requests) == 8
    assert raw_server.max_active == 2


def test_user_agent_identifies_the_tool(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/ua").respond_with_data("ok")
    fetch(httpserver.url_for("/ua"))
    assert httpserver.log[-1][0].headers["User-Agent"] == LIMITS.user_agent


def test_retry_after_parsing() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after("Sun, 01 Mar 2026 12:02:00 GMT", now) == 120
    assert parse_retry_after("999999999", now) == 86400  # capped at a day
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_backoff_doubles_and_is_capped() -> None:
    interval = timedelta(minutes=10)
    delays: list[timedelta] = [backoff_delay(n, interval) for n in range(1, 8)]
    assert delays[:4] == [interval, interval * 2, interval * 4, interval * 8]
    assert max(delays) == timedelta(hours=6)
    assert backoff_delay(1000, interval) == timedelta(hours=6)
    long: Callable[[int], timedelta] = lambda n: backoff_delay(n, timedelta(days=1))  # noqa: E731
    assert long(5) == timedelta(days=1)  # never shorter than the interval itself


# --- robots.txt as RFC 9309 reads it ---------------------------------------------------------------------

# Shaped like the robots.txt files of large sites: several groups, wildcards, `$` anchors, Allow overrides.
NEWS_ROBOTS = b"""# robots.txt for a news site
User-agent: Googlebot
Disallow: /search

User-agent: *
Disallow: /*.json$
Disallow: /*?utm_
Disallow: /search
Disallow: /admin/
Allow: /admin/public/
Disallow: /*/amp$
Crawl-delay: 5

User-agent: monitor
Disallow: /private/

Sitemap: https://news.example/sitemap.xml
"""

REDDIT_LIKE_ROBOTS = b"""User-Agent: *
Disallow: /*.json$
Disallow: /*.json?*
Disallow: /*/comments/*?*sort=
Allow: /r/*/new/$
Disallow: /login
"""


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://www.reddit.com/r/x/new.json", False),  # the stdlib parser allows this one
        ("https://www.reddit.com/r/x/new.json?limit=25", False),
        ("https://www.reddit.com/r/x/new/", True),
        ("https://www.reddit.com/r/x/comments/abc/t/?sort=new", False),
        ("https://www.reddit.com/r/x/comments/abc/t/", True),
        ("https://www.reddit.com/login", False),
        ("https://www.reddit.com/r/x/about.jsonp", True),  # `$` anchors the end
    ],
)
def test_robots_wildcards_and_end_anchors_are_honoured(url: str, allowed: bool) -> None:
    assert parse_robots(REDDIT_LIKE_ROBOTS).can_fetch(url, "monitor") is allowed


@pytest.mark.parametrize(
    ("agent", "url", "allowed"),
    [
        ("monitor", "https://news.example/private/x", False),  # its own group ...
        ("monitor", "https://news.example/feed.json", True),  # ... replaces the * group entirely
        ("other", "https://news.example/feed.json", False),
        ("other", "https://news.example/feed.json.html", True),
        ("other", "https://news.example/story?utm_source=x", False),
        ("other", "https://news.example/admin/secret", False),
        ("other", "https://news.example/admin/public/page", True),  # the longest rule wins
        ("other", "https://news.example/2026/story/amp", False),
        ("other", "https://news.example/2026/story/amp/more", True),
    ],
)
def test_robots_groups_and_longest_match(agent: str, url: str, allowed: bool) -> None:
    assert parse_robots(NEWS_ROBOTS).can_fetch(url, agent) is allowed


def test_the_robots_agent_is_the_user_agents_product_token() -> None:
    assert robots_agent("monitor/0.1 (public media monitor; +https://e.org)") == "monitor"
    assert robots_agent("MediaWatch/2 (+x)") == "MediaWatch"
    assert robots_agent("   ") == "*"


def _robots_round(
    raw_server: RawServer, stored: list[RobotsRecord], status: int = 200
) -> tuple[list[bool], list[RobotsRecord], int]:
    """One fetcher, given `stored` (an earlier process's robots.txt), asks for /private/feed and /public/feed:
    which were allowed, what it read from the site to keep, and how often it asked the site."""
    raw_server.routes["/robots.txt"] = respond(status=status, body=b"User-agent: *\nDisallow: /public/\n")
    raw_server.routes["/private/feed"] = respond(body=b"secret")
    raw_server.routes["/public/feed"] = respond(body=b"ok")

    async def go() -> tuple[list[bool], list[RobotsRecord]]:
        async with Fetcher(per_host=2, user_agent="monitor-test/1", clock=clock) as fetcher:
            fetcher.remember_robots(stored)
            allowed = [await fetcher.allowed(raw_server.url(p), ROBOTS_LIMITS) for p in ("/private/f", "/public/f")]
            return allowed, fetcher.robots_read()

    allowed, read = asyncio.run(go())
    return allowed, read, [p for p, _ in raw_server.requests].count("/robots.txt")


ROBOTS_LIMITS = RequestLimits(timeout=timedelta(seconds=5), max_bytes=1000, user_agent="monitor-test/1", robots=True)
PRIVATE_ONLY = b"User-agent: *\nDisallow: /private/\n"


def test_a_robots_txt_an_earlier_process_read_is_used_without_asking_the_site(raw_server: RawServer) -> None:
    origin = raw_server.url("").rstrip("/")
    stored = [RobotsRecord(origin, PRIVATE_ONLY, clock() - timedelta(hours=11))]
    assert _robots_round(raw_server, stored) == ([False, True], [], 0)  # the stored rules, not the site's


def test_a_stale_or_future_stored_robots_txt_is_read_again_and_handed_out_to_keep(raw_server: RawServer) -> None:
    origin = raw_server.url("").rstrip("/")
    for fetched_at in (clock() - timedelta(hours=13), clock() + timedelta(hours=1)):
        raw_server.requests.clear()
        allowed, read, asked = _robots_round(raw_server, [RobotsRecord(origin, PRIVATE_ONLY, fetched_at)])
        assert (allowed, asked) == ([True, False], 1)  # the site's rules now
        assert read == [RobotsRecord(origin, b"User-agent: *\nDisallow: /public/\n", clock())]


def test_what_a_fetcher_holds_for_the_store_is_one_entry_per_origin_however_often_it_reads(
    raw_server: RawServer,
) -> None:
    """A daemon that reads a host's robots.txt every 12 hours for months holds the latest read for the store, not
    one per read: bounded by the hosts, like its cache."""
    raw_server.routes["/robots.txt"] = respond(body=PRIVATE_ONLY)
    url = raw_server.url("/feed")

    async def go() -> list[RobotsRecord]:
        async with Fetcher(per_host=2, user_agent="monitor-test/1", clock=clock) as fetcher:
            for _ in range(3):
                await fetcher.allowed(url, ROBOTS_LIMITS)
                origin, entry = next(iter(fetcher._robots.items()))
                stale = time.monotonic() - ROBOTS_TTL.total_seconds() - 1
                fetcher._robots[origin] = msgspec.structs.replace(entry, fetched=stale)  # past its TTL: read again
            return fetcher.robots_read()

    read = asyncio.run(go())
    assert [p for p, _ in raw_server.requests].count("/robots.txt") == 3
    assert read == [RobotsRecord(raw_server.url("").rstrip("/"), PRIVATE_ONLY, clock())]


@pytest.mark.parametrize(("status", "kept"), [(404, True), (410, True), (429, False), (503, False)])
def test_a_site_without_robots_txt_is_kept_as_such_and_one_that_failed_is_not(
    raw_server: RawServer, status: int, kept: bool
) -> None:
    allowed, read, asked = _robots_round(raw_server, [], status=status)
    assert (allowed, asked) == ([True, True], 1)  # no rules either way
    assert read == ([RobotsRecord(raw_server.url("").rstrip("/"), None, clock())] if kept else [])


def test_a_wildcard_rule_refuses_a_source_through_the_fetcher(raw_server: RawServer) -> None:
    raw_server.routes["/robots.txt"] = respond(body=REDDIT_LIKE_ROBOTS)
    raw_server.routes["/r/x/new.json"] = respond(body=b"{}")
    limits = msgspec.structs.replace(LIMITS, robots=True)
    result, records = fetch(raw_server.url("/r/x/new.json"), limits)
    assert isinstance(result, RobotsDisallowed) and not result.site_trouble
    assert records[0].status is FetchStatus.SKIPPED and records[0].error == str(result)
    assert "/r/x/new.json" not in [p for p, _ in raw_server.requests]


def test_an_unreachable_robots_txt_does_not_block(raw_server: RawServer) -> None:
    raw_server.routes["/robots.txt"] = respond(status=500)
    raw_server.routes["/feed"] = respond(body=b"ok")
    result, _ = fetch(raw_server.url("/feed"), msgspec.structs.replace(LIMITS, robots=True))
    assert not isinstance(result, FetchError) and result.body == b"ok"


# --- allow_private ------------------------------------------------------------------------------------------


def test_private_addresses_are_followed_by_default(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data("ok")
    result, _ = fetch(httpserver.url_for("/feed"))
    assert not isinstance(result, FetchError) and result.body == b"ok"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_allow_private_false_refuses_loopback_before_any_request(httpserver: HTTPServer, host: str) -> None:
    httpserver.expect_request("/feed").respond_with_data("ok")
    url = httpserver.url_for("/feed").replace("localhost", host)
    result, records = fetch(url, msgspec.structs.replace(LIMITS, allow_private=False))
    assert isinstance(result, PrivateAddressRefused)
    assert str(result).startswith(f"refused {url}: {host}") and "a loopback address" in str(result)
    assert "allow_private is false" in str(result) and records[0].status is FetchStatus.ERROR
    assert httpserver.log == []  # nothing was sent


def test_allow_private_false_checks_every_redirect_hop(httpserver: HTTPServer) -> None:
    # The first hop is refused already; the check runs on each hop because a redirect is a new request.
    httpserver.expect_request("/hop").respond_with_response(
        Response(status=302, headers={"Location": "http://10.0.0.1/internal"})
    )
    result, _ = fetch(httpserver.url_for("/hop"), msgspec.structs.replace(LIMITS, allow_private=False))
    assert isinstance(result, PrivateAddressRefused) and httpserver.log == []


def test_the_address_actually_connected_to_is_checked_too(httpserver: HTTPServer) -> None:
    """DNS can change between the check before a request and the connection (rebinding): the response hook
    checks the peer address of the connection itself, before any of the body is read."""
    import httpx

    from monitor.collectors import fetch as fetch_module

    httpserver.expect_request("/feed").respond_with_data("secret")

    async def go() -> BaseException | None:
        async with httpx.AsyncClient(event_hooks={"response": [fetch_module._check_response]}) as client:
            try:
                await client.get(httpserver.url_for("/feed"), extensions={fetch_module._ALLOW_PRIVATE: False})
            except PrivateAddressRefused as exc:
                return exc
        return None

    refused = asyncio.run(go())
    assert isinstance(refused, PrivateAddressRefused) and "127.0.0.1" in str(refused)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("192.168.0.10", "a private address"),
        ("169.254.169.254", "a link-local address"),  # cloud metadata services
        ("::ffff:192.168.0.1", "a private address"),
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
        ("0.0.0.0", "not a public address"),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    import ipaddress

    assert address_kind(ipaddress.ip_address(address)) == kind


def _https_server(tmp_path: Any, body: bytes = b"tls ok") -> tuple[Any, str, Any]:
    """A TLS server on 127.0.0.1 with a certificate of its own (openssl), answering every GET with `body`."""
    import http.server
    import ssl
    import threading

    cert, key = self_signed(tmp_path, "server")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"https://127.0.0.1:{server.server_address[1]}/feed", cert


def test_https_is_verified_with_the_roots_loaded_at_the_first_handshake(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trusted roots are loaded when the first TLS connection is made, not at start-up, and they are httpx's
    own (here SSL_CERT_FILE, honoured as httpx honours it): a certificate they hold is accepted, another refused."""
    from monitor.collectors import fetch as fetch_module

    server, url, cert = _https_server(tmp_path)
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        fetch_module._tls_context.cache_clear()
        ok, _ = fetch(url)
        assert ok.status == 200 and ok.body == b"tls ok"
        monkeypatch.setenv("SSL_CERT_FILE", str(self_signed(tmp_path, "another")[0]))
        fetch_module._tls_context.cache_clear()
        refused, records = fetch(url)
        assert isinstance(refused, NetworkError) and "certificate" in str(refused).lower()
        assert records[-1].status is FetchStatus.ERROR
    finally:
        fetch_module._tls_context.cache_clear()
        server.shutdown()
        server.server_close()


def test_a_large_feed_over_https_arrives_whole(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """8 MB over TLS, sent at once while the event loop is blocked: the fetcher's whole path (TLS context, guarded
    backend, pool, size cap) for a body far larger than the stream's 256 KiB read buffer. (The pause and resume
    of reading on a TLS connection is pinned at the backend, tests/test_aio_backend.py; this test passes on the
    code before that fix too: the fetcher reads as fast as the answer comes.)"""
    from monitor.collectors import fetch as fetch_module

    body = random.Random(7).randbytes(8_000_000)
    server, url, cert = _https_server(tmp_path, body)
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        fetch_module._tls_context.cache_clear()
        limits = RequestLimits(timeout=timedelta(seconds=10), max_bytes=10_000_000, user_agent="t", robots=False)
        result, records = fetch(url, limits, stall=0.3)
        assert not isinstance(result, FetchError), result
        assert result.status == 200 and result.body == body
        assert records[-1].status is FetchStatus.OK and records[-1].bytes == len(body)
    finally:
        fetch_module._tls_context.cache_clear()
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- the pool's assignment of requests (_LinearPool)

# sha256 of httpcore 1.0.9's AsyncConnectionPool._assign_requests_to_connections: _LinearPool restates it. To add
# a release to LINEAR_POOL_VERSIONS, compare its stock method with _LinearPool's, then its digest with this one.
STOCK_ASSIGN_SHA256 = "ea1547e78a655633653bde5257e611ee458cfd46b8ab4543de13c5bae095b0ae"


class _FakeConnection:
    """A connection's state as the pool reads it (no I/O): what each state question answers."""

    def __init__(self, rng: random.Random, origins: list[httpcore.Origin], name: int) -> None:
        self.name = name
        self.origin = rng.choice(origins)
        self.closed = rng.random() < 0.15
        self.expired = rng.random() < 0.15
        self.idle = rng.random() < 0.5
        self.available = self.idle and rng.random() < 0.8

    def is_closed(self) -> bool:
        return self.closed

    def has_expired(self) -> bool:
        return self.expired

    def is_idle(self) -> bool:
        return self.idle

    def is_available(self) -> bool:
        return self.available

    def can_handle_request(self, origin: httpcore.Origin) -> bool:
        return origin == self.origin


class _FakeRequest:
    def __init__(self, rng: random.Random, origins: list[httpcore.Origin]) -> None:
        origin = rng.choice(origins)
        self.request = httpcore.Request("GET", f"{origin.scheme.decode()}://{origin.host.decode()}:{origin.port}/")
        self.queued = rng.random() < 0.7
        self.connection: Any = None

    def is_queued(self) -> bool:
        return self.queued

    def assign_to_connection(self, connection: Any) -> None:
        self.connection = connection
        if isinstance(connection, _FakeConnection):  # a reused connection is busy for the next request
            connection.available = connection.idle = False


def _pool_state(pool_class: type[httpcore.AsyncConnectionPool], seed: int) -> tuple[Any, ...]:
    """Run one assignment on a random pool state; what it decided (which requests got which connection,
    which connections were closed, which remain, which were created)."""
    rng = random.Random(seed)
    origins = [httpcore.Origin(b"http", f"h{i}.test".encode(), 80) for i in range(rng.randint(1, 3))]
    pool = pool_class(max_connections=rng.randint(1, 6), max_keepalive_connections=rng.randint(0, 4))
    connections: list[Any] = [_FakeConnection(rng, origins, i) for i in range(rng.randint(0, 8))]
    requests: list[Any] = [_FakeRequest(rng, origins) for _ in range(rng.randint(0, 6))]
    pool._connections, pool._requests = connections, requests
    created: list[Any] = []

    def create_connection(origin: httpcore.Origin) -> Any:
        fake = _FakeConnection(random.Random(len(created)), origins, 100 + len(created))
        fake.origin, fake.idle, fake.available = origin, False, False  # a new connection: not yet connected
        created.append(fake)
        return fake

    pool.create_connection = create_connection  # type: ignore[method-assign]
    closing = pool._assign_requests_to_connections()

    def name(c: Any) -> int | None:
        return None if c is None else c.name

    return (
        [name(r.connection) for r in requests],
        [name(c) for c in closing],
        [name(c) for c in pool._connections],
        [(name(c), c.origin) for c in created],
    )


def test_the_linear_pool_decides_as_httpcore_does() -> None:
    """The same requests get the same connections, the same connections close and the same are created, in the
    same order, as with httpcore's own pool, over many random pool states (full pools, several origins,
    expired, closed and idle connections beyond the keep-alive limit)."""
    for seed in range(3000):
        assert _pool_state(_LinearPool, seed) == _pool_state(httpcore.AsyncConnectionPool, seed), seed


@pytest.mark.skipif(
    httpcore.__version__ not in LINEAR_POOL_VERSIONS, reason=f"httpcore {httpcore.__version__}: the stock pool runs"
)
def test_the_stock_assignment_is_the_one_the_linear_pool_restates() -> None:
    source = inspect.getsource(httpcore.AsyncConnectionPool._assign_requests_to_connections)
    assert hashlib.sha256(source.encode()).hexdigest() == STOCK_ASSIGN_SHA256, httpcore.__version__


def test_a_fetcher_uses_the_linear_pool() -> None:
    async def go() -> Any:
        async with Fetcher(per_host=2, user_agent="t", clock=clock) as fetcher:
            return type(fetcher._client._transport._pool)  # type: ignore[attr-defined]

    expected = _LinearPool if httpcore.__version__ in LINEAR_POOL_VERSIONS else httpcore.AsyncConnectionPool
    assert asyncio.run(go()) is expected


# httpcore's stock AsyncLock, AsyncEvent and AsyncShieldCancellation (httpcore/_synchronization.py, 1.0.9), whose
# interface and meaning aio_sync restates on asyncio. To add a release to aio_sync.CHECKED_VERSIONS, compare its
# three classes with aio_sync's, then their digest with this one.
STOCK_SYNC_SHA256 = "f1f1375c902dd6b00e2751677a0bcb2f33e85cea043fc66cfdfac86e310d08b7"
CHECKED_SYNC = httpcore.__version__ in aio_sync.CHECKED_VERSIONS


@pytest.mark.skipif(not CHECKED_SYNC, reason=f"httpcore {httpcore.__version__}: its own primitives stay")
def test_the_stock_primitives_are_the_ones_aio_sync_restates() -> None:
    from httpcore import _synchronization as stock

    source = "".join(inspect.getsource(c) for c in (stock.AsyncLock, stock.AsyncEvent, stock.AsyncShieldCancellation))
    assert hashlib.sha256(source.encode()).hexdigest() == STOCK_SYNC_SHA256, httpcore.__version__


@pytest.mark.skipif(not CHECKED_SYNC, reason=f"httpcore {httpcore.__version__}: its own primitives stay")
def test_a_fetcher_makes_httpcores_locks_and_events_with_asyncio() -> None:
    async def go() -> tuple[type, type]:
        async with Fetcher(per_host=2, user_agent="t", clock=clock):
            from httpcore._async import connection_pool, http11

            return vars(connection_pool)["AsyncEvent"], vars(http11)["AsyncLock"]

    assert asyncio.run(go()) == (aio_sync.AsyncEvent, aio_sync.AsyncLock)


def test_an_event_wait_beyond_its_timeout_is_httpcores_pool_timeout() -> None:
    async def go() -> list[str]:
        seen = []
        event = aio_sync.AsyncEvent()
        with pytest.raises(httpcore.PoolTimeout):
            await event.wait(timeout=0.05)
        seen.append("timed out")
        asyncio.get_running_loop().call_later(0.02, event.set)
        await event.wait(timeout=5)  # set by another callback while waiting
        await event.wait(timeout=0)  # already set: no wait at all, even with no time left
        seen.append("set")
        return seen

    assert asyncio.run(go()) == ["timed out", "set"]


def test_a_request_cancelled_while_it_waits_for_the_pool_leaves_the_pool_serving() -> None:
    """One connection, one slow request on it, a second one waiting for it (on the pool's event) and cancelled
    there: the first completes, the pool forgets the second, and a third gets the connection. A pool timeout
    while waiting is httpx's PoolTimeout."""
    from monitor.collectors.fetch import _guarded_transport

    async def go(port: int) -> tuple[list[int], int, str]:
        transport = _guarded_transport(httpx.Limits(max_connections=1, max_keepalive_connections=1))
        async with httpx.AsyncClient(transport=transport) as client:
            url = f"http://127.0.0.1:{port}/f"
            first = asyncio.create_task(client.get(url))
            await asyncio.sleep(0.05)  # the first holds the one connection
            waiting = asyncio.create_task(client.get(url))
            await asyncio.sleep(0.05)
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            statuses = [(await first).status_code, (await client.get(url)).status_code]
            left = len(transport._pool._requests)  # type: ignore[attr-defined]
            slow = asyncio.create_task(client.get(url))
            await asyncio.sleep(0.05)
            try:
                await client.get(url, timeout=httpx.Timeout(5, pool=0.05))
                outcome = "served"
            except httpx.PoolTimeout:
                outcome = "pool timeout"
            await slow
            return statuses, left, outcome

    with serving_304s(pause=0.3) as (port, peers):
        assert asyncio.run(go(port)) == ([304, 304], 0, "pool timeout")
    assert len(set(peers)) == 1  # one connection throughout, kept across the cancelled wait
