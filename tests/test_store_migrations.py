"""A store made by an older version migrates; the analyst's own tools (sqlite-utils, Datasette) find the FTS index."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlite_utils
from sqlite_utils.migrations import Migrations

from monitor import dedupe
from monitor.normalize import content_hash
from monitor.store import PostFilter, open_store
from monitor.store.sqlite import schema
from monitor.store.sqlite.schema import MIGRATION_SET, STEPS
from monitor.types import AlertStatus, Match, MatchedPost, Post, SourceState
from tests.conftest import NOW

OLD_STEPS = ("0001_initial", "0002_warnings_and_campaign_cluster")  # what the released version created


def old_store(path: Path) -> None:
    """A store as the version before this one left it: its migrations, a post in the index, three alerts."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    steps = Migrations(MIGRATION_SET)  # released versions migrated with sqlite-utils: its records, its table
    for name in OLD_STEPS:
        steps(name=name)(lambda db, step=STEPS[name]: step(db.conn))
    steps.apply(sqlite_utils.Database(conn))
    conn.execute(
        """INSERT INTO posts (id, source, key, title, text, published_at, first_seen_at, content_hash)
           VALUES (1, 'news', 'k1', 'Сепаратисты в Петропавловске', 'Народный совет провёл заседание',
                   '2026-03-01T11:00:00Z', '2026-03-01T11:00:00Z', 'h1')"""
    )
    conn.execute("INSERT INTO posts_fts (rowid, title, text) SELECT id, title, text FROM posts")
    conn.execute("INSERT INTO matches VALUES (1, 'separatism', 'сепаратист*')")
    conn.execute("INSERT INTO sources (name, failures, last_error_at) VALUES ('news', 2, '2026-03-01T10:00:00Z')")
    for status, attempts, message_id in (("sent", 1, "<a@x>"), ("pending", 2, "<b@x>"), ("pending", 0, None)):
        conn.execute(
            """INSERT INTO alerts (kind, topic, created_at, status, attempts, message_id, sent_at, error)
               VALUES ('spike', 'separatism', '2026-03-01T11:30:00Z', ?, ?, ?, ?, ?)""",
            (
                status,
                attempts,
                message_id,
                "2026-03-01T11:31:00Z" if status == "sent" else None,
                "451 later" if attempts == 2 else None,
            ),
        )
    conn.close()


def test_a_store_of_the_previous_version_migrates_keeping_its_alerts_and_index(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_store(path)
    with open_store(path) as store:
        assert [r.title for r in store.search("сепаратист*")] == ["Сепаратисты в Петропавловске"]
        alerts = sorted(store.alerts(), key=lambda a: a.id)
        assert [(a.status, a.attempts, a.message_id) for a in alerts] == [
            (AlertStatus.SENT, 1, "<a@x>"),
            (AlertStatus.PENDING, 2, "<b@x>"),
            (AlertStatus.PENDING, 0, None),
        ]
        deliveries = [store.deliveries(a.id) for a in alerts]
        assert [[(d.channel, d.status, d.attempts, d.message_id, d.error) for d in ds] for ds in deliveries] == [
            [("email", AlertStatus.SENT, 1, "<a@x>", None)],
            [("email", AlertStatus.PENDING, 2, "<b@x>", "451 later")],
            [("email", AlertStatus.PENDING, 0, None, None)],
        ]
        assert deliveries[0][0].sent_at is not None
        assert store.failure_runs()["news"].since is not None  # a run of failures under way keeps its start
    applied = [r[0] for r in sqlite3.connect(str(path)).execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert applied == list(STEPS)


def stored(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.db"
    title, text = "Халық кеңесі", "Сепаратисты провели собрание в Петропавловске"
    post = Post("news", "k1", "https://example.org/1", title, text, None, NOW, NOW, content_hash(title, text))
    with open_store(path) as store:
        store.save_poll(
            state=SourceState("news"),
            source_type="feed",
            source_url=None,
            posts=[MatchedPost(post, (Match("separatism", "сепаратист*"),), dedupe.signature(title, text))],
            fetches=(),
            now=NOW,
        )
        assert len(store.search("сепаратисты", PostFilter())) == 1
    return path


def test_sqlite_utils_cli_searches_the_posts(tmp_path: Path) -> None:
    path = stored(tmp_path)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("sqlite-utils")), "search", str(path), "posts", "сепаратисты"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [row["key"] for row in json.loads(done.stdout)] == ["k1"]


def test_sqlite_utils_python_api_searches_the_posts(tmp_path: Path) -> None:
    db = sqlite_utils.Database(stored(tmp_path))
    assert db["posts"].detect_fts() == "posts_fts"  # type: ignore[union-attr]
    assert [row["key"] for row in db["posts"].search("кеңесі")] == ["k1"]  # type: ignore[union-attr]


def test_plain_datasette_searches_the_posts(tmp_path: Path) -> None:
    datasette = pytest.importorskip("datasette.app")
    path = stored(tmp_path)

    async def search(term: str) -> list[str]:
        app = datasette.Datasette([str(path)])
        response = await app.client.get(f"/monitor/posts.json?_search={term}&_shape=objects")
        assert response.status_code == 200, response.text
        return [row["key"] for row in response.json()["rows"]]

    assert asyncio.run(search("сепаратисты")) == ["k1"]
    assert asyncio.run(search("nothing")) == []


def test_a_store_whose_index_has_many_segments_migrates_to_one(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    conn = sqlite3.connect(str(path), isolation_level=None)
    schema.apply(conn, [n for n in STEPS if n != "0007_fts_in_one_segment"])
    for n in range(12):  # one transaction each, as polls before this version wrote them: one segment each
        conn.execute("INSERT INTO posts_fts (rowid, title, text) VALUES (?, ?, ?)", (n + 1, f"title {n}", "the text"))
    segments = "SELECT count(DISTINCT segid) FROM posts_fts_idx"
    assert conn.execute(segments).fetchone()[0] > 1
    conn.close()
    open_store(path).close()
    conn = sqlite3.connect(str(path))
    assert conn.execute(segments).fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM posts_fts WHERE posts_fts MATCH 'text'").fetchone()[0] == 12
    conn.close()


def test_sqlite_utils_reads_the_records_of_monitors_runner_as_its_own(tmp_path: Path) -> None:
    """Stores were migrated by sqlite-utils before; a store migrated by monitor's runner looks the same to it."""
    conn = sqlite3.connect(str(tmp_path / "monitor.db"), isolation_level=None)
    schema.apply(conn)
    steps = Migrations(MIGRATION_SET)
    for name in STEPS:
        steps(name=name)(lambda db, step=STEPS[name]: step(db.conn))
    assert steps.pending(sqlite_utils.Database(conn)) == []
    assert [m.name for m in steps.applied(sqlite_utils.Database(conn))] == list(STEPS)
    assert not schema.pending(conn)


def test_a_step_that_fails_leaves_no_trace_and_stays_pending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = sqlite3.connect(str(tmp_path / "monitor.db"), isolation_level=None)
    schema.apply(conn, [n for n in STEPS if n != "0009_band_levels"])

    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE post_bands_recent (band INTEGER, post_id INTEGER)")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setitem(STEPS, "0009_band_levels", half_done)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        schema.apply(conn)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "post_bands_recent" not in tables and schema.pending(conn)
    monkeypatch.undo()
    schema.apply(conn)
    assert not schema.pending(conn)
    assert {"post_bands_recent", "post_bands_mid"} <= {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}


OPEN_AT_ONCE = """
import os, sys, time
from pathlib import Path
from monitor.store import open_store
go = Path(sys.argv[2])
end = time.monotonic() + 60
while not go.exists() and time.monotonic() < end:  # all start migrating the new store together
    time.sleep(0.001)
with open_store(Path(sys.argv[1])) as store:
    print(len(store.conn.execute("SELECT name FROM _sqlite_migrations").fetchall()))
"""


def test_processes_opening_a_new_store_at_once_migrate_it_once(tmp_path: Path) -> None:
    """Six processes open the same new store at the same moment: one migrates, the others wait for it and find
    nothing pending; every step is recorded once, and every process opens a store of the whole schema."""
    path, go = tmp_path / "monitor.db", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT_ONCE, str(path), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    go.touch()
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 6, [err[-2000:] for _, err in results]
    assert [out.strip() for out, _ in results] == [str(len(STEPS))] * 6
    rows = sqlite3.connect(str(path)).execute("SELECT name, count(*) FROM _sqlite_migrations GROUP BY name").fetchall()
    assert dict(rows) == dict.fromkeys(STEPS, 1)


def test_a_store_without_the_fetch_logs_indexes_gets_them_and_keeps_its_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="monitor.store"), open_store(tmp_path / "new.db"):
        pass
    assert "store_migrating" not in caplog.text  # a new store is created silently
    path = tmp_path / "monitor.db"
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    schema.apply(conn, [name for name in STEPS if name < "0011"])  # the version before
    conn.executemany(
        "INSERT INTO fetches (source, url, started_at, status) VALUES ('news', 'https://example.org/rss', ?, 'ok')",
        [("2025-01-01T00:00:00Z",), ("2026-03-01T12:00:00Z",)],
    )
    conn.execute("COMMIT")
    assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'fetches_started_at'").fetchone() is None
    conn.close()
    with caplog.at_level(logging.INFO, logger="monitor.store"), open_store(path) as store:
        assert store.prune_fetches(NOW - timedelta(days=90), 10) == 1
        assert store.counts()["fetches"] == 1
    # the operator of a large store sees why the first open after the upgrade takes a while
    assert "store_migrating steps=0011_fetches_started_at,0012_fetch_errors" in caplog.text
    conn = sqlite3.connect(str(path))
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'fetches'")}
    assert {"fetches_started_at", "fetches_errors"} <= indexes
    assert conn.execute("SELECT started_at FROM fetches").fetchall() == [("2026-03-01T12:00:00Z",)]
