"""What `monitor worker` and `monitor run --role scheduler` need of the PostgreSQL store beyond the Protocol.

- `apply_scripts`: another component's schema (the task queue's) applied once, recorded in the store's own
  migrations table under a migration set of its own, under the same advisory lock as the store's migrations.
- `host_slots`: the per-host limit held across every worker of the cluster. A request holds one of the host's
  `per_host` session advisory locks while it runs, on a connection of its own: the server drops the lock when
  that connection ends, so a killed worker never keeps a slot (no lease to tune, no clock to trust).
- `source_locks`: one poll of a source at a time across the cluster, whatever the queue believes. The queue
  requeues the jobs of a worker silent for a few heartbeats; a worker whose event loop only stalled (a long
  parse, a swapped-out machine) is still polling then. Its session advisory lock on the source makes the
  requeued poll skip instead of running beside it; a killed worker's lock goes with its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
import zlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from monitor.store.api import ScriptPlan
from monitor.store.postgres.base import StoreBase
from monitor.store.postgres.lock import LOCK_KEYS
from monitor.store.postgres.schema import CREATE_MIGRATIONS, MIGRATIONS_TABLE

SLOT_BASE = 0x10000  # the second key of a host's slot locks: never 1, the daemon lock's
SOURCE_KEY = 0x20000  # the second key of a source's poll lock
SLOT_WAIT_S = 0.02  # a request waiting for a busy host's slot asks again this often


class ClusterMixin(StoreBase):
    def apply_scripts(self, migration_set: str, plan: ScriptPlan) -> list[str]:
        """Apply what `plan` returns for the names already applied in `migration_set`, in one transaction under
        the migration lock (one process applies, the others wait, then find nothing left). Returns the names."""
        with self.mapped(f"apply the {migration_set} schema"):
            conn = self.connect(autocommit=True)
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_KEYS[0],))
                    conn.execute(CREATE_MIGRATIONS)
                    rows = conn.execute(
                        f"SELECT name FROM {MIGRATIONS_TABLE} WHERE migration_set = %s", (migration_set,)
                    ).fetchall()
                    steps = list(plan({r[0] for r in rows}))
                    for name, script in steps:
                        if script is not None:
                            conn.execute(script.encode())  # a whole script: no parameters, so `%` is literal
                        conn.execute(
                            f"INSERT INTO {MIGRATIONS_TABLE} (migration_set, name) VALUES (%s, %s)",
                            (migration_set, name),
                        )
            finally:
                conn.close()
        return [name for name, _ in steps]

    def host_slots(self, per_host: int) -> HostSlots:
        return HostSlots(self, per_host)

    def source_locks(self) -> SourceLocks:
        return SourceLocks(self)

    def connection_options(self) -> dict[str, Any]:
        from monitor.store.postgres import connection_options  # noqa: PLC0415  # the package imports this module

        return connection_options(readonly=False, environ=os.environ)


class HostSlots:
    """At most `per_host` requests at once to one host, across every process holding a `HostSlots` of the store."""

    def __init__(self, store: StoreBase, per_host: int) -> None:
        self.store = store
        self.per_host = per_host
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    @contextlib.asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        conn, key = await self._take(host)
        try:
            yield
        finally:
            await asyncio.to_thread(self._give_back, conn, key)

    async def _take(self, host: str) -> tuple[psycopg.Connection[Any], tuple[int, int]]:
        first = _host_key(host)
        conn = await asyncio.to_thread(self._connection)
        try:
            while True:
                slot = await asyncio.to_thread(self._try_slots, conn, first)
                if slot is not None:
                    return conn, (first, slot)
                await asyncio.sleep(SLOT_WAIT_S)
        except BaseException:
            self._discard(conn)
            raise

    def _try_slots(self, conn: psycopg.Connection[Any], first: int) -> int | None:
        start = random.randrange(self.per_host)  # spread the holders over the slots: fewer tries each
        with self.store.mapped("take a host slot"):
            for i in range(self.per_host):
                slot = SLOT_BASE + (start + i) % self.per_host
                row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (first, slot)).fetchone()
                if row and row[0]:
                    return slot
        return None

    def _connection(self) -> psycopg.Connection[Any]:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        with self.store.mapped("open a connection for host slots"):
            return self.store.connect(autocommit=True)

    def _give_back(self, conn: psycopg.Connection[Any], key: tuple[int, int]) -> None:
        try:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        except psycopg.Error:
            self._discard(conn)  # the lock went with the connection
            return
        with self._lock:
            self._idle.append(conn)

    def _discard(self, conn: psycopg.Connection[Any]) -> None:
        with contextlib.suppress(psycopg.Error):
            conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._discard(conn)


class SourceLocks:
    """`hold(source)` yields True while this process polls `source` and no other process of the cluster does,
    False (hold nothing) when one already does. All of a process's source locks share one connection: a
    session holds any number of advisory locks, so a worker needs one connection for them, not one per poll."""

    def __init__(self, store: StoreBase) -> None:
        self.store = store
        self._conn: psycopg.Connection[Any] | None = None
        self._held: set[str] = set()  # a session's advisory locks are re-entrant: this process's own polls
        self._lock = threading.Lock()

    @contextlib.asynccontextmanager
    async def hold(self, source: str) -> AsyncIterator[bool]:
        took = await asyncio.to_thread(self._try, source)
        try:
            yield took
        finally:
            if took:
                await asyncio.to_thread(self._release, source)

    def _try(self, source: str) -> bool:
        with self._lock, self.store.mapped("take a source's poll lock"):
            if source in self._held:
                return False
            if self._conn is None or self._conn.closed:
                self._conn = self.store.connect(autocommit=True)
            key = (_lock_key("source", source), SOURCE_KEY)
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()
            if not (row and row[0]):
                return False
            self._held.add(source)
            return True

    def _release(self, source: str) -> None:
        with self._lock:
            self._held.discard(source)
            conn = self._conn
            if conn is None:
                return
            try:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_lock_key("source", source), SOURCE_KEY))
            except psycopg.Error:  # the connection went, and every lock of this process with it
                self._close()

    def _close(self) -> None:
        conn, self._conn, self._held = self._conn, None, set()
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def close(self) -> None:
        with self._lock:
            self._close()


def _host_key(host: str) -> int:
    """The host as the first key of its slot locks (two hosts sharing one only share slots)."""
    return _lock_key("host", host)


def _lock_key(kind: str, name: str) -> int:
    """A signed 32-bit hash of `kind:name`, the first key of an advisory lock (a collision only shares a lock)."""
    value = zlib.crc32(f"{kind}:{name}".encode())
    return value - (1 << 32) if value >= 1 << 31 else value
