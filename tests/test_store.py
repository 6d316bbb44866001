"""The store on a real SQLite file: schema, one-poll transactions, edits, FTS in step, clusters, queries."""

from __future__ import annotations

import itertools
import sqlite3
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import dedupe
from monitor.exceptions import QueryError, StoreError
from monitor.normalize import content_hash
from monitor.serve import QUERIES  # the canned queries of `monitor serve` (Datasette)
from monitor.store import PostFilter, Store, open_store
from monitor.store.rows import ts
from monitor.store.sqlite import SqliteStore, open_sqlite
from monitor.store.sqlite.sources import _PRUNE_FETCHES
from monitor.types import FetchRecord, FetchStatus, Match, MatchedPost, Post, RobotsRecord, SourceState
from tests.conftest import NOW, sql


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every test of this module that takes `store` runs on each backend (SQLite, PostgreSQL)."""
    return any_store


ARTICLE = (
    "Deputies discussed separatism and regional autonomy at the evening session of the council, "
    "where the declaration of the so-called People's Council in Petropavlovsk was read aloud."
)


def post(
    key: str,
    *,
    source: str = "feed-a",
    title: str = "Council session",
    text: str = ARTICLE,
    published_delta: timedelta = timedelta(hours=1),
    parent_key: str | None = None,
    first_seen: timedelta = timedelta(0),
) -> Post:
    return Post(
        source=source,
        key=key,
        url=f"https://example.org/{key}",
        title=title,
        text=text,
        author="Reporter",
        published_at=NOW - published_delta,
        first_seen_at=NOW - first_seen,
        content_hash=content_hash(title, text),
        parent_key=parent_key,
    )


def matched(p: Post, *topics: str) -> MatchedPost:
    return MatchedPost(p, tuple(Match(t, "separatism") for t in topics), dedupe.signature(p.title, p.text))


def save(store: Store, *posts: MatchedPost, source: str = "feed-a", fetches: tuple[FetchRecord, ...] = ()) -> object:
    return store.save_poll(
        state=SourceState(name=source),
        source_type="feed",
        source_url="https://example.org/rss",
        posts=posts,
        fetches=fetches,
        now=NOW,
    )


def test_schema_has_the_contract_tables_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_sqlite(path).close()
    with open_sqlite(path) as store:  # opening again migrates nothing and loses nothing
        names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
        assert {
            "posts",
            "matches",
            "posts_fts",
            "alerts",
            "fetches",
            "sources",
            "topic_hourly",
            "topic_daily",
            "post_topics",
        } <= names
        assert sql(store, "PRAGMA journal_mode")[0][0] == "wal"
        migrations = sql(store, "SELECT count(*) FROM _sqlite_migrations")[0][0]
        assert migrations >= 1


def test_a_post_is_stored_once_and_matches_with_it(store: Store) -> None:
    first = save(store, matched(post("a1"), "separatism"))
    again = save(store, matched(post("a1"), "separatism"))
    assert first.new_posts == 1 and first.matches == 1 and first.topics == ("separatism",)  # type: ignore[attr-defined]
    assert again.new_posts == 0 and again.updated_posts == 0  # type: ignore[attr-defined]
    assert store.counts()["posts"] == 1
    assert sql(store, "SELECT topic, term FROM matches") == [("separatism", "separatism")]


def test_an_edited_post_updates_its_row_keeps_first_seen_and_refreshes_fts_and_matches(store: Store) -> None:
    save(store, matched(post("a1", first_seen=timedelta(hours=2)), "separatism"))
    first_seen = sql(store, "SELECT first_seen_at FROM posts")[0][0]
    edited = post("a1", title="Council session (updated)", text="Only road works were discussed.")
    result = save(store, matched(edited))
    assert result.updated_posts == 1 and result.new_posts == 0  # type: ignore[attr-defined]
    row = sql(store, "SELECT title, first_seen_at, updated_at FROM posts")[0]
    assert row[0] == "Council session (updated)" and row[1] == first_seen and row[2] is not None
    assert store.counts()["matches"] == 0  # the edit no longer matches
    assert [r.id for r in store.search("road")] == [1]
    assert store.search("separatism") == []  # the old text left the index


def test_fts_stays_in_step_on_delete(store: Store) -> None:
    save(store, matched(post("a1")))
    sql(store, "DELETE FROM posts")
    assert store.search("separatism") == []
    assert sql(store, "SELECT count(*) FROM matches")[0][0] == 0


def test_search_highlights_filters_and_orders_newest_first(store: Store) -> None:
    save(
        store,
        matched(post("old", published_delta=timedelta(days=3)), "separatism"),
        matched(
            post("new", text="Сепаратистов осудили на сессии городского совета.", published_delta=timedelta(hours=1)),
            "separatism",
        ),
    )
    save(store, matched(post("b1", source="feed-b", text="Another separatism debate", title="B")), source="feed-b")
    rows = store.search("separatism")
    assert [r.url for r in rows] == ["https://example.org/b1", "https://example.org/old"]
    assert "\x02separatism\x03" in rows[0].snippet
    assert [r.source for r in store.search("separatism", PostFilter(sources=("feed-b",)))] == ["feed-b"]
    assert len(store.search("separatism", PostFilter(since=NOW - timedelta(days=1)))) == 1
    assert store.search("сепаратист*")[0].topics == ("separatism",)
    assert store.search("СЕПАРАТИСТОВ")[0].url == "https://example.org/new"  # case folded in Cyrillic
    with pytest.raises(QueryError, match="bad query"):
        store.search('"unbalanced')


def test_exact_and_near_copies_share_a_cluster_across_sources(store: Store) -> None:
    save(store, matched(post("a1")))
    save(store, matched(post("b1", source="feed-b")), source="feed-b")  # identical text
    near = ARTICLE.replace("evening", "late evening") + " (Reuters)"
    save(store, matched(post("c1", source="feed-c", text=near)), source="feed-c")
    save(
        store,
        matched(
            post(
                "d1",
                source="feed-d",
                title="Weather",
                text="Sunny and warm all week across the region, with light winds from the south and no rain expected.",
            )
        ),
        source="feed-d",
    )
    clusters = dict(sql(store, "SELECT source, cluster_id FROM posts"))
    assert clusters["feed-a"] == clusters["feed-b"] == clusters["feed-c"] == 1
    assert clusters["feed-d"] != 1
    stats = store.stats(by="day")
    assert stats == []  # no matches stored: stats count matching posts only


def test_comments_link_to_their_article(store: Store) -> None:
    article = post("art")
    comment = post("art#c1", title="", text="I was there, it was a separatist gathering.", parent_key="art")
    save(store, matched(comment), matched(article))  # order within a poll does not matter
    rows = dict(sql(store, "SELECT key, parent_id FROM posts"))
    art_id = sql(store, "SELECT id FROM posts WHERE key = 'art'")[0][0]
    assert rows["art#c1"] == art_id and rows["art"] is None
    later = post("art#c2", title="", text="A later comment", parent_key="art")
    save(store, matched(later))  # the article was stored by an earlier poll
    assert sql(store, "SELECT parent_id FROM posts WHERE key = 'art#c2'")[0][0] == art_id


def test_stats_count_posts_and_stories_per_bucket(store: Store) -> None:
    save(
        store,
        matched(post("a1"), "separatism"),
        matched(
            post("a2", title="Other", text="A separatist rally was reported by two witnesses near the station."),
            "separatism",
        ),
    )
    save(store, matched(post("b1", source="feed-b"), "separatism"), source="feed-b")
    rows = store.stats(by="day")
    assert len(rows) == 1
    assert rows[0].topic == "separatism" and rows[0].posts == 3 and rows[0].stories == 2
    hourly = store.stats(PostFilter(topics=("separatism",)), by="hour")
    assert hourly[0].bucket.endswith(":00:00Z")
    weekly = store.stats(by="week")
    assert weekly[0].bucket == "2026-02-23"  # the Monday of NOW's week (NOW is Sunday 1 March 2026)


def test_poll_is_all_or_nothing(store: Store) -> None:
    bad = matched(post("x2"))
    bad = replace(bad, post=replace(bad.post, title=None))  # type: ignore[arg-type]  # NOT NULL fails mid-poll
    with pytest.raises(StoreError):
        save(
            store,
            matched(post("x1")),
            bad,
            fetches=(FetchRecord("feed-a", "https://example.org/rss", NOW, FetchStatus.OK, 200),),
        )
    assert store.counts() == {"posts": 0, "matches": 0, "alerts": 0, "fetches": 0}
    assert store.source_rows() == []


def test_source_state_round_trips(store: Store) -> None:
    state = SourceState(
        name="s",
        etag='"e"',
        last_modified="Sun, 01 Mar 2026 10:00:00 GMT",
        last_ok_at=NOW,
        failures=0,
        cursor="12345",
        retry_at=NOW + timedelta(minutes=5),
    )
    store.save_poll(state=state, source_type="feed", source_url="https://e.org", posts=(), fetches=(), now=NOW)
    assert store.source_state("s") == state
    assert store.source_state("unknown") == SourceState(name="unknown")


def test_readers_are_not_blocked_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with open_sqlite(path) as writer:
        save(writer, matched(post("a1")))
        writer.conn.execute("BEGIN IMMEDIATE")
        writer.conn.execute("UPDATE posts SET title = 'changing'")
        result: list[object] = []

        def read() -> None:
            reader = sqlite3.connect(str(path), timeout=1)
            result.append(reader.execute("SELECT title FROM posts").fetchone()[0])
            reader.close()

        thread = threading.Thread(target=read)
        thread.start()
        thread.join(5)
        writer.conn.execute("ROLLBACK")
    assert result == ["Council session"]  # the reader saw the last committed state at once


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite store"):
        open_sqlite(path)


def test_missing_store_for_readers(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store yet"):
        open_sqlite(tmp_path / "none.db", create=False)


_EXAMPLES = itertools.count()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(["k1", "k2", "k3", "k4"]), st.text(min_size=1, max_size=40)), min_size=1, max_size=12
    )
)
def test_storing_posts_twice_adds_nothing(store: Store, entries: list[tuple[str, str]]) -> None:
    source = f"h{next(_EXAMPLES)}"  # one store for every example: each writes a source of its own
    batch = [matched(post(key, source=source, text=text)) for key, text in entries]
    save(store, *batch, source=source)
    mine = f"SELECT * FROM posts WHERE source = '{source}' ORDER BY id"
    before = sql(store, mine)
    result = save(store, *batch, source=source)
    assert result.new_posts == 0 and result.updated_posts == 0  # type: ignore[attr-defined]
    assert sql(store, mine) == before
    assert len(before) == len({k for k, _ in entries})


def test_search_in_kazakh_and_russian_with_prefixes_case_and_latin_accents(store: Store) -> None:
    save(
        store,
        matched(post("kk", title="ХАЛЫҚ КЕҢЕСІ жиналды", text="Петропавлда мәлімдеме жасалды.")),
        matched(post("ru", title="Йошкар-Ола", text="Народного совета заседание")),
        matched(post("en", title="Café society", text="A separatist café in the old town")),
    )
    assert [r.url.rsplit("/", 1)[1] for r in store.search("кеңес*")] == ["kk"]  # type: ignore[union-attr]
    assert len(store.search("халық")) == 1  # case folded in Kazakh letters
    assert len(store.search('"народного совета"')) == 1
    assert store.search("иошкар") == []  # й is a letter of its own, not и with a mark
    assert len(store.search("cafe")) == 1  # Latin accents are folded


def test_the_fetch_log_is_pruned_by_age_and_nothing_else(store: Store) -> None:
    fetches = tuple(
        FetchRecord("feed-a", "https://example.org/rss", NOW - timedelta(days=days), FetchStatus.OK, 200)
        for days in (200, 100, 10, 0)
    )
    save(store, matched(post("a1")), fetches=fetches)
    assert store.prune_fetches(NOW - timedelta(days=90), 100) == 2
    started = [r[0] for r in sql(store, "SELECT started_at FROM fetches ORDER BY started_at")]
    assert started == ["2026-02-19T12:00:00Z", "2026-03-01T12:00:00Z"]
    assert store.post_count() == 1 and store.source_state("feed-a").name == "feed-a"


def test_the_fetch_log_is_pruned_oldest_first_a_batch_at_a_time(store: Store) -> None:
    fetches = tuple(
        FetchRecord("feed-a", "https://example.org/rss", NOW - timedelta(days=days), FetchStatus.OK, 200)
        for days in (100, 300, 200, 1)  # not stored in time order
    )
    save(store, fetches=fetches)
    before = NOW - timedelta(days=90)
    assert store.prune_fetches(before, 2) == 2  # the two oldest
    started = [r[0] for r in sql(store, "SELECT started_at FROM fetches ORDER BY started_at")]
    assert started == [ts(NOW - timedelta(days=100)), ts(NOW - timedelta(days=1))]
    assert store.prune_fetches(before, 2) == 1
    assert store.prune_fetches(before, 2) == 0
    assert [r[0] for r in sql(store, "SELECT started_at FROM fetches")] == [ts(NOW - timedelta(days=1))]


def test_the_failed_requests_view_reads_only_the_errors(tmp_path: Path) -> None:
    with open_sqlite(tmp_path / "monitor.db") as opened:
        sql_text = QUERIES["fetch_errors"][2]
        plan = " / ".join(r[3] for r in opened.conn.execute(f"EXPLAIN QUERY PLAN {sql_text}", {"source": ""}))
    assert "USING INDEX fetches_errors" in plan, plan  # a SCAN of the whole log when errors are rare


def test_pruning_the_fetch_log_reads_it_through_its_time_index(tmp_path: Path) -> None:
    with open_sqlite(tmp_path / "monitor.db") as opened:
        plan = " / ".join(row[3] for row in opened.conn.execute(f"EXPLAIN QUERY PLAN {_PRUNE_FETCHES}", ("x", 1)))
    # without the index: a SCAN of the whole log (and a sort) for every batch, with the write lock held
    assert "INDEX fetches_started_at (started_at<?)" in plan and "SCAN" not in plan, plan


def test_source_states_lists_every_source_without_counting(store: Store) -> None:
    save(store, source="feed-b")
    save(store, matched(post("a1")))
    assert [s.name for s in store.source_states()] == ["feed-a", "feed-b"]


def test_a_one_shot_poll_opens_the_store_with_a_smaller_page_cache(tmp_path: Path) -> None:
    """`monitor poll` writes once and exits: SQLite's default 2 MB cache (its peak memory); the daemon keeps 8 MB."""
    sizes = []
    for one_shot in (False, True):
        with open_store(tmp_path / "store.db", one_shot=one_shot) as opened:
            assert isinstance(opened, SqliteStore)
            sizes.append(opened.conn.execute("PRAGMA cache_size").fetchone()[0])
    assert sizes == [-8000, -2000]


def test_robots_txt_is_kept_per_origin_and_read_back_from_a_time_on(store: Store) -> None:
    old = RobotsRecord("http://a.example", b"User-agent: *\nDisallow: /x/\n", NOW - timedelta(hours=20))
    store.save_robots([old, RobotsRecord("http://b.example", None, NOW - timedelta(hours=1))])
    store.save_robots([])  # nothing read: nothing written
    assert sorted(r.origin for r in store.robots_since(NOW - timedelta(hours=12))) == ["http://b.example"]
    again = RobotsRecord("http://a.example", b"User-agent: *\nDisallow: /\x00\xff\n", NOW)  # any bytes
    store.save_robots([again])
    assert sorted(store.robots_since(NOW - timedelta(days=2)), key=lambda r: r.origin) == [
        again,
        RobotsRecord("http://b.example", None, NOW - timedelta(hours=1)),
    ]


def test_the_newer_read_of_an_origins_robots_txt_stays_whichever_process_saves_last(store: Store) -> None:
    newer = RobotsRecord("http://a.example", b"User-agent: *\nDisallow: /new/\n", NOW)
    store.save_robots([newer])
    store.save_robots([RobotsRecord("http://a.example", b"User-agent: *\nDisallow: /old/\n", NOW - timedelta(hours=1))])
    assert store.robots_since(NOW - timedelta(days=1)) == [newer]


def test_a_robots_row_edited_by_hand_into_nonsense_is_left_out_not_a_failed_poll(store: Store) -> None:
    kept = RobotsRecord("http://a.example", None, NOW)
    store.save_robots([kept])
    sql(store, "INSERT INTO robots (origin, body, fetched_at) VALUES (?, ?, ?)", ("http://b.example", None, "soon"))
    if isinstance(store, SqliteStore):  # SQLite keeps text in a BLOB column as it is given
        sql(store, "INSERT INTO robots (origin, body, fetched_at) VALUES (?, ?, ?)", ("http://c.example", "x", ts(NOW)))
    read = sorted(store.robots_since(NOW - timedelta(days=1)), key=lambda r: r.origin)
    assert read[0] == kept and all(r.origin != "http://b.example" for r in read)
    if isinstance(store, SqliteStore):
        assert read[1] == RobotsRecord("http://c.example", b"x", NOW)
