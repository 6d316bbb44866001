"""Export benchmark: `monitor export` (CSV and JSONL) over a generated store of 200,000 posts.

    .venv/bin/python bench/export_bench.py [--posts 200000] [--keep DIR]

Builds the store fast (executemany into the real schema, opened with `monitor.store.sqlite.open_sqlite`; the FTS
and near-duplicate indexes are left empty: the export does not read them), then runs `export_posts` to a
file for each format, every post (`--all`) and matching posts only. Prints rows/s, the tracemalloc peak
(Python objects alive at once) and max RSS, each export in a fresh child process so one run's peak does
not hide the next one's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.export import export_posts
from monitor.store import PostFilter, open_store
from monitor.store.sqlite import open_sqlite

START = datetime(2025, 3, 1, tzinfo=UTC)
VOCABULARY = (
    "separatism separatist council declaration region autonomy rally deputies session Petropavlovsk "
    "сепаратизм сепаратисты Народный совет декларация область автономия митинг депутаты "
    "Халық кеңесі сепаратизм облыс мәлімдеме жиналыс қала үкімет"
)
WORDS = VOCABULARY.split()
BATCH = 10_000


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def build(path: Path, count: int) -> None:
    """`count` posts over a year from 20 sources, 60% matching one topic and 10% two, some with quotes,
    line breaks and collector extras."""
    rng = random.Random(7)
    store = open_sqlite(path)  # the concrete store: the bench writes its rows straight into the schema
    conn = store.conn
    conn.execute("PRAGMA synchronous = OFF")
    step = 365 * 86400 / count
    with store.transaction():
        for lo in range(0, count, BATCH):
            posts, matches = [], []
            for i in range(lo, min(lo + BATCH, count)):
                when = iso(START + timedelta(seconds=int(i * step)))
                text = " ".join(rng.choices(WORDS, k=rng.randint(40, 120)))
                if i % 7 == 0:
                    text += ' — "цитата", a line\nbreak; and a comma, too'
                extra = json.dumps({"views": str(rng.randint(1, 9999))}) if i % 3 == 0 else None
                posts.append(
                    (
                        i + 1,
                        f"site{i % 20}",
                        f"key-{i}",
                        f"https://site{i % 20}.example/{i}",
                        f"Title {i} Халық кеңесі",
                        text,
                        "Author",
                        when,
                        when,
                        f"h{i}",
                        i + 1,
                        extra,
                    )
                )
                roll = rng.random()
                if roll < 0.6:
                    matches.append((i + 1, "separatism", "сепаратист*"))
                if roll < 0.1:
                    matches.append((i + 1, "peoples-council", "Халық кеңес*"))
            conn.executemany(
                """INSERT INTO posts (id, source, key, url, title, text, author, published_at, first_seen_at,
                                      content_hash, cluster_id, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                posts,
            )
            conn.executemany("INSERT INTO matches (post_id, topic, term) VALUES (?, ?, ?)", matches)
    store.close()


def run_export(path: Path, fmt: str, matching_only: bool, out: Path, traced: bool, queue: Any) -> None:
    """One export in this (fresh) process: (rows, seconds, tracemalloc peak or 0, max RSS MiB, output bytes)."""
    if traced:  # tracemalloc slows Python down ~3x: the traced run gives memory only, the other one speed
        tracemalloc.start()
    store = open_store(path)
    began = time.perf_counter()
    count = export_posts(
        store,
        fmt=fmt,
        output=out,
        where=PostFilter(matching_only=matching_only),
        bom=False,
    )
    seconds = time.perf_counter() - began
    peak = tracemalloc.get_traced_memory()[1] if traced else 0
    store.close()
    queue.put((count, seconds, peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, out.stat().st_size))


def in_child(context: multiprocessing.context.SpawnContext, *args: object) -> tuple[int, float, int, float, int]:
    queue = context.Queue()
    child = context.Process(target=run_export, args=(*args, queue))
    child.start()
    result: tuple[int, float, int, float, int] = queue.get(timeout=600)
    child.join(60)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--keep", type=Path, help="build the store in this directory and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="export-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "bench.db"
    if not path.exists():
        began = time.perf_counter()
        build(path, args.posts)
        print(f"built {args.posts:,} posts in {time.perf_counter() - began:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
    context = multiprocessing.get_context("spawn")  # a fresh process per run: honest max RSS
    print(f"{'export':<15} {'rows':>9} {'s':>6} {'rows/s':>8} {'MB out':>7} {'max RSS':>8} {'tracemalloc peak':>17}")
    for fmt in ("csv", "jsonl"):
        for matching_only in (False, True):
            out = work / f"out.{fmt}"
            count, seconds, _, rss, size = in_child(context, path, fmt, matching_only, out, False)
            peak = in_child(context, path, fmt, matching_only, out, True)[2]
            label = f"{fmt} {'matching' if matching_only else '--all'}"
            print(
                f"{label:<15} {count:>9,} {seconds:>6.2f} {count / seconds:>8,.0f} {size / 1e6:>7.0f} "
                f"{rss:>4.0f} MiB {peak / 1024:>13,.0f} KiB"
            )
            out.unlink()
    if args.keep is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
