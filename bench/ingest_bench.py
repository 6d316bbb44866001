"""Ingest benchmark: parse -> normalise -> match (1,000 terms) -> sign -> store with FTS, on generated feeds.

    .venv/bin/python bench/ingest_bench.py [--items 50000] [--per-feed 100] [--long]

Runs the pipeline's own stages (`workers.Workers.parse` and `.prepare`, `store.save_poll`) twice in this
process: inline (one core, the baseline) and with the worker process (parsing and matching beside the
SQLite writes). Prints posts/s for each, per-stage time of the inline run, bare SQLite inserts for scale,
and peak memory (max RSS of this process and, separately, of the worker).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import corpus_gen
from bench.corpus_gen import NOW, feed, terms
from monitor.collectors.feedparse import parse_feed
from monitor.pipeline import prepare_posts
from monitor.prepare import unique_items
from monitor.store import Store, open_store
from monitor.types import SourceState
from monitor.workers import Workers


def peak_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def save(store: Store, index: int, posts: list) -> int:  # type: ignore[type-arg]
    return store.save_poll(
        state=SourceState(name=f"site{index}"), source_type="feed", source_url=None, posts=posts, fetches=(), now=NOW
    ).new_posts


def inline_run(path: Path, count: int, per_feed: int, workers: Workers) -> tuple[int, dict[str, float], float]:
    store = open_store(path)
    stage = {"parse": 0.0, "prepare": 0.0, "store": 0.0}
    total = 0
    for index in range(count):
        body = feed(index, per_feed, NOW)
        t = time.perf_counter()
        items = parse_feed(body, url=f"https://site{index}.example/rss").items
        stage["parse"] += time.perf_counter() - t
        t = time.perf_counter()
        posts = prepare_posts(items, f"site{index}", store=store, matcher=workers.matcher, now=NOW)
        stage["prepare"] += time.perf_counter() - t
        t = time.perf_counter()
        total += save(store, index, posts)
        stage["store"] += time.perf_counter() - t
    store.close()
    return total, stage, sum(stage.values())


async def worker_run(path: Path, count: int, per_feed: int, workers: Workers) -> tuple[int, float]:
    """Feeds flow through the worker (parse, prepare) while the main process stores the previous ones."""
    store = open_store(path)
    files = path.parent / "feeds"  # generated up front and read back as needed: not part of the timing
    files.mkdir(exist_ok=True)
    for i in range(count):
        (files / f"{i}.xml").write_bytes(feed(i, per_feed, NOW))
    total = 0
    in_flight = asyncio.Semaphore(3)

    async def one(index: int) -> None:
        nonlocal total
        async with in_flight:
            body = (files / f"{index}.xml").read_bytes()
            parsed = await workers.parse(len(body), parse_feed, body, url=f"https://site{index}.example/rss")
            items, keys = unique_items(parsed.items)
            known = {k: (v.first_seen_at, v.content_hash) for k, v in store.known_posts(f"site{index}", keys).items()}
            posts = await workers.prepare(items, f"site{index}", known, NOW)
            total += save(store, index, posts)

    await workers.prepare(list(parse_feed(feed(0, per_feed, NOW), url="https://warm.example/").items), "warm", {}, NOW)
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    store.close()
    return total, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--per-feed", type=int, default=100)
    parser.add_argument("--long", action="store_true", help="items four times longer (about 2 KB)")
    args = parser.parse_args()
    if args.long:
        corpus_gen.LONG = 4
    count = args.items // args.per_feed
    sample = parse_feed(feed(0, args.per_feed, NOW), url="https://site0.example/rss").items
    sizes = [len(i.title) + len(i.text) for i in sample]
    print(
        f"corpus: {count} feeds x {args.per_feed} items = {count * args.per_feed:,} items; title + text "
        f"{sum(sizes) / len(sizes):.0f} characters on average; 1,000 terms in 50 topics"
    )
    workers = Workers(terms(1000), processes=1)
    with tempfile.TemporaryDirectory() as tmp:
        baseline = bare_inserts(Path(tmp) / "bare.db", count, args.per_feed)
        total, stage, inline_s = inline_run(Path(tmp) / "inline.db", count, args.per_feed, workers)
        inline_peak = peak_mib()
        print(f"bare SQLite inserts, no matching/clustering/FTS: {baseline:,.0f} posts/s")
        print(f"inline (one core): {total:,} posts in {inline_s:.2f} s = {total / inline_s:,.0f} posts/s")
        for name, seconds in stage.items():
            print(f"  stage {name:<8} {seconds:6.2f} s  {total / seconds:>9,.0f} posts/s")
        print(f"  peak memory of this process so far: {inline_peak:.0f} MiB")
        total2, worker_s = asyncio.run(worker_run(Path(tmp) / "workers.db", count, args.per_feed, workers))
        db = sqlite3.connect(str(Path(tmp) / "workers.db"))
        matches, clusters = db.execute(
            "SELECT (SELECT count(*) FROM matches), (SELECT count(DISTINCT cluster_id) FROM posts)"
        ).fetchone()
        db.close()
        worker_peak = worker_peak_mib(workers)
        workers.close()
        print(
            f"with the worker process: {total2:,} posts in {worker_s:.2f} s = {total2 / worker_s:,.0f} posts/s "
            f"({inline_s / worker_s:.2f}x the inline run); {matches:,} topic matches, {clusters:,} clusters"
        )
    print(f"peak memory: main process {peak_mib():.0f} MiB, worker process {worker_peak:.0f} MiB")


def worker_peak_mib(workers: Workers) -> float:
    """VmHWM (peak resident set) of the worker processes, read from /proc while they still run."""
    peak = 0.0
    for pid in workers.pids:
        status = Path(f"/proc/{pid}/status")
        for line in status.read_text().splitlines() if status.exists() else []:
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) / 1024)
    return peak


def bare_inserts(path: Path, count: int, per_feed: int) -> float:
    """Posts/s for plain INSERTs of the parsed items, one transaction per feed: the floor of any store."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, source TEXT, key TEXT, title TEXT, text TEXT, "
        "UNIQUE (source, key))"
    )
    rows = 0
    elapsed = 0.0
    for index in range(count):
        items = parse_feed(feed(index, per_feed, NOW), url=f"https://site{index}.example/rss").items
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO posts (source, key, title, text) VALUES (?, ?, ?, ?)",
            [(f"site{index}", i.guid, i.title, i.text) for i in items],
        )
        conn.execute("COMMIT")
        elapsed += time.perf_counter() - started
        rows += len(items)
    conn.close()
    return rows / elapsed


if __name__ == "__main__":
    main()
