"""The write path in batches: a poll is a fixed number of statements, each post stored once with its matches,
and near-duplicate candidates bounded per band bucket without losing real copies."""

from __future__ import annotations

import random
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest

from monitor import dedupe
from monitor.store import PostFilter, open_store
from monitor.store.sqlite import SqliteStore, bands, fts
from monitor.store.sqlite.clusters import BAND_CANDIDATES, MAX_CANDIDATES, PollClusters
from monitor.types import Match, MatchedPost, SourceState
from tests.conftest import NOW
from tests.test_store import matched, post


class CountingConnection:
    """The store's connection with its execute/executemany calls counted (a spy: every call still runs)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.calls = 0

    def execute(self, *args: Any) -> sqlite3.Cursor:
        self.calls += 1
        return self._conn.execute(*args)

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        self.calls += 1
        return self._conn.executemany(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    opened = open_store(tmp_path / "s.db")
    assert isinstance(opened, SqliteStore)
    return opened


def text_of(n: int) -> str:
    rng = random.Random(n)
    words = [f"w{rng.randrange(100_000)}" for _ in range(30)]
    return " ".join(words) + (" separatism" if n % 2 else "")


def poll(store: SqliteStore, posts: list[MatchedPost], source: str = "feed-a") -> tuple[int, int]:
    """(statements the poll ran, new posts)."""
    counting = CountingConnection(store.conn)
    store.conn = counting  # type: ignore[assignment]
    try:
        saved = store.save_poll(
            state=SourceState(name=source), source_type="feed", source_url=None, posts=posts, fetches=(), now=NOW
        )
    finally:
        store.conn = counting._conn
    return counting.calls, saved.new_posts


def batch(start: int, count: int, *, source: str = "feed-a") -> list[MatchedPost]:
    out = []
    for n in range(start, start + count):
        p = post(f"k{n}", source=source, title=f"Title {n}", text=text_of(n))
        out.append(matched(p, *(["separatism"] if n % 2 else [])))
    return out


def test_a_poll_takes_the_same_statements_for_5_posts_as_for_200(tmp_path: Path) -> None:
    def second_poll(name: str, count: int) -> tuple[int, int]:
        # Each store holds one post first: the band levels read are a store's non-empty ones, alike in both.
        opened = open_store(tmp_path / name)
        assert isinstance(opened, SqliteStore)
        with opened:
            poll(opened, batch(0, 1))
            return poll(opened, batch(1, count))

    small, _ = second_poll("small.db", 5)
    large, new = second_poll("large.db", 200)
    assert new == 200
    assert large == small  # not one more per post: lookups, inserts and index rows are batched


def test_batched_poll_stores_each_post_once_with_its_matches(store: SqliteStore) -> None:
    posts = batch(0, 120)
    poll(store, [*posts, posts[3]])  # the feed lists one item twice
    _, new = poll(store, posts)  # the same items again: nothing new, nothing written twice
    assert new == 0
    assert store.conn.execute("SELECT count(*), count(DISTINCT key) FROM posts").fetchone() == (120, 120)
    assert store.conn.execute("SELECT count(*) FROM matches").fetchone()[0] == 60
    assert store.conn.execute("SELECT count(*) FROM post_signatures").fetchone()[0] == 120
    found = {r.url for r in store.search("separatism", PostFilter(), limit=500)}
    assert found == {p.post.url for p in posts if p.matches}
    edited = replace_text(posts[1], "an edited text " + text_of(1))
    poll(store, [edited])
    row = store.conn.execute("SELECT text, updated_at FROM posts WHERE key = 'k1'").fetchone()
    assert row[0].startswith("an edited text") and row[1] is not None
    assert store.conn.execute("SELECT topic FROM matches WHERE post_id = 2").fetchall() == [("flu",)]  # old gone


def replace_text(item: MatchedPost, text: str) -> MatchedPost:
    p = post(item.post.key, title=item.post.title, text=text)
    return MatchedPost(p, (Match("flu", "influenza"),), dedupe.signature(p.title, p.text))


def test_copies_in_one_poll_and_across_polls_share_a_cluster(store: SqliteStore) -> None:
    original = matched(post("orig", text=text_of(7)))
    copy_same_poll = matched(post("copy1", source="feed-a", text=text_of(7) + " Source: Kazinform"))
    poll(store, [original, copy_same_poll])
    poll(store, [matched(post("copy2", source="feed-b", text=text_of(7)))], source="feed-b")
    clusters = {r[0]: r[1] for r in store.conn.execute("SELECT key, cluster_id FROM posts")}
    assert clusters["orig"] == clusters["copy1"] == clusters["copy2"] == 1


# -- bounded candidates, with signatures built by hand: a bucket filled by boilerplate, a real copy beside it
def signature(values: list[int]) -> bytes:
    return bytes([dedupe.FORMAT]) + struct.pack(f"<{dedupe.NUM_PERM}I", *values)


def crafted(key: str, values: list[int]) -> MatchedPost:
    p = post(key, title=key, text=f"text of {key}")
    return MatchedPost(p, (), signature(values))


def test_a_copy_is_found_past_a_bucket_that_boilerplate_filled(store: SqliteStore) -> None:
    rng = random.Random(5)
    story = [rng.randrange(2**32) for _ in range(dedupe.NUM_PERM)]
    poll(store, [crafted("story", story)])
    # Many later posts share the story's first band (the same 8 minima: a boilerplate sentence) and nothing else.
    rows = dedupe.ROWS
    fillers = [
        crafted(f"filler{i}", story[:rows] + [rng.randrange(2**32) for _ in range(128 - rows)]) for i in range(60)
    ]
    poll(store, fillers)
    first_band = dedupe.band_keys(signature(story))[0]
    levels = " UNION ALL ".join(f"SELECT band FROM {level}" for level in bands.LEVELS)  # rows written behind
    assert store.conn.execute(f"SELECT count(*) FROM ({levels}) WHERE band = ?", (first_band,)).fetchone()[0] == 61
    copy = story[:]
    copy[-1] ^= 1  # similarity 127/128
    poll(store, [crafted("copy", copy)])
    clusters = {r[0]: r[1] for r in store.conn.execute("SELECT key, cluster_id FROM posts")}
    assert clusters["copy"] == clusters["story"]
    assert len({clusters[f"filler{i}"] for i in range(60)} & {clusters["story"]}) == 0


def test_candidates_per_post_are_bounded_however_full_the_buckets(store: SqliteStore) -> None:
    rng = random.Random(6)
    shared = [rng.randrange(2**32) for _ in range(dedupe.NUM_PERM)]
    # 100 posts in every one of the same 10 buckets (each differs only outside the banded permutations).
    banded = dedupe.BANDS * dedupe.ROWS
    poll(
        store,
        [crafted(f"p{i}", shared[:banded] + [rng.randrange(2**32) for _ in range(128 - banded)]) for i in range(100)],
    )
    clusters = PollClusters()
    bands = dedupe.band_keys(signature(shared))
    clusters.load(store.conn, [], bands)
    found = clusters.candidates(bands)
    assert len(found) == BAND_CANDIDATES <= MAX_CANDIDATES  # the newest members, the same in every bucket
    newest = [r[0] for r in store.conn.execute("SELECT id FROM posts ORDER BY id DESC LIMIT ?", (BAND_CANDIDATES,))]
    assert sorted(c.post_id for c in found) == sorted(newest)


def test_polls_keep_the_full_text_index_merged_and_whole(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fts, "MIN_MERGED_POSTS", 0)  # a store this small is left to FTS5 (the test below)
    merged_at = []
    for n in range(30):
        before = len(fts.segment_sizes(store.conn))
        poll(store, batch(n * 50, 50))
        sizes = fts.segment_sizes(store.conn)
        if len(sizes) < before:
            merged_at.append(n)
        # FTS5 writes a poll's rows at its commit, after the merge: one small segment more than the share.
        small = sorted(sizes)[:-1]
        assert sum(small) - max(small, default=0) <= fts.OTHERS_SHARE * max(sizes)
    assert len(merged_at) >= 5  # merged again as it grew, not once
    assert len(merged_at) < 30  # and not after every poll
    store.conn.execute("INSERT INTO posts_fts (posts_fts, rank) VALUES ('integrity-check', 1)")
    found = {r.url for r in store.search("separatism", PostFilter(), limit=2_000)}
    assert len(found) == 750  # every other post of the 1,500


def test_a_small_store_is_left_to_fts5s_own_merging(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fts, "MIN_MERGED_POSTS", 1_000)
    merges: list[int] = []  # the store's size at each merge
    whole = fts.compact

    def counted(conn: sqlite3.Connection) -> bool:
        merges.append(posts_in(store))
        return whole(conn)

    monkeypatch.setattr(fts, "compact", counted)
    for n in range(30):
        poll(store, batch(n * 50, 50))
    assert merges and min(merges) >= 1_000  # none below the bound (each poll's 50 posts are in when it merges)
    store.conn.execute("INSERT INTO posts_fts (posts_fts, rank) VALUES ('integrity-check', 1)")
    assert len({r.url for r in store.search("separatism", PostFilter(), limit=2_000)}) == 750


def posts_in(store: SqliteStore) -> int:
    return int(store.conn.execute("SELECT count(*) FROM posts").fetchone()[0])


def test_a_store_past_the_merge_bound_is_left_to_fts5s_own_merging(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fts, "MAX_MERGED_POSTS", 100)  # a merge would hold the write lock too long past it
    for n in range(8):
        poll(store, batch(n * 50, 50))
    assert len(fts.segment_sizes(store.conn)) > 1
    assert not fts.compact(store.conn)
    monkeypatch.setattr(fts, "MAX_MERGED_POSTS", 1_000)
    assert fts.compact(store.conn)
    assert len(fts.segment_sizes(store.conn)) == 1
