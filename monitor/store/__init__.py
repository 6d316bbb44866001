"""The store: the `Store` Protocol (store/api.py) and `open_store`, the one place that picks a backend.

The rest of `monitor` depends on the Protocol and the values in `api`, never on a backend's classes or on
sqlite3: a second backend implements the Protocol and `open_store` opens it.
"""

from __future__ import annotations

from pathlib import Path

from monitor.store.api import (
    ANY_POST,
    BACKUP_ADVICE,
    EXPORT_CHUNK,
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    Claim,
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
from monitor.types import AlertKind, AlertRow, AlertStatus, DeliveryRow, Holder, StuckDelivery, WindowPost

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
    "StuckDelivery",
    "WindowPost",
    "open_store",
    "this_process",
]


def open_store(path: Path, *, create: bool = True, readonly: bool = False) -> Store:
    """Open the store at `path`: created and migrated unless `readonly` (reading commands, which then work on a
    store they cannot write). Raises StoreError (or a subclass) with a one-line reason."""
    from monitor.store.sqlite import open_sqlite  # noqa: PLC0415  # the backend is chosen here, and only here

    return open_sqlite(path, create=create, readonly=readonly)
