"""httpcore's locks, events and cancellation shields on plain asyncio, instead of through anyio.

On asyncio, httpcore makes each of them with anyio. The first one imports anyio's asyncio backend with its
socket, stream and TLS modules (about 20 ms of every poll process's start, against a whole re-poll of 0.45 s),
and every acquire, wait and shield goes through anyio's cancel scopes and checkpoints. monitor runs on asyncio
and opens no anyio cancel scope, so these do the same job with asyncio's own:

- a lock is asyncio's lock;
- an event is asyncio's event, waited under `asyncio.timeout`; the timeout raises httpcore's PoolTimeout, as the
  stock event maps anyio's TimeoutError;
- the shield does nothing. anyio's shield only holds off the cancellation of an enclosing anyio scope, and there
  is none: a `task.cancel()` (a deadline, a shutdown) passes through anyio's shield too.

`install()` puts them into httpcore's HTTP/1.1 modules (direct and through an HTTP proxy; a SOCKS proxy's module,
which needs socksio, keeps anyio's), for the httpcore releases whose stock classes were checked (tests/test_fetch.py
holds their source digest); on any other release httpcore's own stay.
"""

from __future__ import annotations

import asyncio
import types
from typing import Self

import httpcore
import httpcore._async.connection as _connection
import httpcore._async.connection_pool as _connection_pool
import httpcore._async.http11 as _http11
import httpcore._async.http_proxy as _http_proxy

CHECKED_VERSIONS = frozenset({"1.0.9"})


class AsyncLock:
    """httpcore's AsyncLock: `async with lock:`."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        await self._lock.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        self._lock.release()


class AsyncEvent:
    """httpcore's AsyncEvent: a pool request waits on it for a connection, `timeout` seconds at most."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, timeout: float | None = None) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError as exc:
            raise httpcore.PoolTimeout(exc) from exc


class AsyncShieldCancellation:
    """httpcore's AsyncShieldCancellation, around closing connections: nothing to shield from here (see above)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: types.TracebackType | None = None,
    ) -> None:
        return None


_PATCHED = {
    _connection: ("AsyncLock",),
    _connection_pool: ("AsyncEvent", "AsyncShieldCancellation"),
    _http11: ("AsyncLock", "AsyncShieldCancellation"),
    _http_proxy: ("AsyncLock",),
}
_OURS = {"AsyncLock": AsyncLock, "AsyncEvent": AsyncEvent, "AsyncShieldCancellation": AsyncShieldCancellation}


def install() -> bool:
    """Use these in httpcore's HTTP/1.1 path (HTTP/2 is never enabled here); whether it was done."""
    if httpcore.__version__ not in CHECKED_VERSIONS:
        return False
    for module, names in _PATCHED.items():
        for name in names:
            setattr(module, name, _OURS[name])
    return True
