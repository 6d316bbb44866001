"""Where `psycopg.Error` becomes `StoreError`: one table from PostgreSQL's SQLSTATE classes to our errors and advice.

Every public method of the PostgreSQL store runs inside `mapped` (or is decorated with `wrapped`), so no
psycopg exception leaves the package. QueryError is never made here: the query language is parsed (and its
syntax errors raised) before any SQL runs (fts.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg

from monitor.exceptions import StoreBusy, StoreCorrupt, StoreError, StoreFull, StoreReadOnly
from monitor.store.api import BACKUP_ADVICE
from monitor.store.wrapping import wrapped

__all__ = ["mapped", "store_error", "wrapped"]

_BUSY = "the store stayed locked by another writer; try again, or look for a stuck process (pg_stat_activity)"
_READONLY = "the store is read-only here: reading commands work, polling needs a role that may write"
# SQLSTATE (or its two-letter class) -> (error, advice). The most specific code wins.
_TABLE: dict[str, tuple[type[StoreError], str]] = {
    "40001": (StoreBusy, _BUSY),  # serialization_failure
    "40P01": (StoreBusy, _BUSY),  # deadlock_detected
    "55P03": (StoreBusy, _BUSY),  # lock_not_available (lock_timeout)
    "57014": (StoreBusy, _BUSY),  # query_canceled (statement_timeout)
    "25006": (StoreReadOnly, _READONLY),  # read_only_sql_transaction
    "42501": (StoreReadOnly, _READONLY),  # insufficient_privilege
    "53100": (StoreFull, "the server's disk is full: free some space (nothing committed is lost)"),  # disk_full
    "53": (StoreFull, "the server is out of resources (disk, memory or connections): see its log"),
    "XX001": (StoreCorrupt, f"the store is damaged: {BACKUP_ADVICE}"),  # data_corrupted
    "XX002": (StoreCorrupt, f"an index of the store is damaged: REINDEX it, or {BACKUP_ADVICE}"),  # index_corrupted
    "42P01": (StoreCorrupt, "not a monitor store, or one a newer version changed (a table is missing)"),
    "08": (StoreError, "the connection to the server failed: check that it runs and can be reached"),
    "28": (StoreError, "the server refused the login: check the user, and MONITOR_STORE_PASSWORD or ~/.pgpass"),
    "3D": (StoreError, "no such database on the server: create it (createdb) or fix the URL"),
    "57P": (StoreError, "the server is shutting down or restarting: try again"),
}


def _lookup(sqlstate: str | None) -> tuple[type[StoreError], str]:
    if sqlstate:
        for key in (sqlstate, sqlstate[:3], sqlstate[:2]):
            if key in _TABLE:
                return _TABLE[key]
    return StoreError, ""


def store_error(exc: psycopg.Error, location: str, doing: str) -> StoreError:
    """The StoreError for `exc`, naming the store (its URL without password), what was being done, what to do."""
    sqlstate = exc.sqlstate
    if sqlstate is None and isinstance(exc, psycopg.OperationalError):
        sqlstate = "08000"  # no SQLSTATE: the connection itself failed
    text = " ".join(str(exc).split()) or type(exc).__name__
    if sqlstate == "08000" and "password" in text:  # libpq refused before asking the server: no password given
        sqlstate = "28P01"
    kind, advice = _lookup(sqlstate)
    return kind(f"{location}: cannot {doing}: {text}" + (f"; {advice}" if advice else ""))


@contextlib.contextmanager
def mapped(location: str, doing: str) -> Iterator[None]:
    """Turn any psycopg.Error raised inside into the mapped StoreError (`raise ... from`)."""
    try:
        yield
    except psycopg.Error as exc:
        raise store_error(exc, location, doing) from exc
