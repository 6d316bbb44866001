"""The asyncio network backend (monitor/collectors/aio_backend.py) against real sockets on 127.0.0.1: bytes in
order under flow control both ways, end of stream, errors and timeouts as httpcore's own classes, idle-close
detection, and no descriptor left behind by a cancelled read. (Through the fetcher, TLS, redirects, slow and
hostile servers are covered by tests/test_fetch.py and tests/test_hostile.py, which now run on this backend.)"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpcore
import pytest

from monitor.collectors.aio_backend import AsyncioBackend
from tests.conftest import refused_port, self_signed

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def sync(test: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """The test run on a fresh event loop, bounded to a minute."""

    @functools.wraps(test)
    def run() -> None:
        asyncio.run(asyncio.wait_for(test(), 60))

    return run


@contextlib.asynccontextmanager
async def server(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(guarded, "127.0.0.1", 0, ssl=tls)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(srv.wait_closed(), 5)


async def read_all(stream: httpcore.AsyncNetworkStream, limit: int) -> bytes:
    chunks: list[bytes] = []
    for _ in range(limit):  # bounded: each round reads at least one byte or ends
        data = await stream.read(65_536, timeout=10)
        if not data:
            return b"".join(chunks)
        chunks.append(data)
    raise AssertionError("the stream did not end")


@contextlib.asynccontextmanager
async def held_open() -> AsyncIterator[tuple[int, asyncio.Event]]:
    """(port, release) of a server that reads nothing and says nothing, each connection held open until `release`
    is set (at the latest on leaving, so a failed test leaves no handler waiting)."""
    release = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.wait_for(release.wait(), 30)

    async with server(hold) as port:
        try:
            yield port, release
        finally:
            release.set()


def open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


@sync
async def test_a_large_body_arrives_whole_and_in_order() -> None:
    body = os.urandom(8 * 1024 * 1024)  # far past the read buffer's high mark: reading pauses and resumes

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(4)
        writer.write(body)
        await writer.drain()

    async with server(send) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=10)
        await stream.write(b"GET!", timeout=10)
        await asyncio.sleep(0.2)  # let the server fill the buffer before anything is read
        assert await read_all(stream, 10_000) == body
        await stream.aclose()


def test_a_large_body_over_tls_arrives_whole_and_in_order(tmp_path: Path) -> None:
    """The read buffer pauses the connection past its high mark; over TLS, resuming must reach the same transport
    (the TLS layer's, not the socket's underneath it), or the rest of the body never comes."""
    cert, key = self_signed(tmp_path, "server")
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    body = os.urandom(8 * 1024 * 1024)

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(4)
        writer.write(body)
        await writer.drain()

    async def run() -> None:
        async with server(send, tls=serving) as port:
            plain = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=10)
            stream = await plain.start_tls(trusting, server_hostname="127.0.0.1", timeout=10)
            assert stream.get_extra_info("ssl_object") is not None
            await stream.write(b"GET!", timeout=10)
            await asyncio.sleep(0.3)  # let the buffer pass its high mark before anything is read
            assert await read_all(stream, 10_000) == body
            await stream.aclose()

    asyncio.run(asyncio.wait_for(run(), 60))


@sync
async def test_a_large_write_waits_for_a_slow_reader_and_arrives_whole() -> None:
    payload = os.urandom(16 * 1024 * 1024)
    received = asyncio.get_running_loop().create_future()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got = bytearray()
        for _ in range(100_000):  # bounded
            chunk = await reader.read(1 << 20)
            if not chunk:
                break
            got += chunk
            await asyncio.sleep(0.001)
        received.set_result(bytes(got))

    async with server(slow) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=10)
        await stream.write(payload, timeout=30)
        await stream.aclose()
        assert await asyncio.wait_for(received, 30) == payload


@sync
async def test_a_server_that_never_reads_makes_a_write_timeout() -> None:
    async with held_open() as (port, _):
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=10)
        with pytest.raises(httpcore.WriteTimeout):
            for _ in range(64):  # bounded: the socket buffers fill within a few MB
                await stream.write(b"x" * (1 << 20), timeout=0.3)
        await stream.aclose()


@sync
async def test_a_silent_server_makes_a_read_timeout() -> None:
    async with held_open() as (port, _):
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=10)
        with pytest.raises(httpcore.ReadTimeout):
            await stream.read(100, timeout=0.2)
        await stream.aclose()


@sync
async def test_a_refused_port_is_a_connect_error() -> None:
    with pytest.raises(httpcore.ConnectError):
        await AsyncioBackend().connect_tcp("127.0.0.1", refused_port(), timeout=5)


@sync
async def test_end_of_stream_after_a_partial_answer() -> None:
    async def partial(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
        await writer.drain()

    async with server(partial) as port:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=10)
        assert await read_all(stream, 100) == b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this"
        assert await stream.read(100, timeout=1) == b""  # and again: still the end, not a hang
        await stream.aclose()


@sync
async def test_an_idle_connection_closed_by_the_server_reads_as_readable() -> None:
    async with held_open() as (port, close):
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=10)
        assert stream.get_extra_info("is_readable") is False  # idle and open: reusable
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
        assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"
        assert stream.get_extra_info("ssl_object") is None
        close.set()
        for _ in range(200):  # bounded wait for the loop to see the close
            if stream.get_extra_info("is_readable"):
                break
            await asyncio.sleep(0.01)
        assert stream.get_extra_info("is_readable") is True  # the pool drops it instead of reusing it
        await stream.aclose()


@sync
async def test_a_cancelled_read_leaves_no_descriptor_behind() -> None:
    async with held_open() as (port, _):
        before = open_fds()
        streams = []  # kept: a transport dropped unclosed is closed by the garbage collector, which would hide a leak
        for _ in range(20):
            stream = await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=10)
            streams.append(stream)
            task = asyncio.ensure_future(stream.read(100, timeout=30))
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await stream.aclose()
        await asyncio.sleep(0.2)  # transports close on the next loop iterations
        # The server's 20 ends are still open (it closes them when released, and a client end would then close
        # itself at the end of stream): only the client's ends closed by `aclose` tell.
        assert open_fds() <= before + 20 + 2
