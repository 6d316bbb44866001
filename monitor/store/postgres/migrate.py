"""`monitor migrate-store`: copy a SQLite store into an empty PostgreSQL store, in batches, counts checked.

One transaction: a failure (or Ctrl-C) leaves the PostgreSQL store as empty as it was. The SQLite file is read
read-only (a daemon may still be writing it: stop it first, or what it writes after the copy starts is not
copied). Every column the two stores share is copied as it is stored (ids, clusters and Message-IDs kept);
the full-text index is written from the posts with the PostgreSQL store's tokens; identity sequences continue
after the highest id copied; `parent_id` links are set once every post is in. Then each table's row count is
compared with the file's, and a difference is an error (the transaction is rolled back).

This is the one module outside monitor.store.sqlite that reads SQLite: the file it moves from.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from monitor.exceptions import StoreError
from monitor.store.postgres import PostgresStore
from monitor.store.postgres.fts import document
from monitor.store.postgres.schema import INDEXING

BATCH = 5_000
# In order of their references. `daemon` is a running process's, and is not copied.
TABLES = (
    "sources",
    "posts",
    "matches",
    "post_signatures",
    "post_bands",
    "fetches",
    "alerts",
    "deliveries",
    "topic_fingerprints",  # which topic definitions the copied matches follow (a file before 0006 has none)
    "robots",  # the sites' robots.txt as last read (a file before 0010 has none)
)
IDENTITIES = ("posts", "fetches", "alerts", "deliveries")
# Tables of the file copied into one PostgreSQL table: a SQLite store writes band rows behind, in levels that
# together are post_bands (monitor/store/sqlite/bands.py; a file before 0009 has post_bands alone).
LEVELS = {"post_bands": ("post_bands", "post_bands_mid", "post_bands_recent")}

Progress = Callable[[str, int, int], None]  # (table, rows copied so far, rows in the file)


@dataclass(frozen=True)
class Copied:
    table: str
    rows: int  # copied, equal to the file's count (checked)


def copy_sqlite(path: Path, target: PostgresStore, progress: Progress | None = None) -> list[Copied]:
    """Copy the SQLite store at `path` into `target`, which must hold no posts, sources or alerts yet."""
    source = _open(path)
    try:
        with target.transaction("copy the SQLite store") as conn:
            for table in ("posts", "sources", "alerts"):
                if _count(conn, table):
                    raise StoreError(f"{target.location}: not empty ({table} has rows): migrate into an empty store")
            done = [_copy_table(source, conn, table, progress) for table in TABLES if _in_file(source, table)]
            _link_parents(source, conn)
            _index(conn, progress)
            for table in IDENTITIES:
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) "
                    f"FROM {table}"
                )
            for copied in done:
                stored = _count(conn, copied.table)
                if stored != copied.rows:
                    raise StoreError(f"{copied.table}: {copied.rows} rows in {path} but {stored} copied: nothing kept")
        return done
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot read the SQLite store: {exc}") from exc
    finally:
        source.close()


def _open(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise StoreError(f"{path}: no SQLite store here to copy")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("SELECT 1 FROM posts LIMIT 1")
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: not a monitor store to copy: {exc}") from exc
    return conn


def _in_file(source: sqlite3.Connection, table: str) -> bool:
    row = source.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return row is not None


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def _columns(source: sqlite3.Connection, conn: psycopg.Connection[Any], table: str) -> list[str]:
    """The columns both stores have (a column one version added and the other lacks is left to its default)."""
    theirs = [r[1] for r in source.execute(f"PRAGMA table_info({table})")]
    ours = {
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s",
            (table,),
        )
    }
    return [c for c in theirs if c in ours and not (table == "posts" and c == "parent_id")]


def _rows(source: sqlite3.Connection, sql: str) -> Iterator[list[tuple[Any, ...]]]:
    cursor = source.execute(sql)
    while batch := cursor.fetchmany(BATCH):
        yield batch


def _copy_table(
    source: sqlite3.Connection, conn: psycopg.Connection[Any], table: str, progress: Progress | None
) -> Copied:
    columns = _columns(source, conn, table)
    parts = [part for part in LEVELS.get(table, (table,)) if _in_file(source, part)]
    total = sum(source.execute(f"SELECT count(*) FROM {part}").fetchone()[0] for part in parts)
    names = ", ".join(columns)
    done = 0
    with conn.cursor() as cursor:
        for batch in _rows(source, " UNION ALL ".join(f"SELECT {names} FROM {part}" for part in parts)):
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
            done += len(batch)
            if progress:
                progress(table, done, total)
    return Copied(table, done)


def _link_parents(source: sqlite3.Connection, conn: psycopg.Connection[Any]) -> None:
    """Comments' parent_id, once every post is in (a comment may have been stored before its article)."""
    conn.execute("CREATE TEMPORARY TABLE migrate_parents (id BIGINT, parent_id BIGINT) ON COMMIT DROP")
    with conn.cursor() as cursor:
        for batch in _rows(source, "SELECT id, parent_id FROM posts WHERE parent_id IS NOT NULL"):
            with cursor.copy("COPY migrate_parents (id, parent_id) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
    conn.execute("UPDATE posts p SET parent_id = m.parent_id FROM migrate_parents m WHERE p.id = m.id")


def _index(conn: psycopg.Connection[Any], progress: Progress | None) -> None:
    """The full-text rows of every copied post, with this store's tokens."""
    conn.execute(f"SET LOCAL {INDEXING} = 'on'")
    total = _count(conn, "posts")
    done = 0
    last = 0
    while True:
        rows = conn.execute(
            "SELECT id, title, text FROM posts WHERE id > %s ORDER BY id LIMIT %s", (last, BATCH)
        ).fetchall()
        if not rows:
            break
        with conn.cursor() as cursor, cursor.copy("COPY posts_fts (post_id, document) FROM STDIN") as copy:
            for post_id, title, text in rows:
                copy.write_row((post_id, document(title or "", text or "")))
        last = rows[-1][0]
        done += len(rows)
        if progress:
            progress("posts_fts", done, total)
