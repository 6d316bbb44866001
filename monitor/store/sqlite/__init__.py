"""The SQLite backend of the `Store` Protocol: one connection, one mixin per domain (as reader's storage is).

WAL mode (analysts read while the daemon writes), a busy timeout, migrations on open. `readonly` opens the
file with mode=ro, so reading commands work on a store they cannot write (a read-only file, directory or
disk); a store whose directory cannot hold WAL files is read as immutable.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from monitor.exceptions import StoreError, StoreReadOnly
from monitor.store import owner
from monitor.store.sqlite import schema
from monitor.store.sqlite.base import StoreBase
from monitor.store.sqlite.checkpoint import Checkpointer
from monitor.store.sqlite.errors import mapped, store_error
from monitor.store.sqlite.lock import LockMixin
from monitor.store.sqlite.ops import OpsMixin
from monitor.store.sqlite.outbox import GONE_FUNCTION, OutboxMixin
from monitor.store.sqlite.posts import PostsMixin
from monitor.store.sqlite.queries import QueriesMixin
from monitor.store.sqlite.sources import SourcesMixin

BUSY_TIMEOUT_S = 30.0
CACHE_KIB = 8_000  # SQLite page cache per connection
ONE_SHOT_CACHE_KIB = 2_000  # SQLite's own default: `monitor poll` runs once and exits, its peak memory counts more


class SqliteStore(SourcesMixin, PostsMixin, QueriesMixin, OutboxMixin, LockMixin, OpsMixin, StoreBase):
    """The store in one SQLite file. Split into per-domain mixins: add a method to the one it belongs to."""

    def __enter__(self) -> SqliteStore:
        return self


def open_sqlite(path: Path, *, create: bool = True, readonly: bool = False, one_shot: bool = False) -> SqliteStore:
    """Open (and create, migrate) the store in `path`; `one_shot` (a process that writes once and exits): with
    SQLite's default page cache instead of ours."""
    if not path.exists() and (readonly or not create):
        raise StoreError(f"{path}: no store yet (run `monitor poll` or `monitor run` first)")
    if readonly:
        return _open_readonly(path)
    if path.exists() and not _writable(path):
        raise StoreReadOnly(
            f"{path}: the store is read-only here (the file or its directory cannot be written): reading commands "
            "(search, stats, export, status, alerts) work; polling needs write access"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the store's directory: {exc.strerror}") from exc
    with mapped(path, "open the store"):
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    store = SqliteStore(conn, path)
    try:
        _setup(conn, path, ONE_SHOT_CACHE_KIB if one_shot else CACHE_KIB)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: a killed process loses no committed transaction
        store.checkpointer = Checkpointer(conn, path)  # checkpoints off the committing thread (checkpoint.py)
        conn.execute("PRAGMA journal_size_limit = 67108864")
        if schema.pending(conn):
            with store.transaction("migrate the store"):  # BEGIN IMMEDIATE: one process migrates, others wait
                schema.apply(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise store_error(exc, path, "open the store") from exc
    except StoreError:
        conn.close()
        raise
    return store


def _open_readonly(path: Path) -> SqliteStore:
    """Open for reading only: nothing is written, not even a migration (a store of an older version is read as it
    is; the next writer migrates it)."""
    uri = path.resolve().as_uri()
    last: sqlite3.Error | None = None
    # mode=ro reads a WAL store while a daemon writes it; with no -wal/-shm files and a directory that cannot hold
    # them (a read-only disk), nobody can be writing, and the file is read as immutable.
    for query in ("mode=ro", "mode=ro&immutable=1"):
        try:
            conn = sqlite3.connect(f"{uri}?{query}", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            last = exc
            continue
        try:
            _setup(conn, path)
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'posts'").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            last = exc
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF in (11, 26):  # damaged: immutable will not help
                break
            continue
        if found is None:
            conn.close()
            raise StoreError(f"{path}: not a monitor store (no posts table)")
        return SqliteStore(conn, path, readonly=True)
    assert last is not None
    raise store_error(last, path, "open the store")


def _setup(conn: sqlite3.Connection, path: Path, cache_kib: int = CACHE_KIB) -> None:
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
    conn.create_function(GONE_FUNCTION, 1, owner.gone)


def _writable(path: Path) -> bool:
    if not os.access(path.parent, os.W_OK):
        return False
    if path.exists() and not os.access(path, os.W_OK):
        return False
    return not _on_readonly_mount(path)


def _on_readonly_mount(path: Path) -> bool:
    """os.access ignores a read-only mount for root; statvfs does not."""
    try:
        return bool(os.statvfs(path.parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False
