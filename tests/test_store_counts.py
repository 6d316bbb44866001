"""Counts by time from the matches alone (migration 0005): a store of the previous version migrates with the same
counts, a read-only store not yet migrated still counts, and the carried columns follow any writer's edits."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from monitor.store import PostFilter, open_store
from monitor.store.sqlite import open_sqlite
from monitor.store.sqlite.schema import MIGRATION_SET, STEPS
from monitor.types import SourceState
from tests.conftest import NOW
from tests.test_store import matched, post

PREVIOUS = [name for name in STEPS if name < "0005"]


def previous_store(path: Path) -> None:
    """A store as the previous version left it (migrations 0001-0004), with posts and matches over three days."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    steps = Migrations(MIGRATION_SET)
    for name in PREVIOUS:
        steps(name=name)(STEPS[name])
    steps.apply(sqlite_utils.Database(conn))
    for n in range(30):
        published = (NOW - timedelta(hours=5 * n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        conn.execute(
            """INSERT INTO posts (id, source, key, title, text, published_at, first_seen_at, content_hash, cluster_id)
               VALUES (?, 'news', ?, 't', 'x', ?, ?, ?, ?)""",
            (n + 1, f"k{n}", published, published, f"h{n}", 1 + n // 3),
        )
        conn.execute("INSERT INTO matches VALUES (?, ?, 'x')", (n + 1, "flu" if n % 2 else "fuel"))
    conn.close()


def counts(path: Path, *, readonly: bool = False) -> tuple[Any, ...]:
    with open_store(path, readonly=readonly) as store:
        series = store.topic_counts("flu", NOW, timedelta(hours=1), 24 * 7)
        return (
            [(r.topic, r.bucket, r.posts, r.stories) for r in store.stats(by="day")],
            [(r.bucket, r.posts) for r in store.stats(PostFilter(since=NOW - timedelta(days=2)), by="hour")],
            series.counts,
            store.topic_count("fuel", NOW - timedelta(days=3), NOW),
        )


def test_previous_store_counts_the_same_read_only_and_after_migrating(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    previous_store(path)
    before = counts(path, readonly=True)  # not migrated: counted through the posts
    assert sum(before[2]) == 15 and before[3] == (8, 5)
    after = counts(path)  # migrated on open
    assert after == before
    conn = sqlite3.connect(str(path))
    assert conn.execute("SELECT count(*) FROM matches WHERE published_at IS NULL OR cluster_id IS NULL").fetchone() == (
        0,
    )
    plan = " ".join(
        str(r)
        for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM matches m WHERE m.topic = 'flu' AND m.published_at > ''"
        )
    )
    assert "matches_topic_published" in plan


def test_carried_time_and_cluster_follow_every_writer(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with open_sqlite(path) as store:
        store.save_poll(
            state=SourceState(name="feed-a"),
            source_type="feed",
            source_url=None,
            posts=[matched(post("a1"), "separatism")],
            fetches=(),
            now=NOW,
        )
        row = store.conn.execute("SELECT m.published_at, m.cluster_id, p.published_at, p.cluster_id "
                                 "FROM matches m JOIN posts p ON p.id = m.post_id").fetchone()  # fmt: skip
        assert row[:2] == row[2:]
        # An analyst's own SQL: a match written without the columns, a post's time edited.
        store.conn.execute("INSERT INTO matches (post_id, topic, term) VALUES (1, 'flu', 'x')")
        store.conn.execute("UPDATE posts SET published_at = '2020-01-01T00:00:00Z', cluster_id = 77 WHERE id = 1")
        rows = store.conn.execute("SELECT topic, published_at, cluster_id FROM matches ORDER BY topic").fetchall()
        assert rows == [("flu", "2020-01-01T00:00:00Z", 77), ("separatism", "2020-01-01T00:00:00Z", 77)]
        assert [(r.topic, r.bucket) for r in store.stats(by="day")] == [
            ("flu", "2020-01-01"),
            ("separatism", "2020-01-01"),
        ]
