"""Disk per post, measured on real stores: the corpus's real feeds (tests/corpus/rss, atom) parsed, normalised,
matched with the topics of ./config.yaml, signed, and stored into a PostgreSQL store and a SQLite store.

    .venv/bin/python bench/disk_per_post.py                 # each feed's posts stored under 40 source names
    .venv/bin/python bench/disk_per_post.py --copies 100

The same real posts are stored under `--copies` source names (each a distinct post to the store: its own row,
index entries and full-text document) to reach a size where fixed overheads vanish. PostgreSQL's figure is
`pg_total_relation_size` (heap, TOAST, indexes) of the tables that grow with posts (posts, posts_fts, matches,
the near-duplicate signatures and bands) after VACUUM
ANALYZE, per post; SQLite's is the file after VACUUM, per post. Printed with the split per table, and the fetch
log's bytes per request (one `fetches` row per poll here).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from pathlib import Path

from monitor.collectors import SOURCE_MODELS
from monitor.collectors.feedparse import parse_feed
from monitor.config import load_config
from monitor.match import Matcher
from monitor.pipeline import prepare_posts
from monitor.store import Store, StoreURL, open_store
from monitor.types import FetchRecord, FetchStatus, SourceState
from monitor.units import from_iso

ROOT = Path(__file__).resolve().parents[1]
NOW = from_iso("2026-03-01T12:00:00Z")
TABLES = ("posts", "posts_fts", "matches", "post_signatures", "post_bands")  # every table that grows per post


def corpus_items() -> list[tuple[str, list]]:  # type: ignore[type-arg]
    found = []
    for path in sorted([*(ROOT / "tests/corpus/rss").iterdir(), *(ROOT / "tests/corpus/atom").iterdir()]):
        try:
            items = parse_feed(path.read_bytes(), url=f"https://{path.stem}.example/feed").items
        except Exception:  # a malformed sample: not a post
            continue
        if items:
            found.append((path.stem, list(items)))
    return found


def fill(store: Store, feeds: list[tuple[str, list]], copies: int, matcher: Matcher) -> int:  # type: ignore[type-arg]
    total = 0
    for copy in range(copies):
        for stem, items in feeds:
            name = f"{stem}-{copy}"
            posts = prepare_posts(items, name, store=store, matcher=matcher, now=NOW)
            url = f"https://{stem}.example/feed"
            fetch = FetchRecord(name, url, NOW, FetchStatus.OK, 200, bytes=48_000, duration_ms=230, items=len(items))
            total += store.save_poll(
                state=SourceState(name), source_type="feed", source_url=url, posts=posts, fetches=(fetch,), now=NOW
            ).new_posts
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=40)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # tests.pgserver, when run as a script
    from tests import pgserver

    reason = pgserver.skip_reason()
    if reason:
        print(f"skipped: {reason}")
        return 0
    config = load_config(ROOT / "config.yaml", source_types=SOURCE_MODELS)
    matcher = Matcher(config.topics)
    feeds = corpus_items()
    cluster = pgserver.start()
    try:
        database = cluster.new_database()
        with open_store(StoreURL(cluster.url(database))) as store:
            posts = fill(store, feeds, args.copies, matcher)
        cluster.psql("VACUUM ANALYZE", database)
        sizes = {t: int(cluster.psql(f"SELECT pg_total_relation_size('{t}')", database)) for t in TABLES}
        matches = int(cluster.psql("SELECT count(*) FROM matches", database))
        fetches = int(cluster.psql("SELECT count(*) FROM fetches", database))
        fetch_bytes = int(cluster.psql("SELECT pg_total_relation_size('fetches')", database))
    finally:
        cluster.stop()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "monitor.db"
        with open_store(path) as store:
            fill(store, feeds, args.copies, matcher)
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn = sqlite3.connect(path)
        conn.execute("VACUUM")
        conn.close()
        sqlite_bytes = path.stat().st_size
    split = ", ".join(f"{t} {sizes[t] / posts:,.0f}" for t in TABLES)
    print(f"{posts:,} posts ({len(feeds)} real feeds x {args.copies} source names), {matches:,} topic matches")
    print(f"postgresql: {sum(sizes.values()) / posts:,.0f} bytes/post ({split})")
    print(f"sqlite:     {sqlite_bytes / posts:,.0f} bytes/post (the whole file)")
    print(f"postgresql fetch log: {fetch_bytes / fetches:,.0f} bytes/request ({fetches:,} rows of `fetches`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
