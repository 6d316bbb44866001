"""One daemon per store: a session advisory lock held on a connection of its own for the daemon's lifetime.

The server releases the lock when that connection ends, however the daemon dies (a killed process closes its
socket; a vanished machine is noticed by TCP keepalives, set short on this connection). `daemon_holder` asks
`pg_locks` whether some session holds it, without taking it; the holder's name is in the `daemon` row.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime
from typing import Any

import psycopg

from monitor.exceptions import StoreLocked
from monitor.store.postgres.base import StoreBase
from monitor.store.rows import ts
from monitor.types import Holder

# pg_advisory_lock(int, int): the first key says "monitor", the second "the daemon" (per database).
LOCK_KEYS = (0x6D6F6E69, 1)
TAKE_LOCK_S = 2.0  # as the SQLite store: a daemon starting while another stops waits this long
_KEEPALIVES = ("SET tcp_keepalives_idle = 30", "SET tcp_keepalives_interval = 10", "SET tcp_keepalives_count = 3")
_HELD = """SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s AND objid = %s
           AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""


class LockMixin(StoreBase):
    _lock_conn: psycopg.Connection[Any] | None = None
    _holder: Holder | None = None

    def lock_daemon(self, holder: Holder, now: datetime) -> None:
        """Take the daemon lock for this process's lifetime, or raise StoreLocked naming the holder."""
        with self.mapped("take the daemon lock"):
            conn = self.connect(autocommit=True)
            try:
                for statement in _KEEPALIVES:
                    conn.execute(statement)
                deadline = time.monotonic() + TAKE_LOCK_S
                while not _try_lock(conn):
                    if time.monotonic() >= deadline:
                        held = self._recorded_holder()
                        raise StoreLocked(
                            f"{self.location} is held by another `monitor run`: {_describe(held)}",
                            holder=held[0] if held else None,
                        )
                    time.sleep(0.05)
            except BaseException:
                conn.close()
                raise
        self._lock_conn, self._holder = conn, holder
        with self.transaction("record the daemon") as tx:
            tx.execute(
                """INSERT INTO daemon (id, holder, started_at, heartbeat_at) VALUES (1, %s, %s, %s)
                   ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, started_at = excluded.started_at,
                                                  heartbeat_at = excluded.heartbeat_at""",
                (str(holder), ts(now), ts(now)),
            )

    def unlock_daemon(self) -> None:
        if self._lock_conn is not None:
            with contextlib.suppress(psycopg.Error):  # now, not when the server notices the session ended
                self._lock_conn.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEYS)
            with contextlib.suppress(psycopg.Error):
                self._lock_conn.close()  # ending the session releases the lock anyway
            self._lock_conn = None

    def daemon_holder(self) -> Holder | None:
        """The daemon holding this store now, if one does (a `Holder` with pid 0 when its row says nothing)."""
        with self.read("look for a daemon") as conn:
            if conn.execute(_HELD, LOCK_KEYS).fetchone() is None:
                return None
            row = conn.execute("SELECT holder FROM daemon WHERE id = 1").fetchone()
        return (Holder.parse(row[0]) if row else None) or Holder(host="?", pid=0, started=0)

    def heartbeat(self, now: datetime) -> None:
        """The daemon is alive at `now`. If its lock's connection was lost (a server restart), the lock is taken
        again, or StoreLocked raised when another daemon took it meanwhile."""
        if self._holder is None:
            return
        if self._lock_conn is not None and not _alive(self._lock_conn):
            holder = self._holder
            self.unlock_daemon()
            self.lock_daemon(holder, now)
        with self.transaction("write the heartbeat") as conn:
            conn.execute(
                "UPDATE daemon SET heartbeat_at = %s WHERE id = 1 AND holder = %s", (ts(now), str(self._holder))
            )

    def _recorded_holder(self) -> tuple[str, str] | None:
        with self.read("read the daemon's holder") as conn:
            row = conn.execute("SELECT holder, started_at FROM daemon WHERE id = 1").fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def close(self) -> None:
        self.unlock_daemon()
        super().close()


def _alive(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _try_lock(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEYS).fetchone()
    return bool(row and row[0])


def _describe(held: tuple[str, str] | None) -> str:
    holder = Holder.parse(held[0]) if held else None
    if holder is None or held is None:
        return "a process that left no details"
    return f"pid {holder.pid} on host {holder.host} since {held[1]}"
