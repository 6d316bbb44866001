"""The PostgreSQL backend of the `Store` Protocol: psycopg 3, a connection pool, one mixin per domain.

`store: postgresql://user@host/db` in the config selects it (`open_store`). The password comes from
MONITOR_STORE_PASSWORD or libpq's own environment (PGPASSWORD, ~/.pgpass, PGSERVICE), never from the file.
Migrations run on open, under an advisory lock so that one process migrates while the others wait.
`readonly` makes every transaction READ ONLY and migrates nothing. Same tables, columns, views and meaning
as the SQLite store (schema.py says what differs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from monitor.exceptions import StoreError
from monitor.store.postgres import schema
from monitor.store.postgres.base import StoreBase, no_store
from monitor.store.postgres.cluster import ClusterMixin
from monitor.store.postgres.errors import mapped
from monitor.store.postgres.lock import LOCK_KEYS, LockMixin
from monitor.store.postgres.ops import OpsMixin
from monitor.store.postgres.outbox import OutboxMixin
from monitor.store.postgres.posts import PostsMixin
from monitor.store.postgres.queries import QueriesMixin
from monitor.store.postgres.sources import SourcesMixin

PASSWORD_ENV = "MONITOR_STORE_PASSWORD"
POOL_SIZE = 4  # connections per process: a poll's writes, the outbox, a reader, a stream of rows
LOCK_TIMEOUT = "30s"  # as SQLite's busy timeout: a writer waits this long for a lock, then StoreBusy
CONNECT_TIMEOUT_S = 10


class PostgresStore(SourcesMixin, PostsMixin, QueriesMixin, OutboxMixin, LockMixin, OpsMixin, ClusterMixin, StoreBase):
    """The store in a PostgreSQL database. Split into per-domain mixins: add a method to the one it belongs to."""

    def __enter__(self) -> PostgresStore:
        return self


def redacted(url: str) -> str:
    """The URL without its password (for messages and `location`)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def connection_options(*, readonly: bool, environ: Mapping[str, str]) -> dict[str, Any]:
    """What every connection is opened with (besides the URL)."""
    # JIT compiles a poll's short queries for longer than they run (measured: a candidates query 528 ms, 30 without).
    options = f"-c lock_timeout={LOCK_TIMEOUT} -c jit=off" + (
        " -c default_transaction_read_only=on" if readonly else ""
    )
    kwargs: dict[str, Any] = {
        "application_name": "monitor",
        "connect_timeout": CONNECT_TIMEOUT_S,
        "options": options,
    }
    if environ.get(PASSWORD_ENV):
        kwargs["password"] = environ[PASSWORD_ENV]
    return kwargs


def open_postgres(url: str, *, create: bool = True, readonly: bool = False) -> PostgresStore:
    """Open (and unless `readonly`, migrate) the store in the database at `url`."""
    location = redacted(url)
    kwargs = connection_options(readonly=readonly, environ=os.environ)

    def connect(**extra: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(url, **{**kwargs, **extra})

    with mapped(location, "open the store"):
        conn = connect(autocommit=True)
    try:
        with mapped(location, "open the store"):
            _prepare(conn, location, create=create, readonly=readonly)
    finally:
        conn.close()
    pool = ConnectionPool(
        url,
        kwargs=kwargs,
        min_size=1,
        max_size=POOL_SIZE,
        open=False,
        name="monitor",
        check=ConnectionPool.check_connection,
    )
    with mapped(location, "open the store"):
        pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    return PostgresStore(pool, connect, location, readonly=readonly)


def _prepare(conn: psycopg.Connection[Any], location: str, *, create: bool, readonly: bool) -> None:
    """Check that the database holds a store (or may get one), and apply the pending migrations."""
    applied = _applied(conn)
    if applied is None and (readonly or not create):
        if _has_table(conn, "posts"):
            raise StoreError(f"{location}: not a monitor store (a posts table, but no {schema.MIGRATIONS_TABLE})")
        raise no_store(location)
    if readonly or not schema.pending(applied or set()):
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (LOCK_KEYS[0],))  # one process migrates
        conn.execute(schema.CREATE_MIGRATIONS)
        for name in schema.pending(_applied(conn) or set()):
            for statement in schema.statements(name):
                conn.execute(statement)
            conn.execute(*schema.record(name))


def _has_table(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
    return row is not None and row[0] is not None


def _applied(conn: psycopg.Connection[Any]) -> set[str] | None:
    """The migrations applied, or None when the database has no migrations table."""
    if not _has_table(conn, schema.MIGRATIONS_TABLE):
        return None
    rows = conn.execute(
        f"SELECT name FROM {schema.MIGRATIONS_TABLE} WHERE migration_set = %s",
        (schema.MIGRATION_SET,),
    ).fetchall()
    return {r[0] for r in rows}
