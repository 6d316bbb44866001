"""The whole poll on real parts: corpus feeds served on 127.0.0.1, the real fetcher, matcher and store."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from monitor.collectors.fetch import Fetcher
from monitor.config import Config
from monitor.match import Matcher
from monitor.pipeline import poll_sources, run_source
from monitor.store.sqlite import SqliteStore, open_sqlite
from monitor.types import RunResult
from tests.conftest import NOW, RawServer, make_config, monitor_cmd, respond, write_config

FEEDS = {
    "oren": ("rss/ru_oren-ru_windows-1251.xml", 10),
    "bbc": ("rss/en_bbc-world.xml", 33),
    "ibash": ("rss/ru_ibash-org-ru_windows-1251.xml", 50),
    "heise": ("atom/de_heise.atom", 15),
    "koi8": ("rss/ru_koi8-r_synthetic.xml", 2),
    "relative": ("rss/en_blog_relative-links.xml", None),
}


def config_for(tmp_path: Path, server: RawServer, names: list[str], extra: str = "") -> Config:
    sources = "\n".join(f"  - {{name: {n}, type: feed, url: '{server.url('/' + n)}', robots: false}}" for n in names)
    return make_config(
        tmp_path,
        f"""
store: store.db
topics:
  separatism: [separatism, separatist*, сепаратизм*, сепаратист*]
  world: [world, мир]
sources:
{sources}
{extra}
""",
    )


def poll(config: Config, store: SqliteStore, now: datetime = NOW, respect_backoff: bool = True) -> list[RunResult]:
    async def go() -> list[RunResult]:
        async with Fetcher(per_host=2, user_agent="t", clock=lambda: now) as fetcher:
            return await poll_sources(
                config.sources,
                fetcher=fetcher,
                store=store,
                matcher=Matcher(config.topics),
                clock=lambda: now,
                respect_backoff=respect_backoff,
            )

    return asyncio.run(go())


def serve_corpus(server: RawServer, corpus: Path, *, etag: bool = False) -> None:
    for name, (path, _) in FEEDS.items():
        body = (corpus / path).read_bytes()
        if etag:

            def handler(req, body=body, tag=f'"{name}"'):  # type: ignore[no-untyped-def]
                if req.headers.get("If-None-Match") == tag:
                    respond(304)(req)
                else:
                    respond(200, body, {"ETag": tag, "Content-Type": "application/rss+xml"})(req)

            server.routes[f"/{name}"] = handler
        else:
            server.routes[f"/{name}"] = respond(200, body, {"Content-Type": "application/xml"})


def test_corpus_feeds_are_stored_once_across_polls(
    tmp_path: Path, corpus: Path, raw_server: RawServer, store: SqliteStore
) -> None:
    serve_corpus(raw_server, corpus)
    config = config_for(tmp_path, raw_server, list(FEEDS))
    first = poll(config, store)
    assert all(r.ok for r in first), [r.error for r in first]
    counts = dict(store.conn.execute("SELECT source, count(*) FROM posts GROUP BY source").fetchall())
    for name, (_, expected) in FEEDS.items():
        if expected is not None:
            assert counts[name] == expected, name
    total = store.counts()["posts"]
    second = poll(config, store, now=NOW + timedelta(minutes=10))
    assert sum(r.new_posts + r.updated_posts for r in second) == 0
    assert store.counts()["posts"] == total
    # Cyrillic from windows-1251 and KOI8-R decoded, searchable, case-insensitive
    titles = [r[0] for r in store.conn.execute("SELECT title FROM posts WHERE source IN ('oren', 'koi8')")]
    assert all("\ufffd" not in t and "Ð" not in t for t in titles)
    assert any(any("\u0400" <= ch <= "\u04ff" for ch in t) for t in titles)
    # relative links resolved against the feed
    urls = [r[0] for r in store.conn.execute("SELECT url FROM posts WHERE source = 'relative'")]
    assert urls and all(u.startswith("http") for u in urls)
    # times are UTC text, fetches logged, sources healthy
    assert store.conn.execute("SELECT count(*) FROM posts WHERE published_at NOT LIKE '%Z'").fetchone()[0] == 0
    assert store.conn.execute("SELECT count(*) FROM fetches").fetchone()[0] == 2 * len(FEEDS)
    assert all(r.state.failures == 0 and r.state.last_ok_at for r in store.source_rows())


def test_unchanged_feeds_answer_304_and_nothing_is_parsed(
    tmp_path: Path, corpus: Path, raw_server: RawServer, store: SqliteStore
) -> None:
    serve_corpus(raw_server, corpus, etag=True)
    config = config_for(tmp_path, raw_server, list(FEEDS))
    poll(config, store)
    second = poll(config, store, now=NOW + timedelta(minutes=10))
    assert all(r.ok and r.not_modified and r.items == 0 for r in second)
    statuses = [r[0] for r in store.conn.execute("SELECT status FROM fetches ORDER BY id DESC LIMIT 6")]
    assert statuses == ["not_modified"] * 6


def test_a_broken_source_fails_alone_and_backs_off(
    tmp_path: Path, corpus: Path, raw_server: RawServer, store: SqliteStore
) -> None:
    serve_corpus(raw_server, corpus)
    raw_server.routes["/broken"] = respond(200, b"<html><body>Maintenance</body></html>", {"Content-Type": "text/html"})
    raw_server.routes["/gone"] = respond(404)
    config = config_for(tmp_path, raw_server, ["bbc", "broken", "gone"])
    results = {r.source: r for r in poll(config, store)}
    assert results["bbc"].ok and results["bbc"].new_posts == 33
    assert not results["broken"].ok and results["broken"].error
    assert not results["gone"].ok and results["gone"].error == "HTTP 404 Not Found"
    gone = store.source_state("gone")
    assert gone.failures == 1 and gone.last_error == "HTTP 404 Not Found"
    fetch = store.conn.execute("SELECT status, http_status, error FROM fetches WHERE source = 'broken'").fetchone()
    assert fetch[0] == "error" and fetch[1] == 200 and fetch[2]  # the parse failure is on the fetch row
    # the daemon waits out the backoff; a later failure doubles it
    skipped = asyncio.run(_run_one(config, store, "gone", NOW + timedelta(minutes=1)))
    assert skipped.skipped
    retried = asyncio.run(_run_one(config, store, "gone", NOW + timedelta(minutes=16)))
    assert not retried.ok and store.source_state("gone").failures == 2
    assert store.source_state("gone").next_poll_at == NOW + timedelta(minutes=16) + 2 * config.source("gone").interval
    # a working source resets the count
    raw_server.routes["/gone"] = raw_server.routes["/bbc"]
    poll(config, store, now=NOW + timedelta(hours=3), respect_backoff=False)
    assert store.source_state("gone").failures == 0


def test_retry_after_is_honoured_even_by_a_forced_poll(
    tmp_path: Path, raw_server: RawServer, store: SqliteStore
) -> None:
    raw_server.routes["/busy"] = respond(429, b"", {"Retry-After": "600"})
    config = config_for(tmp_path, raw_server, ["busy"])
    poll(config, store)
    assert store.source_state("busy").retry_at == NOW + timedelta(seconds=600)
    again = poll(config, store, now=NOW + timedelta(minutes=5), respect_backoff=False)
    assert again[0].skipped and len(raw_server.requests) == 1


async def _run_one(config: Config, store: SqliteStore, name: str, now: datetime) -> RunResult:
    async with Fetcher(per_host=2, user_agent="t", clock=lambda: now) as fetcher:
        return await run_source(
            config.source(name), fetcher=fetcher, store=store, matcher=Matcher(config.topics), now=now
        )


def test_matches_are_stored_for_the_topics(
    tmp_path: Path, corpus: Path, raw_server: RawServer, store: SqliteStore
) -> None:
    serve_corpus(raw_server, corpus)
    config = config_for(tmp_path, raw_server, ["bbc"])
    poll(config, store)
    matched = store.conn.execute("SELECT count(*) FROM matches WHERE topic = 'world'").fetchone()[0]
    texts = store.conn.execute("SELECT title || ' ' || text FROM posts").fetchall()
    assert matched == sum(1 for (t,) in texts if Matcher(config.topics).match(t, ""))  # same decision as matcher
    assert matched > 0


def big_feed(items: int) -> bytes:
    now = format_datetime(NOW)
    body = "".join(
        f"<item><title>Item {i} about separatism</title><link>https://example.org/{i}</link>"
        f"<guid>id-{i}</guid><pubDate>{now}</pubDate><description>Text {i} {'word ' * 40}</description></item>"
        for i in range(items)
    )
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Big</title>'
    return f"{head}{body}</channel></rss>".encode()


@pytest.mark.slow
def test_sigkill_mid_write_leaves_the_store_consistent_and_a_rerun_completes(
    tmp_path: Path, raw_server: RawServer
) -> None:
    sizes = {"big1": 2500, "big2": 2500, "big3": 2500}
    for name, size in sizes.items():
        raw_server.routes[f"/{name}"] = respond(200, big_feed(size), {"Content-Type": "application/rss+xml"})
    sources = "\n".join(
        f"  - {{name: {n}, type: feed, url: '{raw_server.url('/' + n)}', robots: false}}" for n in sizes
    )
    config = write_config(tmp_path, f"store: store.db\ntopics:\n  separatism: [separatism]\nsources:\n{sources}\n")
    db = tmp_path / "store.db"
    # Kill moments are events, not drawn sleeps: right after the k-th source's poll is committed (the others are
    # being parsed or written then). Nothing is asserted about where a kill fell, only what the store holds after.
    for attempt, after_commits in enumerate((1, 2, 1)):
        proc = subprocess.Popen(
            monitor_cmd(config, "poll"),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and committed_sources(db) < after_commits:
            time.sleep(0.02)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        with open_sqlite(db) as store:
            assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            store.conn.execute("INSERT INTO posts_fts (posts_fts) VALUES ('integrity-check')")
            per_source = dict(store.conn.execute("SELECT source, count(*) FROM posts GROUP BY source").fetchall())
            for name, count in per_source.items():
                assert count == sizes[name], f"attempt {attempt}: {name} has {count} of {sizes[name]} posts"
            matches = store.conn.execute("SELECT count(*) FROM matches").fetchone()[0]
            assert matches == sum(per_source.values())
    done = subprocess.run(monitor_cmd(config, "poll"), cwd=tmp_path, capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    with open_sqlite(db) as store:
        per_source = dict(store.conn.execute("SELECT source, count(*) FROM posts GROUP BY source").fetchall())
        assert per_source == sizes
        assert store.conn.execute("SELECT count(*) FROM posts_fts WHERE posts_fts MATCH 'separatism'").fetchone()[
            0
        ] == sum(sizes.values())


def committed_sources(db: Path) -> int:
    """Sources with posts committed in the store, read as another process would (0 before the store exists)."""
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(DISTINCT source) FROM posts").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:  # not created yet, or mid-migration
        return 0


def test_url_variants_of_one_item_collapse_into_one_post(
    tmp_path: Path, raw_server: RawServer, store: SqliteStore
) -> None:
    def feed(link: str) -> bytes:
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>Separatist rally'
            f"</title><link>{link}</link><description>A separatist rally in the square.</description></item>"
            f"</channel></rss>"
        ).encode()

    config = config_for(tmp_path, raw_server, ["nolinks"])
    variants = [
        "http://Example.ORG:80/news/1?utm_source=rss&b=2&a=1#comments",
        "http://example.org/news/1?a=1&b=2&fbclid=XYZ",
        "http://example.org/news/1?b=2&a=1&utm_medium=social&gclid=1",
    ]
    for minutes, link in enumerate(variants):
        raw_server.routes["/nolinks"] = respond(
            200, feed(link.replace("&", "&amp;")), {"Content-Type": "application/xml"}
        )
        poll(config, store, now=NOW + timedelta(minutes=10 * minutes))
    rows = store.conn.execute("SELECT key, url FROM posts").fetchall()
    assert rows == [("http://example.org/news/1?a=1&b=2", "http://example.org/news/1?a=1&b=2")]


def test_a_polls_warnings_are_kept_on_its_fetch_row_and_its_source(tmp_path: Path, raw_server: RawServer) -> None:
    page = b"""<html><body><article class="post"><h2>Separatism in the north</h2><p class="body">Text.</p>
    </article></body></html>"""
    raw_server.routes["/news"] = respond(200, page, {"Content-Type": "text/html; charset=utf-8"})
    config = make_config(
        tmp_path,
        f"""
store: store.db
topics:
  separatism: [separatism]
sources:
  - name: city
    type: html
    url: '{raw_server.url("/news")}'
    robots: false
    items: article.post
    fields: {{title: h2, text: .body}}
    comments: {{items: .comment, fields: {{text: .comment-body}}}}
""",
    )
    with open_sqlite(config.store) as store:
        (result,) = poll(config, store)
        assert result.ok and result.warnings
        (warning,) = [r[0] for r in store.conn.execute("SELECT warning FROM fetches WHERE source = 'city'")]
        assert warning == "; ".join(result.warnings)
        assert store.source_state("city").warnings == result.warnings
