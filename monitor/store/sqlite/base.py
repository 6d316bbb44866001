"""One SQLite connection and what every domain mixin shares: transactions, row reads, time conversions."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from monitor.exceptions import StoreCorrupt, StoreError
from monitor.store.sqlite.checkpoint import Checkpointer
from monitor.store.sqlite.errors import mapped, store_error


class StoreBase:
    """The connection and its transactions. `readonly`: opened with mode=ro, nothing can be written."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, readonly: bool = False) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly
        self._damage: StoreCorrupt | None = None
        self.checkpointer: Checkpointer | None = None  # a writing connection's WAL checkpoints (checkpoint.py)

    def damage(self) -> StoreCorrupt | None:
        """The corruption this connection has run into, if any (a poll that met it reports it as a failed source)."""
        return self._damage

    @contextlib.contextmanager
    def mapped(self, doing: str, *, fts_query: bool = False) -> Iterator[None]:
        """`errors.mapped` for this store, remembering corruption (see `damage`)."""
        try:
            with mapped(self.path, doing, fts_query=fts_query):
                yield
        except StoreCorrupt as exc:
            self._damage = self._damage or exc
            raise

    @property
    def location(self) -> str:
        return str(self.path)

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()  # its thread, with a connection of its own
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        if self.checkpointer is not None:
            self.checkpointer.release()  # its descriptor of the WAL index outlives every connection (see there)

    def __enter__(self) -> StoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self, doing: str = "write") -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: the write lock is taken up front, so a poll is all or nothing.
        Any sqlite3 error inside leaves as the mapped StoreError (after the rollback)."""
        with self.mapped(doing):
            self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._noted(store_error(exc, self.path, doing)) from exc
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise self._noted(store_error(exc, self.path, doing)) from exc
        if self.checkpointer is not None:
            self.checkpointer.after_commit()

    def _noted(self, exc: StoreError) -> StoreError:
        if isinstance(exc, StoreCorrupt):
            self._damage = self._damage or exc
        return exc

    def check(self) -> list[str]:
        """PRAGMA quick_check: [] when the store is sound, else SQLite's description of each problem."""
        with self.mapped("check the store"):
            rows = [r[0] for r in self.conn.execute("PRAGMA quick_check")]
        return [] if rows == ["ok"] else rows

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts (inside the store only: what leaves it is a typed value)."""
        cursor = self.conn.execute(sql, tuple(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
