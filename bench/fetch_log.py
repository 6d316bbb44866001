"""The hourly upkeep of a daemon that has run for months: pruning the fetch log, and counting the store's posts.

    .venv/bin/python bench/fetch_log.py                        # 5,000,000 fetch rows, 3 rounds
    .venv/bin/python bench/fetch_log.py --rows 20000000 --rounds 2
    .venv/bin/python bench/fetch_log.py --quick                # 100,000 rows, one round (CI: it runs)

Every request a poll makes is a row of `fetches`; the daemon keeps 90 days of them (monitor/fetchlog.py). At
1,000 sources polled a minute apart that is 1.4 million rows a day, 130 million at the end of the 90 days. The
bench builds a store of this version's schema (monitor's own `open_sqlite`) whose fetch log holds `--rows` rows,
spread evenly over the 90 days kept and the hour before them, so that one hour of rows is due, as the hourly prune
finds it. Each round copies it twice:

- B, the previous version: the store without the index on `started_at` (migrations 0011-0012 undone), pruned as
  that version did, one `DELETE ... WHERE started_at < ?` in one transaction, and the heartbeat's count of the
  posts taken as that version took it (`counts()`, which counted the fetch log too, and every minute for the
  metrics);
- A, this version: the same copy opened by this version (its migrations add the indexes: timed, the one-time
  cost of the first open after the upgrade), pruned by `fetchlog.prune` (batches of `fetchlog.BATCH` through
  the index), and `post_count()`.

Printed per round: each side's prune wall time and its longest transaction (the write lock held: every poll of
the daemon waits that long), the rows deleted (the same on both sides), the count's time; then the time of
`monitor serve`'s "Failed requests" view on each side (one request in 100,000 is an error), the migration's time
and the indexes' size per row. Seeded by construction (no randomness); loopback and network free.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import median
from monitor import fetchlog
from monitor.config import HealthConfig
from monitor.serve import QUERIES
from monitor.store.rows import ts
from monitor.store.sqlite import open_sqlite
from monitor.store.sqlite.schema import MIGRATIONS_TABLE

NOW = datetime(2026, 12, 1, tzinfo=UTC)
KEPT = HealthConfig().fetch_log  # the default, 90 days
SOURCES = 1_000
UNDONE = {"0011_fetches_started_at": "fetches_started_at", "0012_fetch_errors": "fetches_errors"}  # step: index


def build(path: Path, rows: int) -> None:
    """This version's store, its fetch log `rows` rows over the 90 days kept and the hour before them."""
    with open_sqlite(path):
        pass
    span = (KEPT + timedelta(hours=1)).total_seconds()
    start = (NOW - KEPT - timedelta(hours=1)).timestamp()
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        """WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
           INSERT INTO fetches (source, url, started_at, status, http_status, bytes, duration_ms, items, new_posts)
           SELECT printf('feed-%04d', i % ?2),
                  printf('http://127.0.0.%d:8080/feeds/feed-%04d.xml', 1 + (i % ?2) % 50, i % ?2),
                  strftime('%Y-%m-%dT%H:%M:%SZ', ?3 + i * ?4 / ?1, 'unixepoch'),
                  CASE WHEN i % 100000 = 7 THEN 'error' WHEN i % 20 = 0 THEN 'ok' ELSE 'not_modified' END,
                  CASE WHEN i % 20 = 0 THEN 200 ELSE 304 END,
                  CASE WHEN i % 20 = 0 THEN 40000 ELSE 0 END, 20 + i % 90,
                  CASE WHEN i % 20 = 0 THEN 20 ELSE 0 END, CASE WHEN i % 40 = 0 THEN 1 ELSE 0 END
           FROM n""",
        (rows, SOURCES, start, span),
    )
    conn.execute("COMMIT")
    conn.close()


def as_previous_version(path: Path) -> None:
    """Undo this version's migrations (0011, 0012): the schema the previous version left."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    for step, index in UNDONE.items():
        conn.execute(f"DROP INDEX {index}")
        conn.execute(f"DELETE FROM [{MIGRATIONS_TABLE}] WHERE name = ?", (step,))
    conn.execute("VACUUM")
    conn.close()


def previous_prune(path: Path) -> tuple[float, int, float, float]:
    """B: (prune wall, which is also the one transaction's hold of the write lock; rows deleted; the heartbeat's
    count; the failed-requests view), as the previous version ran them."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    deleted = conn.execute("DELETE FROM fetches WHERE started_at < ?", (ts(NOW - KEPT),)).rowcount
    conn.execute("COMMIT")
    wall = time.perf_counter() - started
    counted = time.perf_counter()
    for table in ("posts", "matches", "alerts", "fetches"):
        conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    count = time.perf_counter() - counted
    errors = _failed_requests(conn)
    conn.close()
    return wall, deleted, count, errors


def this_prune(path: Path) -> tuple[float, float, int, float, float, float, int]:
    """A: (prune wall, longest batch, rows deleted, count, failed-requests view, migration, index pages) with this
    version's code."""
    pages = _pages(path)
    opened = time.perf_counter()
    store = open_sqlite(path)  # migrates: adds the index
    migration = time.perf_counter() - opened
    index_pages = _pages(path) - pages
    batches: list[float] = []
    prune_fetches = store.prune_fetches

    def timed(before: datetime, limit: int) -> int:
        began = time.perf_counter()
        try:
            return prune_fetches(before, limit)
        finally:
            batches.append(time.perf_counter() - began)

    store.prune_fetches = timed  # type: ignore[method-assign]
    started = time.perf_counter()
    deleted = asyncio.run(fetchlog.prune(store, NOW, kept=KEPT))
    wall = time.perf_counter() - started
    counted = time.perf_counter()
    store.post_count()
    count = time.perf_counter() - counted
    errors = _failed_requests(store.conn)
    store.close()
    return wall, max(batches), deleted, count, errors, migration, index_pages


def _failed_requests(conn: sqlite3.Connection) -> float:
    """Seconds for `monitor serve`'s "Failed requests" view (its canned query, every source)."""
    started = time.perf_counter()
    conn.execute(QUERIES["fetch_errors"][2], {"source": ""}).fetchall()
    return time.perf_counter() - started


def _pages(path: Path) -> int:
    conn = sqlite3.connect(str(path))
    try:
        return int(conn.execute("PRAGMA page_count").fetchone()[0]) - int(
            conn.execute("PRAGMA freelist_count").fetchone()[0]
        )
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000, help="fetch-log rows (default 5,000,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each on fresh copies (default 3)")
    parser.add_argument("--quick", action="store_true", help="100,000 rows, one round (CI)")
    args = parser.parse_args()
    rows, rounds = (100_000, 1) if args.quick else (args.rows, args.rounds)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        work = Path(tmp)
        built = time.perf_counter()
        build(work / "built.db", rows)
        as_previous_version(work / "built.db")
        size = (work / "built.db").stat().st_size
        print(f"fetch log: {rows:,} rows, {size / 2**20:,.0f} MiB without the index (built in "
              f"{time.perf_counter() - built:.1f} s); prune of the rows older than 90 days (one hour's)")  # fmt: skip
        print(f"   {'round':>5} | {'B prune = lock held s':>21} {'B count ms':>10} | {'A prune s':>9} "
              f"{'A longest batch ms':>18} {'A count ms':>10} | {'deleted (B, A)':>15} | "
              f"{'A migration s':>13}")  # fmt: skip
        b_walls, a_walls, a_batches, migrations, b_counts, a_counts = [], [], [], [], [], []
        b_views: list[float] = []
        a_views: list[float] = []
        index_bytes = 0.0
        for round_ in range(rounds):
            for side in ("B", "A"):
                shutil.copy(work / "built.db", work / f"{side}.db")
            b_wall, b_deleted, b_count, b_errors = previous_prune(work / "B.db")
            a_wall, a_batch, a_deleted, a_count, a_errors, migration, index_pages = this_prune(work / "A.db")
            b_views.append(b_errors)
            a_views.append(a_errors)
            index_bytes = index_pages * 4096 / rows
            b_walls.append(b_wall)
            a_walls.append(a_wall)
            a_batches.append(a_batch)
            migrations.append(migration)
            b_counts.append(b_count)
            a_counts.append(a_count)
            print(f"   {round_ + 1:>5} | {b_wall:21.3f} {b_count * 1000:10.1f} | {a_wall:9.3f} "
                  f"{a_batch * 1000:18.1f} {a_count * 1000:10.1f} | {b_deleted:>7,} {a_deleted:>7,} | "
                  f"{migration:13.2f}")  # fmt: skip
        print(f"   medians: prune {median(b_walls):.3f} s -> {median(a_walls):.3f} s "
              f"({median(a_walls) / median(b_walls):.3f}x); write lock held at most {median(b_walls):.3f} s -> "
              f"{median(a_batches) * 1000:.1f} ms; the heartbeat's count {median(b_counts) * 1000:.1f} -> "
              f"{median(a_counts) * 1000:.1f} ms")  # fmt: skip
        print(f"   monitor serve's Failed requests ({rows // 100_000:,} errors in the log): "
              f"{median(b_views) * 1000:.1f} -> {median(a_views) * 1000:.1f} ms")  # fmt: skip
        print(f"   the indexes: {index_bytes:.0f} bytes per fetch row; added once, at the first open after the "
              f"upgrade, in {median(migrations):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
