"""Feed items stored unchanged are skipped before they are parsed (raw digests): the store and every count stay
exactly what a full parse gives, on the corpus, through a real poll over HTTP and against generated feeds."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import dedupe
from monitor.collectors import feedparse
from monitor.collectors.feedparse import ParsedFeed, parse_feed
from monitor.config import Config
from monitor.exceptions import ParseError
from monitor.normalize import content_hash
from monitor.prepare import unique_items
from monitor.store import Store
from monitor.store.sqlite import SqliteStore, open_sqlite, schema
from monitor.store.sqlite.schema import STEPS
from monitor.types import Match, MatchedPost, Post, RawItem, RunResult, SourceState
from tests.conftest import NOW, RawServer, make_config, monitor_cmd, respond, write_config
from tests.test_pipeline import poll

URL = "https://feeds.example/rss"


def corpus_feeds(corpus: Path) -> Iterator[tuple[str, bytes]]:
    """The capture corpus and the RSS-Bridge fixtures (Atom with a placeholder feed author, MRSS, JSON)."""
    for folder in (corpus / "rss", corpus / "atom", corpus / "malformed", corpus.parent / "fixtures" / "rss_bridge"):
        for path in sorted(folder.glob("*")):
            if path.is_file() and path.suffix != ".md":
                yield f"{folder.name}/{path.name}", path.read_bytes()


def fields(items: tuple[RawItem, ...] | list[RawItem]) -> list[tuple[Any, ...]]:
    return [(i.guid, i.url, i.title, i.text, i.author, i.published, i.parent_ref, i.extra) for i in items]


def known_after(parsed: ParsedFeed) -> dict[bytes, str]:
    """What the store holds after storing `parsed` as a poll does: the first copy of each key, its digest."""
    unique, keys = unique_items(parsed.items)
    return {item.raw_digest: key for item, key in zip(unique, keys, strict=True) if item.raw_digest is not None}


def edit_one_byte(body: bytes, tag: bytes, nth: int, field: bytes) -> bytes:
    """`body` with the first byte of the text of `field` in its `nth` `tag` element changed (a letter stays one)."""
    start = [m.start() for m in re.finditer(tag + b"[ >]", body)][nth]
    at = body.index(b">", body.index(field, start)) + 1
    if body.startswith(b"<![CDATA[", at):
        at += 9
    edited = body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]
    assert edited != body
    return edited


def elements(body: bytes) -> int:
    """Item elements the parse reads (the poll's count of items, duplicates included)."""
    return len(parse_feed(body, url=URL).items)


# --- the parse ---------------------------------------------------------------------------------------------------


def test_every_corpus_feed_parses_as_before_and_again_skips_every_item(corpus: Path) -> None:
    checked = skipped_all = 0
    for name, body in corpus_feeds(corpus):
        try:
            plain = parse_feed(body, url=URL)
        except ParseError:
            continue
        first = parse_feed(body, url=URL, known={})
        assert fields(first.items) == fields(plain.items), name  # digests change nothing of what is read
        assert (first.skipped, first.skipped_keys) == (0, ())
        if plain.format == "jsonfeed":
            continue
        assert all(i.raw_digest is not None and len(i.raw_digest) == 16 for i in first.items), name
        again = parse_feed(body, url=URL, known=known_after(first))
        checked += 1
        unique, keys = unique_items(plain.items)
        if again.items:  # a feed listing one key twice, differently: parsed in full, as before
            assert fields(again.items) == fields(plain.items) and again.skipped == 0, name
            assert len(unique) < len(plain.items), name
            continue
        skipped_all += 1
        assert again.skipped == len(plain.items), name
        assert list(again.skipped_keys) == keys, name
        assert (again.title, again.link, again.format, again.warnings) == (
            plain.title,
            plain.link,
            plain.format,
            plain.warnings,
        ), name
    assert checked >= 50 and skipped_all >= checked - 3, (checked, skipped_all)


def test_one_byte_edited_in_one_item_parses_exactly_that_item(corpus: Path) -> None:
    for name in ("rss/en_bbc-world.xml", "atom/de_heise.atom", "rss/ru_oren-ru_windows-1251.xml"):
        body = (corpus / name).read_bytes()
        known = known_after(parse_feed(body, url=URL, known={}))
        edited = edit_one_byte(body, b"<entry" if name.endswith(".atom") else b"<item", 2, b"<title")
        parsed = parse_feed(edited, url=URL, known=known)
        full = parse_feed(edited, url=URL)
        assert len(parsed.items) == 1, name
        assert parsed.skipped == len(full.items) - 1, name
        assert fields(parsed.items) == fields([full.items[2]]), name
        assert parsed.items[0].raw_digest not in known


RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"{ns}><channel><title>Feed</title><link>{link}</link>{channel_extra}
<item><title>One</title><link>/a/1</link><guid isPermaLink="false">g-1</guid><description>First</description></item>
<item><title>Two</title><link>/a/2</link><guid isPermaLink="false">g-2</guid><description>Second</description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"{base}><title>Feed</title><link href="https://site.example/"/>
<author><name>{author}</name></author>
<entry><id>urn:1</id><title>One</title><link href="a/1"/><content>First</content></entry>
<entry><id>urn:2</id><title>Two</title><link href="a/2"/><content>Second</content></entry>
</feed>"""


def rss(link: str = "https://site.example/", ns: str = "", channel_extra: str = "", base: str = "") -> bytes:
    body = RSS.format(link=link, ns=ns, channel_extra=channel_extra)
    if base:
        body = body.replace("<channel>", f'<channel xml:base="{base}">')
    return body.encode()


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (rss(), rss(link="https://other.example/")),  # the feed's link: the base of relative item links
        (rss(base="https://b1.example/x/"), rss(base="https://b2.example/x/")),  # xml:base in scope
        (rss(), rss(base="https://b1.example/x/")),  # xml:base appearing anywhere
        (rss(), rss(ns=' xmlns="http://purl.org/rss/1.0/"')),  # the core namespace
        (ATOM.format(base="", author="Ann").encode(), ATOM.format(base="", author="Bob").encode()),  # feed author
        (
            ATOM.format(base=' xml:base="https://b1.example/"', author="Ann").encode(),
            ATOM.format(base=' xml:base="https://b2.example/"', author="Ann").encode(),
        ),
    ],
)
def test_a_changed_value_the_items_inherit_parses_every_item_again(before: bytes, after: bytes) -> None:
    known = known_after(parse_feed(before, url=URL, known={}))
    assert parse_feed(before, url=URL, known=known).skipped == 2
    parsed = parse_feed(after, url=URL, known=known)
    assert parsed.skipped == 0
    assert fields(parsed.items) == fields(parse_feed(after, url=URL).items)


def test_a_channel_value_items_do_not_inherit_changes_nothing_and_another_fetch_url_parses_again() -> None:
    known = known_after(parse_feed(rss(), url=URL, known={}))
    bumped = rss(channel_extra="<lastBuildDate>Sun, 01 Mar 2026 12:00:00 GMT</lastBuildDate>")
    assert parse_feed(bumped, url=URL, known=known).skipped == 2
    assert parse_feed(rss(), url="https://feeds.example/rss?v=2", known=known).skipped == 0


def test_two_copies_of_one_key_are_parsed_in_full_so_the_first_copy_stays_the_post() -> None:
    body = rss().replace(b'<guid isPermaLink="false">g-2</guid>', b'<guid isPermaLink="false">g-1</guid>')
    first = parse_feed(body, url=URL, known={})
    known = known_after(first)
    assert len(known) == 1  # the first copy's digest only
    again = parse_feed(body, url=URL, known=known)
    assert again.skipped == 0 and fields(again.items) == fields(first.items)


# --- the store ---------------------------------------------------------------------------------------------------


def a_post(source: str, key: str, title: str, hours: int, digest: bytes | None) -> MatchedPost:
    post = Post(source, key, None, title, "text", None, NOW - timedelta(hours=hours), NOW, content_hash(title, "text"))
    return MatchedPost(replace(post, raw_digest=digest), (Match("t", "text"),), dedupe.signature(title, "text"))


def save(store: Store, source: str, *posts: MatchedPost) -> None:
    store.save_poll(state=SourceState(source), source_type="feed", source_url=None, posts=posts, fetches=(), now=NOW)


def test_known_raw_is_the_newest_posts_of_that_source_with_a_digest(any_store: Store) -> None:
    save(any_store, "a", *(a_post("a", f"k{n}", f"post {n}", n, bytes([n]) * 16) for n in range(5)))
    save(any_store, "a", a_post("a", "old", "no digest", 0, None))
    save(any_store, "b", a_post("b", "k0", "post 0", 0, b"\x00" * 16))
    assert any_store.known_raw("a", 10) == {bytes([n]) * 16: f"k{n}" for n in range(5)}
    assert any_store.known_raw("a", 3) == {bytes([n]) * 16: f"k{n}" for n in range(2)}  # "old" is the newest
    assert any_store.known_raw("b", 10) == {b"\x00" * 16: "k0"}
    assert any_store.known_raw("c", 10) == {}
    edited = a_post("a", "k1", "post 1 edited", 1, b"\xee" * 16)
    save(any_store, "a", edited)
    known = any_store.known_raw("a", 10)
    assert known[b"\xee" * 16] == "k1" and bytes([1]) * 16 not in known  # the digest follows the edit


def old_store(path: Path) -> None:
    """A store as 0007 left it, with one post of the feed served below."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    schema.apply(conn, [n for n in STEPS if n != "0008_raw_digest"])
    conn.execute(
        """INSERT INTO posts (id, source, key, url, title, text, published_at, first_seen_at, content_hash)
           VALUES (1, 'feed', 'g-1', 'https://site.example/a/1', 'One', 'First', '2026-03-01T10:00:00Z',
                   '2026-03-01T10:00:00Z', ?)""",
        (content_hash("One", "First"),),
    )
    conn.close()


def test_a_store_at_0007_migrates_keeping_its_posts_which_are_parsed_as_before(
    tmp_path: Path, raw_server: RawServer
) -> None:
    old_store(tmp_path / "store.db")
    config = one_feed(tmp_path, raw_server, rss())
    with open_sqlite(tmp_path / "store.db") as store:
        assert store.conn.execute("SELECT id, key, raw_digest FROM posts").fetchall() == [(1, "g-1", None)]
        assert store.known_raw("feed", 100) == {}
        (first,) = poll(config, store)
        assert (first.items, first.new_posts, first.updated_posts) == (2, 1, 0)
        rows = store.conn.execute("SELECT key, raw_digest IS NULL FROM posts ORDER BY id").fetchall()
        assert rows == [("g-1", 1), ("g-2", 0)]  # the old post unchanged (parsed, found unchanged), no digest
        (second,) = poll(config, store, now=NOW + timedelta(minutes=5))
        assert (second.items, second.new_posts, second.updated_posts) == (2, 0, 0)


# --- a poll over HTTP --------------------------------------------------------------------------------------------


def one_feed(tmp_path: Path, server: RawServer, body: bytes, names: tuple[str, ...] = ("feed",)) -> Config:
    for name in names:
        server.routes[f"/{name}"] = respond(200, body, {"Content-Type": "application/rss+xml"})
    sources = "\n".join(f"  - {{name: {n}, type: feed, url: '{server.url('/' + n)}', robots: false}}" for n in names)
    return make_config(tmp_path, f"store: store.db\ntopics:\n  t: [first, second, one, two]\nsources:\n{sources}\n")


POST_COLUMNS = "source, key, url, title, text, author, published_at, content_hash, cluster_id, parent_id, raw_digest"


def rows(store: SqliteStore) -> list[tuple[Any, ...]]:
    """The posts, with the cluster (and parent) named by its first post's (source, key): ids depend on the order
    in which concurrent polls of several sources were saved."""
    columns = POST_COLUMNS.replace("cluster_id, parent_id", "cluster, parent").replace(", ", ", p.")
    named = "(SELECT c.source || '/' || c.key FROM posts c WHERE c.id = p.{})"
    return store.conn.execute(
        f"SELECT p.{columns} FROM (SELECT *, {named.format('cluster_id')} AS cluster, "
        f"{named.format('parent_id')} AS parent FROM posts p) p ORDER BY p.source, p.id"
    ).fetchall()


def counts(results: list[RunResult]) -> list[tuple[Any, ...]]:
    return sorted((r.source, r.ok, r.items, r.new_posts, r.updated_posts, r.matches) for r in results)


def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the RSS items parsed (the poll parses inline here: no worker process)."""
    calls = [0]
    real = feedparse._rss_item

    def counted(item: Any, ctx: Any, digest: bytes | None = None) -> RawItem | None:
        calls[0] += 1
        return real(item, ctx, digest)

    monkeypatch.setattr(feedparse, "_rss_item", counted)
    return calls


def test_polls_with_the_skip_store_and_count_what_full_parses_do(
    tmp_path: Path, corpus: Path, raw_server: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = {
        "bbc": (corpus / "rss/en_bbc-world.xml").read_bytes(),
        "ibash": (corpus / "rss/ru_ibash-org-ru_windows-1251.xml").read_bytes(),
        "relative": (corpus / "rss/en_blog_relative-links.xml").read_bytes(),
        "nested": (corpus / "malformed/real_en_feedburner_illegally-nested-items.xml").read_bytes(),
        "twice": (corpus / "malformed/real_en_dylanharris_broken-prolog.xml").read_bytes(),  # one key twice
    }
    names = tuple(bodies)
    calls = parses(monkeypatch)

    def run(folder: Path, skip: bool) -> tuple[list[Any], list[tuple[Any, ...]], list[int]]:
        """Three polls (one byte of one bbc item edited before the third): counts, fetch rows, posts, parses."""
        folder.mkdir()
        config = one_feed(folder, raw_server, b"", names)
        served = dict(bodies)
        parsed = []
        with monkeypatch.context() as patch, open_sqlite(folder / "store.db") as store:
            if not skip:  # as before this change: nothing known, every item parsed
                patch.setattr(SqliteStore, "known_raw", lambda self, source, limit: {})
            results: list[Any] = []
            for n in range(3):
                if n == 2:
                    served["bbc"] = edit_one_byte(served["bbc"], b"<item", 0, b"<description")
                for name in names:
                    raw_server.routes[f"/{name}"] = respond(200, served[name], {"Content-Type": "application/xml"})
                calls[0] = 0
                results.append(counts(poll(config, store, now=NOW + timedelta(minutes=10 * n))))
                parsed.append(calls[0])
            results.append(
                store.conn.execute("SELECT source, items, new_posts FROM fetches ORDER BY source, id").fetchall()
            )
            return results, rows(store), parsed

    *with_skip, parsed_with_skip = run(tmp_path / "skip", skip=True)
    *without, parsed_without = run(tmp_path / "full", skip=False)
    assert with_skip == without
    results = with_skip[0]
    assert results[1] == [(s, ok, items, 0, 0, 0) for s, ok, items, *_ in results[0]]  # all duplicates
    assert next(r for r in results[2] if r[0] == "bbc")[4] == 1  # the edited item updated
    # the skip did skip: later polls parse only the feed with a repeated key (twice: skipping, then in full)
    # and the edited item
    repeated = elements(bodies["twice"])
    assert parsed_with_skip[0] == parsed_without[0] == parsed_without[1] == parsed_without[2]
    assert parsed_with_skip[1] <= 2 * repeated and parsed_with_skip[2] <= 2 * repeated + 1, parsed_with_skip
    assert parsed_with_skip[1] < parsed_without[1] / 2


def test_the_same_feed_on_another_source_is_never_skipped(tmp_path: Path, raw_server: RawServer) -> None:
    with open_sqlite(tmp_path / "store.db") as store:
        poll(one_feed(tmp_path, raw_server, rss(), names=("first",)), store)
        assert store.known_raw("copy", 100) == {} and len(store.known_raw("first", 100)) == 2
        copy_only = one_feed(tmp_path, raw_server, rss(), names=("copy",))
        (copy,) = poll(copy_only, store, now=NOW + timedelta(minutes=1))
        assert (copy.items, copy.new_posts) == (2, 2)  # its own posts: each (source, author) a voice for campaigns
        by_source = store.conn.execute("SELECT source, count(*), count(DISTINCT cluster_id) FROM posts GROUP BY source")
        assert sorted(by_source.fetchall()) == [("copy", 2, 2), ("first", 2, 2)]
        clusters = store.conn.execute("SELECT count(DISTINCT cluster_id) FROM posts").fetchone()[0]
        assert clusters == 2  # each copy joins its original's near-duplicate cluster


def test_an_item_edited_then_edited_back_is_stored_as_each_poll_saw_it(tmp_path: Path, raw_server: RawServer) -> None:
    config = one_feed(tmp_path, raw_server, rss())
    edited = rss().replace(b"<description>First</description>", b"<description>First, edited</description>")
    with open_sqlite(tmp_path / "store.db") as store:
        texts = []
        for n, body in enumerate((rss(), edited, rss())):
            raw_server.routes["/feed"] = respond(200, body, {})
            (result,) = poll(config, store, now=NOW + timedelta(minutes=n))
            texts.append(
                (result.updated_posts, store.conn.execute("SELECT text FROM posts WHERE key = 'g-1'").fetchone())
            )
        assert texts == [(0, ("First",)), (1, ("First, edited",)), (1, ("First",))]


def test_a_deleted_post_is_no_longer_known_and_comes_back_as_new(tmp_path: Path, raw_server: RawServer) -> None:
    config = one_feed(tmp_path, raw_server, rss())
    with open_sqlite(tmp_path / "store.db") as store:
        poll(config, store)
        store.conn.execute("DELETE FROM posts WHERE key = 'g-1'")
        (again,) = poll(config, store, now=NOW + timedelta(minutes=5))
        assert (again.items, again.new_posts) == (2, 1)
        assert [r[1] for r in rows(store)] == ["g-2", "g-1"]


def test_monitor_poll_twice_counts_the_same_duplicates_and_leaves_the_store_as_it_was(
    tmp_path: Path, corpus: Path, raw_server: RawServer
) -> None:
    body = (corpus / "rss/en_cnn.xml").read_bytes()
    raw_server.routes["/feed"] = respond(200, body, {"Content-Type": "application/rss+xml"})
    config = write_config(
        tmp_path,
        f"""
store: store.db
topics:
  world: [world, president]
sources:
  - {{name: feed, type: feed, url: '{raw_server.url("/feed")}', robots: false}}
""",
    )

    def monitor_poll() -> dict[str, Any]:
        done = subprocess.run(
            monitor_cmd(config, "poll", "--format", "json"), capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        (row,) = json.loads(done.stdout)
        return dict(row)

    def stored() -> list[tuple[Any, ...]]:
        with sqlite3.connect(tmp_path / "store.db") as conn:
            return conn.execute(f"SELECT id, {POST_COLUMNS}, first_seen_at, updated_at FROM posts").fetchall()

    first = monitor_poll()
    items = elements(body)
    unique = len(unique_items(parse_feed(body, url=URL).items)[0])
    assert (first["items"], first["new"]) == (unique, unique)
    before = stored()
    assert all(row[-3] is not None for row in before)  # every post has its digest
    second = monitor_poll()
    assert (second["items"], second["new"], second["updated"], second["matches"]) == (unique, 0, 0, 0)
    assert stored() == before
    with sqlite3.connect(tmp_path / "store.db") as conn:
        assert [r[0] for r in conn.execute("SELECT items FROM fetches ORDER BY id")] == [items, items]


# --- generated feeds ---------------------------------------------------------------------------------------------

ITEM = st.fixed_dictionaries(
    {
        "guid": st.sampled_from(["a", "b", "c", "d", None]),
        "title": st.sampled_from(["One", "Two", "Сепаратисты", "", "One & two"]),
        "link": st.sampled_from(["/p/1", "https://x.example/p/2", "", "p/3?utm_source=x"]),
        "text": st.sampled_from(["first", "second <b>bold</b>", "", "third"]),
    }
)


def generated(items: list[Mapping[str, Any]], base: str) -> bytes:
    parts = []
    for item in items:
        guid = f"<guid isPermaLink='false'>{item['guid']}</guid>" if item["guid"] else ""
        link = f"<link>{item['link']}</link>" if item["link"] else ""
        text = item["text"].replace("<", "&lt;")
        title = item["title"].replace("&", "&amp;")
        parts.append(f"<item><title>{title}</title>{link}{guid}<description>{text}</description></item>")
    head = f" xml:base='{base}'" if base else ""
    return (
        f"<rss version='2.0'><channel{head}><link>https://site.example/</link>{''.join(parts)}</channel></rss>".encode()
    )


@pytest.fixture(scope="module")
def module_server() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    polls=st.lists(
        st.tuples(st.lists(ITEM, max_size=6), st.sampled_from(["", "https://b.example/d/"])), min_size=2, max_size=3
    )
)
def test_generated_feeds_polled_with_the_skip_store_what_full_parses_store(
    module_server: RawServer, monkeypatch: pytest.MonkeyPatch, polls: list[tuple[list[Mapping[str, Any]], str]]
) -> None:
    outcomes = []
    for skip in (True, False):
        with tempfile.TemporaryDirectory() as tmp, monkeypatch.context() as patch:
            if not skip:
                patch.setattr(SqliteStore, "known_raw", lambda self, source, limit: {})
            config = one_feed(Path(tmp), module_server, b"")
            results = []
            with open_sqlite(Path(tmp) / "store.db") as store:
                for n, (items, base) in enumerate(polls):
                    module_server.routes["/feed"] = respond(200, generated(items, base), {})
                    results.append(counts(poll(config, store, now=NOW + timedelta(minutes=n))))
                outcomes.append((results, rows(store)))
    assert outcomes[0] == outcomes[1]


def test_the_poll_reads_digests_once_the_body_is_in_and_never_for_a_304(
    tmp_path: Path, raw_server: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    real = SqliteStore.known_raw

    def spy(self: SqliteStore, source: str, limit: int) -> dict[bytes, str]:
        asked.append(limit)
        return real(self, source, limit)

    monkeypatch.setattr(SqliteStore, "known_raw", spy)

    def handler(req: Any) -> None:
        if req.headers.get("If-None-Match") == '"v1"':
            respond(304)(req)
        else:
            respond(200, rss(), {"ETag": '"v1"'})(req)

    config = one_feed(tmp_path, raw_server, b"")
    raw_server.routes["/feed"] = handler
    with open_sqlite(tmp_path / "store.db") as store:
        poll(config, store)
        (second,) = poll(config, store, now=NOW + timedelta(minutes=1))
    assert second.not_modified
    assert asked == [2 * 2 + 50]  # twice the items of the body, and 50


def test_parse_feed_with_known_pickles_for_the_worker_process() -> None:
    import pickle

    parsed = parse_feed(rss(), url=URL, known={})
    again = parse_feed(rss(), url=URL, known=pickle.loads(pickle.dumps(known_after(parsed))))
    assert pickle.loads(pickle.dumps(again)) == again and again.skipped == 2
