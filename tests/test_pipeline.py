"""The whole poll on real parts: corpus feeds served on 127.0.0.1, the real fetcher, matcher and store."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from monitor.alerts import SourceHealth, health_alerts
from monitor.collectors.fetch import Fetcher
from monitor.config import Config
from monitor.match import Matcher
from monitor.pipeline import poll_sources, run_source
from monitor.store.sqlite import SqliteStore, open_sqlite
from monitor.types import RunResult
from tests.conftest import CORPUS, NOW, RawServer, make_config, monitor_cmd, respond, sqlite_file, write_config

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
    # a 304 writes no post, yet each source's row records the poll that went fine
    assert {r.state.last_ok_at for r in store.source_rows()} == {NOW + timedelta(minutes=10)}
    assert {r.state.failures for r in store.source_rows()} == {0}


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
    for attempt in range(6):
        before = _sources_with_posts(db)
        if before == len(sizes):
            break  # every source committed: no kill can land between commits any more
        proc = subprocess.Popen(
            monitor_cmd(config, "poll"),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        # Kill as soon as one more source's posts are committed (no guessed sleep): the others are mid-way.
        _wait_until(lambda: proc.poll() is not None or _sources_with_posts(db) > before, 120)  # noqa: B023 (called here, in this loop)
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


def _sources_with_posts(db: Path) -> int:
    """How many sources have committed posts in the store, read as a separate reader would (0 before it exists)."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)) as conn:
            return int(conn.execute("SELECT count(DISTINCT source) FROM posts").fetchone()[0])
    except sqlite3.Error:
        return 0


def _wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    """Check `condition` every 20 ms for at most `seconds`; whether it came true."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


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
    with open_sqlite(sqlite_file(config)) as store:
        (result,) = poll(config, store)
        assert result.ok and result.warnings
        (warning,) = [r[0] for r in store.conn.execute("SELECT warning FROM fetches WHERE source = 'city'")]
        assert warning == "; ".join(result.warnings)
        assert store.source_state("city").warnings == result.warnings


def test_a_robots_refusal_is_a_skip_not_a_failure(tmp_path: Path, corpus: Path, raw_server: RawServer) -> None:
    """robots.txt refusing a source must not count as failing: no failure, no backoff, no health alert."""
    raw_server.routes["/robots.txt"] = respond(200, b"User-agent: *\nDisallow: /*.json$\nDisallow: /closed\n")
    raw_server.routes["/closed"] = respond(200, (corpus / "rss/en_bbc-world.xml").read_bytes())
    raw_server.routes["/open"] = respond(200, (corpus / "rss/en_bbc-world.xml").read_bytes())
    config = make_config(
        tmp_path,
        f"""
store: store.db
topics:
  world: [world]
health:
  failures: 1
sources:
  - {{name: closed, type: feed, url: '{raw_server.url("/closed")}'}}
  - {{name: open, type: feed, url: '{raw_server.url("/open")}'}}
""",
    )
    with open_sqlite(sqlite_file(config)) as store:
        for minutes in (0, 20, 40):
            results = {r.source: r for r in poll(config, store, now=NOW + timedelta(minutes=minutes))}
            closed = results["closed"]
            assert closed.ok and closed.skipped and closed.error and "robots.txt" in closed.error
            assert results["open"].ok and not results["open"].skipped
        state = store.source_state("closed")
        assert state.failures == 0 and state.next_poll_at is None and state.health is None
        assert state.last_error is not None
        assert state.last_error.startswith("skipped by robots.txt: robots.txt of http://127.0.0.1:")
        statuses = {r[0] for r in store.conn.execute("SELECT status FROM fetches WHERE source = 'closed'")}
        assert statuses == {"skipped"}
        health = SourceHealth("closed", "feed", state.failures, state.last_error, None, state.last_error_at, None)
        assert health_alerts([health], {}, failures=1, quiet=timedelta(hours=1), now=NOW) == []
    assert "/closed" not in [p for p, _ in raw_server.requests]


# --- what a feed hides becomes a warning on its fetch row and its source ----------------------------------------

RSS_ITEM = "<item><title>{title}</title><link>https://e.org/{n}</link><guid>e-{n}</guid></item>"


def rss(items: str, head: str = "") -> bytes:
    return f"<?xml version='1.0'?>{head}<rss version='2.0'><channel><title>t</title>{items}</channel></rss>".encode()


def one_source(tmp_path: Path, server: RawServer, body: bytes, content_type: str = "application/rss+xml") -> Config:
    server.routes["/feed"] = respond(200, body, {"Content-Type": content_type})
    return make_config(
        tmp_path,
        f"""
store: store.db
topics:
  separatism: [сепаратист*, separatist*]
sources:
  - {{name: feed, type: feed, url: '{server.url("/feed")}', robots: false}}
""",
    )


def test_a_utf8_feed_with_titles_cut_mid_character_keeps_every_title_readable(
    tmp_path: Path, raw_server: RawServer
) -> None:
    titles = [f"Сепаратисты {n}: заявление совета" for n in range(5)]
    items = b"".join(
        b"<item><title>" + t.encode()[:-1] + b"</title><link>https://e.org/" + str(n).encode() + b"</link></item>"
        for n, t in enumerate(titles)  # each title loses the last byte of its last character
    )
    body = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>" + items + b"</channel></rss>"
    config = one_source(tmp_path, raw_server, body, "application/rss+xml; charset=utf-8")
    with open_sqlite(sqlite_file(config)) as store:
        (result,) = poll(config, store)
        assert result.ok and result.new_posts == 5 and result.matches == 5
        stored = [r[0] for r in store.conn.execute("SELECT title FROM posts ORDER BY key")]
        assert stored == [t[:-1] + "\ufffd" for t in titles]
        (warning,) = [r[0] for r in store.conn.execute("SELECT warning FROM fetches")]
        assert warning.startswith("5 invalid UTF-8 byte sequences replaced")
        assert store.source_state("feed").warnings == result.warnings


@pytest.mark.parametrize(
    ("case", "body", "new", "warning"),
    [
        (
            "100,000 items",
            rss("".join(RSS_ITEM.format(title=f"post {n}", n=n) for n in range(100_000))),
            5000,
            "the feed holds 100,000 items: only the first 5,000 were read (the cap per feed)",
        ),
        (
            "malformed",
            rss(RSS_ITEM.format(title="a", n=1) + "<item><title>b</oops></item>" + RSS_ITEM.format(title="c", n=3)),
            3,  # recover mode keeps even the broken one
            "the feed is not well-formed (XML error at line 1: ",
        ),
        (
            "entity bomb",
            rss(
                RSS_ITEM.format(title="&lol3;", n=1) + RSS_ITEM.format(title="plain", n=2),
                head='<!DOCTYPE rss [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>',
            ),
            2,
            "the feed declares its own XML entities (<!ENTITY ...>): they are left unexpanded",
        ),
        (
            "items, then nesting past the depth limit",
            rss(RSS_ITEM.format(title="kept", n=1) + "<x>" * 100_000 + "</x>" * 100_000),
            1,
            "the feed nests elements more than 256 levels deep (from line 1); what lies deeper was not read",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 60 else "",
)
def test_a_hidden_fault_is_a_warning_and_the_poll_keeps_what_it_could(
    tmp_path: Path, raw_server: RawServer, case: str, body: bytes, new: int, warning: str
) -> None:
    config = one_source(tmp_path, raw_server, body)
    with open_sqlite(sqlite_file(config)) as store:
        (result,) = poll(config, store)
        assert result.ok and result.new_posts == new, case
        assert any(w.startswith(warning) for w in result.warnings), result.warnings
        (row,) = [r[0] for r in store.conn.execute("SELECT warning FROM fetches")]
        assert warning in row
        assert store.source_state("feed").warnings == result.warnings


def test_a_feed_nested_100000_deep_is_an_error_not_ok_with_nothing(tmp_path: Path, raw_server: RawServer) -> None:
    body = rss("<x>" * 100_000 + RSS_ITEM.format(title="lost", n=1) + "</x>" * 100_000)
    config = one_source(tmp_path, raw_server, body)
    with open_sqlite(sqlite_file(config)) as store:
        (result,) = poll(config, store)
        assert not result.ok and result.error == (
            "the feed nests elements more than 256 levels deep (from line 1); no item could be read"
        )
        assert store.source_state("feed").failures == 1


def test_allow_private_false_refuses_a_loopback_source_before_any_request(
    tmp_path: Path, raw_server: RawServer
) -> None:
    """`defaults.allow_private: false` from the config file to the wire: the source fails with a clear line on
    its fetch row and the server sees no request; a source that sets `allow_private: true` is polled."""
    raw_server.routes["/feed"] = respond(200, rss(RSS_ITEM.format(title="x", n=1)), {"Content-Type": "text/xml"})
    raw_server.routes["/mine"] = respond(200, rss(RSS_ITEM.format(title="y", n=2)), {"Content-Type": "text/xml"})
    config = make_config(
        tmp_path,
        f"""
store: store.db
topics: {{t: [x]}}
defaults: {{allow_private: false, robots: false}}
sources:
  - {{name: guarded, type: feed, url: '{raw_server.url("/feed")}'}}
  - {{name: mine, type: feed, url: '{raw_server.url("/mine")}', allow_private: true}}
""",
    )
    with open_sqlite(sqlite_file(config)) as store:
        results = {r.source: r for r in poll(config, store)}
        assert results["mine"].ok and results["mine"].new_posts == 1
        guarded = results["guarded"]
        assert not guarded.ok and guarded.error is not None
        assert guarded.error.startswith(f"refused {raw_server.url('/feed')}: 127.0.0.1 is a loopback address")
        assert "allow_private is false" in guarded.error
        (row,) = store.conn.execute("SELECT status, error FROM fetches WHERE source = 'guarded'").fetchall()
        assert row == ("error", guarded.error)
    assert [path for path, _ in raw_server.requests] == ["/mine"]


def test_a_second_poll_process_reads_robots_txt_from_the_store_not_from_each_host(
    tmp_path: Path, raw_server: RawServer
) -> None:
    """`monitor poll` from cron: the first run asks the host for robots.txt and keeps it in the store (`robots`);
    the next runs, within the fetcher's ROBOTS_TTL, obey the kept rules without asking again; past it, they ask."""
    raw_server.routes["/robots.txt"] = respond(body=b"User-agent: *\nDisallow: /private/\n")
    for name in ("a", "b"):
        raw_server.routes[f"/{name}"] = respond(body=(CORPUS / FEEDS["bbc"][0]).read_bytes())
    sources = "".join(
        f"  - {{name: {n}, type: feed, url: '{raw_server.url(path)}'}}\n"
        for n, path in (("a", "/a"), ("b", "/b"), ("hidden", "/private/feed"))
    )
    config = write_config(tmp_path, f"store: store.db\ntopics: {{world: [world]}}\nsources:\n{sources}")

    def asked_after_a_poll() -> int:
        done = subprocess.run(monitor_cmd(config, "poll"), cwd=tmp_path, capture_output=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        assert b"source_skipped source=hidden reason='robots.txt" in done.stderr  # refused, by fresh or kept rules
        return [p for p, _ in raw_server.requests].count("/robots.txt")

    assert asked_after_a_poll() == 1
    assert asked_after_a_poll() == 1  # the kept rules: `hidden` still refused, the host not asked
    with closing(sqlite3.connect(tmp_path / "store.db")) as conn, conn:
        conn.execute("UPDATE robots SET fetched_at = '2000-01-01T00:00:00Z'")  # older than ROBOTS_TTL
    assert asked_after_a_poll() == 2
    assert "/private/feed" not in [p for p, _ in raw_server.requests]


def test_a_store_that_cannot_keep_robots_txt_costs_a_request_per_host_and_nothing_else(
    tmp_path: Path, corpus: Path, raw_server: RawServer, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """robots.txt is a cache in the store: when reading or writing it fails (a full disk, a table gone), the
    poll asks the host and stores its posts as ever, and the log says what was not kept."""
    serve_corpus(raw_server, corpus)
    raw_server.routes["/robots.txt"] = respond(body=b"User-agent: *\nDisallow: /private/\n")
    config = make_config(
        tmp_path,
        f"store: store.db\ntopics: {{world: [world]}}\nsources:\n"
        f"  - {{name: bbc, type: feed, url: '{raw_server.url('/bbc')}'}}\n"
        f"  - {{name: heise, type: feed, url: '{raw_server.url('/heise')}'}}\n",
    )
    store.conn.execute("DROP TABLE robots")  # both the read and the write fail with a StoreError
    results = poll(config, store)
    assert all(r.ok and r.new_posts for r in results), [r.error for r in results]
    assert [p for p, _ in raw_server.requests].count("/robots.txt") == 1
    logged = caplog.text
    assert "robots_cache_unread" in logged and "robots_cache_unsaved" in logged
