"""Keeping the full-text index in few segments, so that a search's lookups stay cheap as the store grows.

FTS5 writes each transaction's rows as a new segment and merges segments of the same level four at a time
(`automerge`), which leaves up to three large segments per level: a store of a million posts holds a dozen
large ones, and every lookup of a term (a newest-first search tests each post it walks against the index)
seeks in each of them. Merged into one segment, the same lookups cost a quarter to a sixth (measured at 1M
posts: 80 lookups 1.8 -> 0.5 ms, 400 lookups 5.6 -> 0.8 ms).

So a poll merges the whole index (FTS5's `optimize`) once the segments beside the largest hold a quarter of
its size: the index then grows by a quarter between merges, so each post is rewritten about five times over
the life of the store whatever its size (7-12 s at a million posts, once per 250,000 new posts). The merge
holds the write lock: past `MAX_MERGED_POSTS` (some 15-25 s of merging on the bench's machine) another writer
would wait longer than the 30 s busy timeout, so a larger index is left to FTS5's own merging. FTS5's
incremental `merge` with a negative page count was tried: it holds the other merges back while it works and
left 134 segments after 60 polls.

Below `MIN_MERGED_POSTS` the index is left to FTS5's own merging too. Merging it whole as it grew from empty
rewrote it every few polls (some 20 times in a first poll of 10,000 posts), while a small store's dozen segments
cost its searches little: `bench/store_scale.py --sizes 10k`, whose store is built by polls, measured 8.0 ms
newest first and 8.9 ms ranked (query time, worst word). Without those merges `bench/ingest_bench.py --items
10000 --per-feed 50 --templates` stores 7,765-7,768 posts per CPU second, against 7,062-7,379 with them.
"""

from __future__ import annotations

import sqlite3

OTHERS_SHARE = 0.25  # merge all once the segments beside the largest hold this share of its size
MAX_MERGED_POSTS = 2_000_000  # past this many posts (by id) the index is no longer merged whole
MIN_MERGED_POSTS = 100_000  # below this many posts (by id) the index is not merged by polls (FTS5's own merging)


def segment_sizes(conn: sqlite3.Connection) -> list[int]:
    """The index's segments, each as its count of leaf pages that start a term (about 2 ms at 1M posts)."""
    return [n for (n,) in conn.execute("SELECT count(*) FROM posts_fts_idx GROUP BY segid")]


def compact_if_due(conn: sqlite3.Connection) -> bool:
    """Merge the index into one segment when it is due (see above); inside the caller's transaction."""
    if _posts(conn) < MIN_MERGED_POSTS:
        return False
    sizes = segment_sizes(conn)
    if len(sizes) < 2 or sum(sizes) - max(sizes) <= OTHERS_SHARE * max(sizes):
        return False
    return compact(conn)


def compact(conn: sqlite3.Connection) -> bool:
    """Merge the index into one segment unless the store is past `MAX_MERGED_POSTS`; whether it merged."""
    if _posts(conn) > MAX_MERGED_POSTS:
        return False
    conn.execute("INSERT INTO posts_fts (posts_fts) VALUES ('optimize')")
    return True


def _posts(conn: sqlite3.Connection) -> int:
    """The store's size for the bounds above: its highest post id (an index's last entry, not a count)."""
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM posts").fetchone()[0])
