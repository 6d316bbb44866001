"""What only the PostgreSQL store has to prove: its schema and migrations, its URL and password, read-only use,
the daemon's advisory lock, claims across connections, and that its tokens are SQLite's (the same posts found)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from monitor import dedupe
from monitor.exceptions import QueryError, StoreError, StoreLocked, StoreReadOnly
from monitor.normalize import content_hash
from monitor.store import StoreURL, open_store
from monitor.store.postgres import fts, redacted, schema
from monitor.types import AlertKind, Holder, Match, MatchedPost, NewAlert, Post, SourceState
from tests import pgserver
from tests.conftest import NOW, refused_port, run_monitor, sql, start_daemon, wait_for, write_config
from tests.unicode61_table import tables

CONTRACT = {"posts", "matches", "posts_fts", "alerts", "deliveries", "fetches", "sources", "daemon"}
VIEWS = {"topic_hourly", "topic_daily", "post_topics"}


def a_post(key: str, title: str, text: str, source: str = "news") -> MatchedPost:
    post = Post(source, key, f"https://example.org/{key}", title, text, None, NOW, NOW, content_hash(title, text))
    return MatchedPost(post, (Match("separatism", "сепаратист*"),), dedupe.signature(title, text))


def save(store: object, *posts: MatchedPost) -> None:
    store.save_poll(  # type: ignore[attr-defined]
        state=SourceState("news"), source_type="feed", source_url=None, posts=posts, fetches=(), now=NOW
    )


def test_the_schema_has_the_contract_tables_and_views_and_migrates_once(pg_url: StoreURL) -> None:
    open_store(pg_url).close()
    with open_store(pg_url) as store:  # opening again migrates nothing
        names = {
            r[0] for r in sql(store, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        }
        assert names >= CONTRACT | VIEWS
        assert sql(store, "SELECT name FROM _monitor_migrations ORDER BY name") == [(name,) for name in schema.STEPS]
        assert store.check() == []
        save(store, a_post("k1", "Сепаратисты", "Народный совет провёл заседание"))
        assert sql(store, "SELECT topic, posts, stories FROM topic_daily") == [("separatism", 1, 1)]
        assert sql(store, "SELECT topics FROM post_topics") == [('["separatism"]',)]


def test_check_names_any_table_or_view_of_the_schema_that_is_missing(pg_url: StoreURL) -> None:
    with open_store(pg_url) as store:
        assert store.check() == []
        sql(store, "DROP TABLE topic_fingerprints")
        sql(store, "DROP VIEW post_topics")
        assert store.check() == ["missing table or view: post_topics", "missing table or view: topic_fingerprints"]


def test_a_store_of_the_first_version_gets_the_carried_columns_filled(pg_url: StoreURL) -> None:
    """Migration 0005 on a store holding matches: each gets its post's time and cluster, and the index."""
    with open_store(pg_url) as store:
        save(store, a_post("k1", "Сепаратисты", "Народный совет"), a_post("k2", "Сепаратисты", "Другой текст"))
        sql(store, "UPDATE posts SET published_at = '2020-01-0' || id || 'T00:00:00Z', cluster_id = 40 + id")
    with open_store(pg_url) as store:  # back to the first version's schema, as a store written before 0005
        sql(
            store,
            """DROP TRIGGER matches_take_post_fields ON matches; DROP TRIGGER matches_follow_posts ON posts;
               DROP FUNCTION matches_take_post_fields; DROP FUNCTION matches_follow_posts;
               ALTER TABLE matches DROP COLUMN published_at, DROP COLUMN cluster_id;
               DELETE FROM _monitor_migrations WHERE name = '0005_matches_carry_time_and_cluster'""",
        )
    with open_store(pg_url) as store:  # migrated on open
        assert sql(store, "SELECT post_id, published_at, cluster_id FROM matches ORDER BY post_id") == [
            (1, "2020-01-01T00:00:00Z", 41),
            (2, "2020-01-02T00:00:00Z", 42),
        ]
        assert sql(store, "SELECT indexname FROM pg_indexes WHERE indexname = 'matches_topic_published'")
        assert [(r.bucket, r.posts) for r in store.stats(by="day")] == [("2020-01-01", 1), ("2020-01-02", 1)]


def test_location_never_shows_a_password_and_the_password_comes_from_the_environment(
    pg_cluster: pgserver.Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert redacted("postgresql://u:secret@db.example.org/monitor") == "postgresql://u@db.example.org/monitor"
    url = StoreURL(pg_cluster.url(pg_cluster.new_database(owner=pgserver.PASSWORD_ROLE), pgserver.PASSWORD_ROLE))
    monkeypatch.delenv("MONITOR_STORE_PASSWORD", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(StoreError, match="password") as refused:
        open_store(url)
    assert "MONITOR_STORE_PASSWORD" in str(refused.value)  # the advice names where the password goes
    monkeypatch.setenv("MONITOR_STORE_PASSWORD", "not-in-any-file")
    with open_store(url) as store:
        assert store.location == url.url and "not-in-any-file" not in store.location
        assert store.counts()["posts"] == 0


def test_readers_need_a_store_and_cannot_write(pg_url: StoreURL) -> None:
    with pytest.raises(StoreError, match="no store yet"):
        open_store(pg_url, readonly=True)
    with pytest.raises(StoreError, match="no store yet"):
        open_store(pg_url, create=False)
    open_store(pg_url).close()
    with open_store(pg_url, readonly=True) as reader:
        assert reader.search("anything") == []
        with pytest.raises(StoreReadOnly):
            save(reader, a_post("k1", "t", "text"))


def test_no_server_is_a_one_line_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the store") as failed:
        open_store(StoreURL(f"postgresql://nobody@/db?host={tmp_path}&port=1"))
    assert "\n" not in str(failed.value)


def test_one_daemon_holds_the_store_and_a_killed_one_lets_go(pg_url: StoreURL) -> None:
    first, second = open_store(pg_url), open_store(pg_url)
    try:
        holder = Holder(host="h", pid=1234, started=5)
        assert second.daemon_holder() is None
        first.lock_daemon(holder, NOW)
        assert second.daemon_holder() == holder
        with pytest.raises(StoreLocked, match="pid 1234 on host h") as locked:
            second.lock_daemon(Holder(host="h", pid=99, started=1), NOW)
        assert locked.value.holder == str(holder)
        first.unlock_daemon()
        assert second.daemon_holder() is None
    finally:
        first.close()
        second.close()
    # A process that dies holding the lock (SIGKILL: no clean-up) releases it with its connection.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from monitor.store import StoreURL, open_store\n"
            "from monitor.types import Holder\n"
            "from tests.conftest import NOW\n"
            f"s = open_store(StoreURL({pg_url.url!r}))\n"
            "s.lock_daemon(Holder('h', 4321, 1), NOW)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with open_store(pg_url) as store:
            assert store.daemon_holder() == Holder("h", 4321, 1)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
            deadline = time.monotonic() + 10
            while store.daemon_holder() is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert store.daemon_holder() is None
            store.lock_daemon(Holder("h", 1, 1), NOW)  # taken over at once
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stdout:
            child.stdout.close()


def test_two_connections_never_claim_the_same_delivery(pg_url: StoreURL) -> None:
    with open_store(pg_url) as one, open_store(pg_url) as other:
        for _ in range(3):
            one.insert_alert(NewAlert(kind=AlertKind.SPIKE, topic="t"), created_at=NOW, channels=["email"])
        claims = []
        for index in range(4):
            store = (one, other)[index % 2]
            claim = store.claim_delivery(
                channels=["email"],
                owner=Holder("h", 100 + index, 1),
                now=NOW,
                lease=timedelta(minutes=5),
                message_id=f"<m{index}@x>",
            )
            claims.append(claim)
        taken = [c.delivery.id for c in claims if c is not None]
        assert len(taken) == 3 == len(set(taken)) and claims[3] is None


def test_a_post_edited_by_someone_elses_sql_leaves_the_index_until_the_next_poll_reindexes_it(
    pg_url: StoreURL,
) -> None:
    with open_store(pg_url) as store:
        save(store, a_post("k1", "Council", "separatism was discussed"))
        sql(store, "UPDATE posts SET text = 'only road works' WHERE key = 'k1'")
        assert store.search("separatism") == [] and store.search("road") == []  # never a stale hit
        save(store)  # the next poll's transaction reindexes it
        assert [r.title for r in store.search("road")] == ["Council"]


def test_tokens_are_sqlites_for_every_code_point_of_the_basic_plane() -> None:
    separators, fold = tables(list(range(1, 0xD800)) + list(range(0xE000, 0x10000)))
    ours = {cp for a, b in separators for cp in range(a, b + 1)}
    assert not [cp for cp, folded in fold.items() if any(ord(c) in ours for c in folded)]  # fts.words folds first
    for cp in range(1, 0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        got = fts.words(f"a{chr(cp)}b")
        if cp in ours:
            assert got == ["a", "b"], hex(cp)
        else:
            assert got == [f"a{fold.get(cp, chr(cp))}b"], hex(cp)


QUERIES = [
    "separatism",
    "сепаратист*",
    '"народного совета"',
    '"Народн* совет*"',
    "cafe OR кеңес*",
    "council NOT separatism",
    "title:café",
    "text:council",
    "(road OR café) AND town",
    '"people\'s council"',
    "халық кеңес*",
    "иошкар",
    "x_y",
    '"!!!" council',
]
DOCS = [
    ("Council session", "Deputies discussed separatism and the People's Council of Petropavlovsk."),
    ("ХАЛЫҚ КЕҢЕСІ жиналды", "Петропавлда мәлімдеме жасалды."),
    ("Йошкар-Ола", "Народного совета заседание; Народный совет*"),
    ("Café society", "A separatist café in the old town"),
    ("Road works", "Only road works in the town council"),
    ("x", "x_y and x y"),
]


def test_the_same_queries_find_the_same_posts_as_sqlite_fts5(pg_url: StoreURL) -> None:
    lite = sqlite3.connect(":memory:")
    lite.execute("CREATE VIRTUAL TABLE t USING fts5 (title, text, tokenize='unicode61 remove_diacritics 2')")
    lite.executemany("INSERT INTO t (rowid, title, text) VALUES (?, ?, ?)", [(i + 1, *d) for i, d in enumerate(DOCS)])
    with open_store(pg_url) as store:
        save(store, *(a_post(f"k{i + 1}", title, text) for i, (title, text) in enumerate(DOCS)))
        ids = dict(sql(store, "SELECT id, key FROM posts"))
        for query in QUERIES:
            expected = {r[0] for r in lite.execute("SELECT rowid FROM t WHERE t MATCH ?", (query,))}
            found = {int(ids[r.id][1:]) for r in store.search(query, limit=100)}
            assert found == expected, query


@pytest.mark.parametrize("query", ['"unbalanced', "a OR", "NOT a", "a.b", "don't", "x:", "(a"])
def test_queries_fts5_refuses_are_query_errors(query: str) -> None:
    lite = sqlite3.connect(":memory:")
    lite.execute("CREATE VIRTUAL TABLE t USING fts5 (title, text)")
    with pytest.raises(sqlite3.OperationalError):
        lite.execute("SELECT * FROM t WHERE t MATCH ?", (query,)).fetchall()
    with pytest.raises(QueryError):
        fts.parse_query(query)


def test_a_phrase_never_spans_from_the_title_into_the_text(pg_url: StoreURL) -> None:
    with open_store(pg_url) as store:
        save(store, a_post("k1", "People's", "Council of the town"))
        assert store.search('"people\'s council"') == []
        assert store.search('"people\'s" + council') == []
        assert len(store.search('"council of"')) == 1


@pytest.mark.slow
def test_monitor_run_on_postgresql_is_one_daemon_per_store_and_a_killed_one_is_replaced(
    tmp_path: Path,
    pg_url: StoreURL,
    daemons: list[subprocess.Popen[bytes]],
) -> None:
    config = write_config(
        tmp_path,
        f"""
store: "{pg_url.url}"
topics: {{t: [x]}}
sources:
  - {{name: offline, type: feed, url: "http://127.0.0.1:{refused_port()}/feed", interval: 1h, robots: false}}
""",
    )
    open_store(pg_url).close()

    def holder_pid() -> int | None:
        with open_store(pg_url, readonly=True) as store:
            holder = store.daemon_holder()
        return holder.pid if holder else None

    first = start_daemon(config, tmp_path / "first.log")
    daemons.append(first)
    wait_for(lambda: holder_pid() == first.pid, "the first daemon to hold the store")
    second = run_monitor(config, "run", timeout=60)
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 1 and len(lines) == 1, second.stderr
    assert "held by another `monitor run`" in lines[0] and f"pid {first.pid}" in lines[0]
    os.killpg(first.pid, signal.SIGKILL)  # its connection ends with it, and the server lets the lock go
    first.wait(10)
    third = start_daemon(config, tmp_path / "third.log")
    daemons.append(third)
    wait_for(lambda: holder_pid() == third.pid, "a new daemon after the first was killed")
    third.send_signal(signal.SIGTERM)
    assert third.wait(15) == 0
