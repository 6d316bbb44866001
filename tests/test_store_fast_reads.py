"""The store's fast read paths give what a plain full scan gives, on both backends: newest-first search (the walk
over the newest posts and the sorted path), ranked search (two steps), stats by hour, day and week (counted a
bucket at a time) and the detector's counts by bucket, on a store of a few thousand posts over 60 days."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta

import pytest

from monitor import dedupe
from monitor.store import PostFilter, Store, buckets
from monitor.store.postgres import queries as postgres_queries
from monitor.store.rows import dt
from monitor.store.sqlite import SqliteStore
from monitor.store.sqlite import queries as sqlite_queries
from monitor.types import Match, MatchedPost
from tests.conftest import NOW
from tests.test_store import post, save

POSTS = 2_400
SOURCES = ("feed-a", "feed-b", "feed-c")
TOPICS = ("flu", "fuel", "quiet")
Row = tuple[int, str, str, int | None, tuple[str, ...], str]  # id, source, published_at, cluster, topics, text
WORDS = {"common": 2, "middling": 7, "rare": 97}  # a word in every n-th post


def text_of(n: int) -> str:
    words = [w for w, every in WORDS.items() if n % every == 0]
    story = n % 400  # some stories told again: near-duplicate clusters
    return f"Story {story} of the region: officials said figures rose by {story % 13} points. " + " ".join(words)


def topics_of(n: int) -> tuple[str, ...]:
    return tuple(t for t, every in zip(TOPICS, (3, 4, 211), strict=True) if n % every == 0)


@pytest.fixture
def filled(any_store: Store) -> Iterator[Store]:
    store = any_store
    for source in SOURCES:
        batch = []
        for n in range(POSTS):
            if SOURCES[n % len(SOURCES)] != source:
                continue
            # Published over 60 days, not in id order; some at the same second (ties broken by id).
            delta = timedelta(seconds=(n * 7_919) % (60 * 86_400) // 60 * 60)
            p = post(f"k{n}", source=source, title=f"Report {n}", text=text_of(n), published_delta=delta)
            batch.append(MatchedPost(p, tuple(Match(t, "x") for t in topics_of(n)), dedupe.signature(p.title, p.text)))
        save(store, *batch, source=source)
    yield store


def scan(store: Store) -> list[Row]:
    """Every post read plainly: (id, source, published_at, cluster_id, topics, text)."""
    return [(r.id, r.source, r.published_at, r.cluster_id, r.topics, r.text) for r in store.iter_posts()]


def newest(rows: list[Row], word: str, where: PostFilter) -> list[int]:
    found = [
        r
        for r in rows
        if word in r[5].split()
        and (not where.sources or r[1] in where.sources)
        and (not where.topics or set(r[4]) & set(where.topics))
        and (where.since is None or dt(r[2]) >= where.since)  # type: ignore[operator]
    ]
    return [r[0] for r in sorted(found, key=lambda r: (r[2], r[0]), reverse=True)]


def test_newest_first_search_finds_what_a_full_scan_finds(filled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every newest-first plan (the walk over the newest `walk_posts` posts, falling back when it finds too few;
    the walk of posts_published_at probing the matching ids; the sorted read of every match) lists the same posts
    in the same order as a plain scan."""
    monkeypatch.setattr(sqlite_queries, "_WALK_MIN_MATCHES", 10)
    rows = scan(filled)
    filters = [
        PostFilter(),
        PostFilter(sources=("feed-b",)),
        PostFilter(topics=("flu",)),
        PostFilter(since=NOW - timedelta(days=20), sources=("feed-a", "feed-c")),
    ]
    for walk_posts, word, where, limit in itertools.product((50, 5_000), WORDS, filters, (1, 20, 150)):
        monkeypatch.setattr(sqlite_queries, "_WALK_POSTS", walk_posts)
        got = [r.id for r in filled.search(word, where, limit=limit)]
        assert got == newest(rows, word, where)[:limit], (walk_posts, word, where, limit)
    assert len(newest(rows, "rare", PostFilter())) == len(range(0, POSTS, 97))
    if isinstance(filled, SqliteStore):  # each plan taken by one of the words
        assert [filled._newest_plan(word, 20) for word in WORDS] == ["walk", "hits", "sort"]


def test_ranked_search_ranks_the_pool_as_one_plain_statement(filled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranked search gives the rows, order and snippets of one plain statement over the pool (FTS5 sorts by rank
    itself, so snippets are cut for the rows returned alone); on both backends the rows are among the word's
    newest matches."""
    monkeypatch.setattr(sqlite_queries, "RANK_POOL", 400)
    monkeypatch.setattr(postgres_queries, "RANK_POOL", 400)
    rows = scan(filled)
    for word in WORDS:
        got = filled.search(word, order="rank", limit=30)
        pool = set(sorted(i for i in newest(rows, word, PostFilter()))[-400:])
        assert got and {r.id for r in got} <= pool
        assert all("\x02" in r.snippet for r in got)
        if isinstance(filled, SqliteStore):
            limit = min(400, len(pool))
            oldest = filled.conn.execute(
                "SELECT rowid FROM posts_fts WHERE posts_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
                (word, limit - 1),
            ).fetchone()[0]
            one = filled.conn.execute(
                """SELECT p.id, snippet(posts_fts, -1, '\x02', '\x03', '…', 24) FROM posts_fts
                   JOIN posts p ON p.id = posts_fts.rowid
                   WHERE posts_fts MATCH ? AND posts_fts.rowid >= ? ORDER BY posts_fts.rank LIMIT 30""",
                (word, oldest),
            ).fetchall()
            assert [(r.id, r.snippet) for r in got] == [(r[0], r[1]) for r in one]


def stats_scan(rows: list[Row], bucket_of: dict[str, str], since: str | None) -> list[tuple[str, str, int, int]]:
    posts: dict[tuple[str, str], int] = defaultdict(int)
    stories: dict[tuple[str, str], set[int]] = defaultdict(set)
    for _, _, published, cluster, topics, _ in rows:
        if since is not None and published < since:
            continue
        for topic in topics:
            key = (topic, bucket_of[published])
            posts[key] += 1
            if cluster is not None:
                stories[key].add(cluster)
    return [(t, b, n, len(stories[(t, b)])) for (t, b), n in sorted(posts.items())]


def bucket(published: str, by: str) -> str:
    return published[:13] + ":00:00Z" if by == "hour" else published[:10]


def test_stats_count_what_a_full_scan_counts(filled: Store) -> None:
    rows = scan(filled)
    for by in ("hour", "day"):
        bucket_of = {r[2]: bucket(r[2], by) for r in rows}
        for since in (None, NOW - timedelta(days=30), NOW - timedelta(days=2, hours=5)):
            where = PostFilter(since=since)
            got = [(r.topic, r.bucket, r.posts, r.stories) for r in filled.stats(where, by=by)]
            assert got == stats_scan(rows, bucket_of, None if since is None else since.strftime("%Y-%m-%dT%H:%M:%SZ"))
    weeks = [(r.topic, r.bucket, r.posts, r.stories) for r in filled.stats(by="week")]
    assert sum(r[2] for r in weeks) == sum(len(r[4]) for r in rows)


def test_stats_by_bucket_equal_the_grouped_count(filled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting a bucket at a time gives what grouping every match gives (the path taken past MAX_BUCKETS), for
    every bucket size, with and without bounds and topics."""
    filters = [
        PostFilter(),
        PostFilter(since=NOW - timedelta(days=30)),
        PostFilter(since=NOW - timedelta(days=40, hours=3), until=NOW - timedelta(days=9, minutes=1)),
        PostFilter(topics=("fuel", "nothing", "fuel"), until=NOW - timedelta(days=9)),
    ]
    fast = {(by, w): filled.stats(w, by=by) for by in ("hour", "day", "week") for w in filters}
    monkeypatch.setattr(buckets, "MAX_BUCKETS", 0)
    for (by, where), rows in fast.items():
        assert rows == filled.stats(where, by=by), (by, where)
    assert fast[("day", filters[1])] and fast[("week", filters[2])]


def test_stat_buckets_label_hours_days_and_monday_weeks() -> None:
    assert buckets.stat_buckets("hour", "2026-12-04T22:59:59Z", "2026-12-05T00:00:00Z") == [
        ("2026-12-04T22:00:00Z", "2026-12-04T23:00:00Z"),
        ("2026-12-04T23:00:00Z", "2026-12-05T00:00:00Z"),
        ("2026-12-05T00:00:00Z", "2026-12-05T01:00:00Z"),
    ]
    assert buckets.stat_buckets("day", "2026-12-04T10:00:00Z", "2026-12-04T11:00:00Z") == [("2026-12-04", "2026-12-05")]
    assert buckets.stat_buckets("week", "2026-12-06T23:00:00Z", "2026-12-07T00:00:00Z") == [  # Sunday, Monday
        ("2026-11-30", "2026-12-07"),
        ("2026-12-07", "2026-12-14"),
    ]
    assert buckets.stat_buckets("day", "2026-12-05T00:00:00Z", "2026-12-04T00:00:00Z") == []
    assert buckets.stat_buckets("hour", "2020-01-01T00:00:00Z", "2026-01-01T00:00:00Z") is None  # past MAX_BUCKETS
    assert buckets.period_buckets("day", None, None, None, None) == []  # an empty store
    assert buckets.period_buckets(
        "day", "2026-12-01T10:00:00Z", "2026-12-09T10:00:00Z", "2026-12-03", "2026-12-04"
    ) == [
        ("2026-12-03", "2026-12-04"),
        ("2026-12-04", "2026-12-05"),
    ]  # cut to --since and --until
    assert buckets.period_buckets("day", "2026-12-01T10:00:00Z", "2026-12-02T10:00:00Z", "2026-12-05", None) == []
    assert buckets.stat_buckets("day", "not a time", "2026-01-01T00:00:00Z") is None


def test_topic_counts_count_what_a_full_scan_counts(filled: Store) -> None:
    rows = scan(filled)
    end = NOW - timedelta(minutes=17)
    for step, n in ((timedelta(hours=1), 24 * 7), (timedelta(minutes=10), 6 * 24 * 14)):
        for topic in TOPICS:
            counts = [0] * n
            for _, _, published, _, topics, _ in rows:
                behind = end - dt(published)  # type: ignore[operator]  # bucket k from the end: [k, k + 1) steps
                if topic in topics and timedelta(0) <= behind < step * n:
                    counts[n - 1 - behind // step] += 1
            assert filled.topic_counts(topic, end, step, n).counts == tuple(counts), (topic, step)
