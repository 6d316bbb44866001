"""The store: the `Store` Protocol (store/api.py) and `open_store`, the one place that picks a backend.

The rest of `monitor` depends on the Protocol and the values in `api`, never on a backend's classes or on
sqlite3: a second backend implements the Protocol and `open_store` opens it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec

from monitor.exceptions import StoreError
from monitor.store.api import (
    ANY_POST,
    BACKUP_ADVICE,
    EXPORT_CHUNK,
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    Claim,
    ClusterStore,
    DaemonRow,
    FailureRun,
    KnownPost,
    PostFilter,
    PostRow,
    RematchBatch,
    SaveResult,
    SearchRow,
    SourceRow,
    StatsRow,
    Store,
    StoreSummary,
)
from monitor.store.owner import this_process
from monitor.types import AlertKind, AlertRow, AlertStatus, DeliveryRow, Holder, StoreURL, StuckDelivery, WindowPost

__all__ = [
    "ANY_POST",
    "BACKUP_ADVICE",
    "EXPORT_CHUNK",
    "HIGHLIGHT_END",
    "HIGHLIGHT_START",
    "AlertKind",
    "AlertRow",
    "AlertStatus",
    "Claim",
    "ClusterStore",
    "Copied",
    "DaemonRow",
    "DeliveryRow",
    "FailureRun",
    "Holder",
    "KnownPost",
    "PostFilter",
    "PostRow",
    "RematchBatch",
    "SaveResult",
    "SearchRow",
    "SourceRow",
    "StatsRow",
    "Store",
    "StoreSummary",
    "StoreURL",
    "StuckDelivery",
    "WindowPost",
    "cluster_store",
    "copy_store",
    "open_store",
    "store_exists",
    "this_process",
]


class Copied(msgspec.Struct, frozen=True):
    """One table copied by `copy_store`."""

    table: str
    rows: int  # copied, equal to the source's count (checked)


def open_store(where: Path | StoreURL, *, create: bool = True, readonly: bool = False, one_shot: bool = False) -> Store:
    """Open the store at `where` (a SQLite file, or a PostgreSQL database by URL): created and migrated unless
    `readonly` (reading commands, which then work on a store they cannot write). `one_shot`: the process writes
    once and exits (`monitor poll`): a SQLite store gets a smaller page cache. Raises StoreError (or a
    subclass) with a one-line reason."""
    # The backend is chosen here, and only here.
    if isinstance(where, StoreURL):
        try:
            from monitor.store.postgres import open_postgres  # noqa: PLC0415  # only for a PostgreSQL store
        except ImportError as exc:
            raise StoreError(
                f"{where}: a PostgreSQL store needs psycopg: pip install 'monitor[postgres]' ({exc})"
            ) from exc
        return open_postgres(where.url, create=create, readonly=readonly)
    from monitor.store.sqlite import open_sqlite  # noqa: PLC0415

    return open_sqlite(where, create=create, readonly=readonly, one_shot=one_shot)


def store_exists(where: Path | StoreURL) -> bool | None:
    """Whether a SQLite store's file exists yet; None for a server's store (opening it tells)."""
    return where.exists() if isinstance(where, Path) else None


def copy_store(source: Path, target: StoreURL, progress: Callable[[str, int, int], None] | None = None) -> list[Copied]:
    """Copy the SQLite store `source` into the empty PostgreSQL store `target` (created and migrated), counts checked:
    (table, rows) per table. `progress(table, done, total)` is called after each batch. Raises StoreError."""
    from monitor.store.postgres import PostgresStore  # noqa: PLC0415  # only for a PostgreSQL store
    from monitor.store.postgres.migrate import copy_sqlite  # noqa: PLC0415

    with open_store(target) as store:
        assert isinstance(store, PostgresStore)
        return [Copied(c.table, c.rows) for c in copy_sqlite(source, store, progress)]


def cluster_store(store: Store) -> ClusterStore | None:
    """The store as a scheduler and workers use it (a PostgreSQL store), or None (a SQLite store: one machine)."""
    try:
        from monitor.store.postgres import PostgresStore  # noqa: PLC0415  # only for a PostgreSQL store
    except ImportError:
        return None
    return store if isinstance(store, PostgresStore) else None
