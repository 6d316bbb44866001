"""Counts by time from the matches alone (migration 0005): a store of the previous version migrates with the same
counts, a read-only store not yet migrated still counts, and the carried columns follow any writer's edits on
both backends; ranked search's pool of newest matches."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.store import PostFilter, Store, open_store
from monitor.store.api import RANK_POOL
from monitor.store.postgres import queries as postgres_queries
from monitor.store.rows import ts
from monitor.store.sqlite import queries as sqlite_queries
from monitor.store.sqlite import schema
from monitor.store.sqlite.schema import STEPS
from tests.conftest import NOW, sql
from tests.test_store import ARTICLE, matched, post, save

PREVIOUS = [name for name in STEPS if name < "0005"]


def previous_store(path: Path) -> None:
    """A store as the previous version left it (migrations 0001-0004), with posts and matches over three days."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    schema.apply(conn, PREVIOUS)
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


def carried(store: Store) -> list[tuple[Any, ...]]:
    """Each match's carried (published_at, cluster_id) beside its post's, by topic and post."""
    return sql(
        store,
        """SELECT m.post_id, m.topic, m.published_at, m.cluster_id, p.published_at, p.cluster_id
           FROM matches m JOIN posts p ON p.id = m.post_id ORDER BY m.post_id, m.topic""",
    )


def in_step(rows: list[tuple[Any, ...]]) -> bool:
    return all(r[2:4] == r[4:6] for r in rows)


def test_carried_time_and_cluster_follow_every_writer(any_store: Store) -> None:
    store = any_store
    save(store, matched(post("a1"), "separatism"))
    near = ARTICLE.replace("evening", "late evening") + " (Reuters)"  # joins a1's cluster
    save(store, matched(post("b1", source="feed-b", text=near), "separatism", "flu"), source="feed-b")
    rows = carried(store)
    assert len(rows) == 3 and in_step(rows)
    assert {r[3] for r in rows} == {1}  # the near copy's matches carry the cluster it joined
    # The feed edits b1: a new text and a later time, and its matches change.
    edited = replace(post("b1", source="feed-b", text=near + " Updated."), published_at=NOW - timedelta(minutes=5))
    save(store, matched(edited, "fuel"), source="feed-b")
    rows = carried(store)
    assert [r[1] for r in rows] == ["separatism", "fuel"] and in_step(rows)
    assert rows[1][2] == ts(edited.published_at)
    # An analyst's own SQL: a match written without the columns, a post's time and cluster edited.
    sql(store, "INSERT INTO matches (post_id, topic, term) VALUES (1, 'flu', 'x')")
    sql(store, "UPDATE posts SET published_at = '2020-01-01T00:00:00Z', cluster_id = 77 WHERE id = 1")
    rows = carried(store)
    assert in_step(rows)
    assert [r[1:4] for r in rows if r[0] == 1] == [
        ("flu", "2020-01-01T00:00:00Z", 77),
        ("separatism", "2020-01-01T00:00:00Z", 77),
    ]
    assert [(r.topic, r.bucket, r.posts, r.stories) for r in store.stats(by="day")] == [
        ("flu", "2020-01-01", 1, 1),
        ("fuel", edited.published_at.strftime("%Y-%m-%d"), 1, 1),
        ("separatism", "2020-01-01", 1, 1),
    ]
    assert store.topic_count("fuel", NOW - timedelta(hours=1), NOW) == (1, 1)
    assert store.topic_names() == {"flu", "fuel", "separatism"}


def test_ranked_search_ranks_the_newest_pool_of_matches(any_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past RANK_POOL matches, --sort rank leaves the older ones out (documented in `monitor search --help`),
    however well they rank; newest first still finds them. The same on both backends."""
    for module in (sqlite_queries, postgres_queries):
        monkeypatch.setattr(module, "RANK_POOL", 3)
    store = any_store
    best = "Separatism separatism separatism: the council on separatism."  # the best ranked, stored first
    texts = [best, *(f"Item {n} on the weather and, once, separatism in passing." for n in range(4))]
    save(store, *(matched(post(f"k{n}", title="News", text=t)) for n, t in enumerate(texts)))
    ranked = [r.id for r in store.search("separatism", order="rank", limit=2)]
    assert len(ranked) == 2 and set(ranked) <= {3, 4, 5}  # of the 3 newest matches: not post 1, the best
    assert len(store.search("separatism", limit=10)) == 5
    assert store.search("separatism", order="rank", limit=5)[0].id == 1  # a limit past the pool widens it
    monkeypatch.setattr(sqlite_queries, "RANK_POOL", 10)
    monkeypatch.setattr(postgres_queries, "RANK_POOL", 10)
    assert store.search("separatism", order="rank", limit=2)[0].id == 1


def test_search_help_states_the_rank_pool() -> None:
    text = " ".join(CliRunner().invoke(main, ["search", "--help"]).output.split())
    assert f"{RANK_POOL:,} most recently stored" in text
