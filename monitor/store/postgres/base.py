"""The connection pool and what every domain mixin shares: transactions, row reads.

Each method borrows a connection from the pool for one transaction (psycopg_pool commits it when the block
ends, rolls it back when it raises), so a store may be used from several threads, and a stream of rows
(`iter_posts`) holds its own connection while other calls go on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from monitor.exceptions import StoreCorrupt, StoreError, StoreReadOnly
from monitor.store.postgres.errors import mapped
from monitor.store.postgres.schema import INDEXING, relations


class StoreBase:
    """The pool. `readonly`: every transaction is READ ONLY (the server refuses any write)."""

    def __init__(
        self,
        pool: ConnectionPool,
        connect: Callable[..., psycopg.Connection[Any]],
        location: str,
        *,
        readonly: bool = False,
    ) -> None:
        self.pool = pool
        self.connect = connect  # a connection of its own, outside the pool (the daemon lock's)
        self._location = location
        self.readonly = readonly
        self._damage: StoreCorrupt | None = None

    @property
    def location(self) -> str:
        return self._location

    def damage(self) -> StoreCorrupt | None:
        """The corruption this store has run into, if any (a poll that met it reports it as a failed source)."""
        return self._damage

    @contextlib.contextmanager
    def mapped(self, doing: str) -> Iterator[None]:
        """`errors.mapped` for this store, remembering corruption (see `damage`)."""
        try:
            with mapped(self._location, doing):
                yield
        except StoreCorrupt as exc:
            self._damage = self._damage or exc
            raise

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error, RuntimeError):
            self.pool.close()

    def __enter__(self) -> StoreBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def read(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one reading transaction."""
        with self.mapped(doing), self.pool.connection() as conn:
            yield conn

    @contextlib.contextmanager
    def transaction(self, doing: str = "write") -> Iterator[psycopg.Connection[Any]]:
        """One writing transaction: committed when the block ends, rolled back (and mapped) when it raises.
        The program's own writes keep the full-text index themselves (the trigger for others' edits stands by)."""
        if self.readonly:
            raise StoreReadOnly(f"{self._location}: cannot {doing}: the store was opened read-only")
        with self.mapped(doing), self.pool.connection() as conn:
            conn.execute(f"SET LOCAL {INDEXING} = 'on'")
            yield conn

    def one(self, conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.all(conn, sql, params)
        return rows[0] if rows else None

    def all(self, conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts (inside the store only: what leaves it is a typed value)."""
        with conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(sql, tuple(params))
            return cursor.fetchall()

    def check(self) -> list[str]:
        """What is missing from the schema (every table and view its migrations create), or [] when the store is
        sound. The server checks its own pages (checksums, amcheck); this checks the store is complete."""
        with self.read("check the store") as conn:
            found = {
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                )
            }
        return [f"missing table or view: {name}" for name in relations() if name not in found]


def no_store(location: str) -> StoreError:
    return StoreError(f"{location}: no store yet (run `monitor poll` or `monitor run` first)")
