"""Where `sqlite3.Error` becomes `StoreError`: one table from SQLite's result codes to our errors and advice.

Every public method of the SQLite store runs inside `mapped` (or is decorated with `wrapped`), so no
`sqlite3` exception leaves the package. A full-text query that FTS5 cannot parse is the only error that
becomes `QueryError`, and only where a query is searched (`fts_query=True`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from monitor.exceptions import (
    QueryError,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreReadOnly,
)
from monitor.store.api import BACKUP_ADVICE
from monitor.store.wrapping import wrapped

__all__ = ["mapped", "store_error", "wrapped"]

# SQLite's primary result codes (the low byte of an extended code), and what each means to a user.
_TABLE: dict[int, tuple[type[StoreError], str]] = {
    5: (StoreBusy, "the store stayed locked by another writer; try again, or look for a stuck process"),  # BUSY
    6: (StoreBusy, "the store stayed locked by another writer; try again, or look for a stuck process"),  # LOCKED
    8: (StoreReadOnly, "the store is read-only here: reading commands work, polling needs write access"),  # READONLY
    10: (StoreError, "a disk I/O error: check the disk and its free space"),  # IOERR
    11: (StoreCorrupt, f"the store is damaged: {BACKUP_ADVICE}"),  # CORRUPT
    13: (StoreFull, "the disk is full: free some space (nothing committed is lost)"),  # FULL
    14: (StoreError, "cannot open the file: check that its directory exists and can be read"),  # CANTOPEN
    26: (StoreCorrupt, f"not a usable SQLite store (file is not a database): {BACKUP_ADVICE}"),  # NOTADB
}
_SQLITE_ERROR = 1
# What FTS5 says about a MATCH expression it cannot parse (all under the generic SQLITE_ERROR code).
_FTS5_SYNTAX = ("fts5:", "unterminated string", "no such column", "unknown special query", "expected integer")


def store_error(exc: sqlite3.Error, path: Path, doing: str, *, fts_query: bool = False) -> StoreError:
    """The StoreError for `exc`, naming the file, what was being done and what to do about it."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc)
    if fts_query and primary == _SQLITE_ERROR and text.startswith(_FTS5_SYNTAX):
        return QueryError(f"bad query: {text}")
    if primary is None and "file is not a database" in text:
        primary = 26
    kind, advice = _TABLE.get(primary or -1, (StoreError, ""))
    if primary == 8 or "readonly database" in text:
        kind, advice = _TABLE[8]
    return kind(f"{path}: cannot {doing}: {text}" + (f"; {advice}" if advice else ""))


@contextlib.contextmanager
def mapped(path: Path, doing: str, *, fts_query: bool = False) -> Iterator[None]:
    """Turn any sqlite3.Error raised inside into the mapped StoreError (`raise ... from`)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise store_error(exc, path, doing, fts_query=fts_query) from exc
