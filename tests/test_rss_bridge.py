"""RSS-Bridge output (Atom, JSON Feed, MRSS) read by the feed parser, and served as `feed` sources through
the real pipeline with RSS-Bridge's URL format. Fixtures and their origin: tests/fixtures/rss_bridge/README.md.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from monitor.collectors import SOURCE_MODELS
from monitor.collectors.feed import FeedSource
from monitor.collectors.feedparse import ParsedFeed, parse_feed
from monitor.collectors.fetch import Fetcher
from monitor.config import parse_config
from monitor.match import Matcher
from monitor.pipeline import run_source
from monitor.store.sqlite import SqliteStore
from monitor.types import RunResult
from tests.conftest import NOW, make_config

FIXTURES = Path(__file__).parent / "fixtures" / "rss_bridge"
DOC = Path(__file__).resolve().parents[1] / "docs" / "rss-bridge.md"
INSTANCE = "http://127.0.0.1:3000/"
MIME = {".xml": "application/atom+xml", ".json": "application/json"}  # AtomFormat / JsonFormat MIME_TYPE
Expected = tuple[str | None, str | None, str, str | None, str, str]  # guid, url, title, author, published, text


def parse(name: str, content_type: str | None = None) -> ParsedFeed:
    path = FIXTURES / name
    return parse_feed(
        path.read_bytes(), url=INSTANCE + "?action=display", content_type=content_type or MIME[path.suffix]
    )


def facts(feed: ParsedFeed) -> list[Expected]:
    return [
        (i.guid, i.url, i.title, i.author, i.published.isoformat() if i.published else "", i.text[:60])
        for i in feed.items
    ]


JSONFEED_ANNOUNCEMENT = "We — Manton Reece and Brent Simmons — have noticed that JSON has become"[:60]
STAR_CITY = "How do Americans get ready to work with Russians aboard the International"[:60]
COMMON: list[Expected] = [
    ("http://example.com/blog/test-entry", "http://example.com/blog/test-entry", "Test Entry", "fulmeek",
     "2018-12-01T12:00:00+00:00", "Hello world, this is a test entry."),
    ("https://jsonfeed.org/2017/05/17/announcing_json_feed", "https://jsonfeed.org/2017/05/17/announcing_json_feed",
     "Announcing JSON Feed", "Brent Simmons and Manton Reece", "2017-05-17T13:02:12+00:00", JSONFEED_ANNOUNCEMENT),
    ("urn:sha1:dd6b6c920d3b340ab9e07faf6682f2a7c4f70134", "http://example.org/2005/04/02/atom",
     "Atom draft-07 snapshot", "Mark Pilgrim", "2005-07-31T12:29:29+00:00", "[Update: The Atom draft is finished.]"),
    ("http://liftoff.msfc.nasa.gov/news/2003/news-starcity.asp",
     "http://liftoff.msfc.nasa.gov/news/2003/news-starcity.asp", "Star City", None, "2003-06-03T09:39:21+00:00",
     STAR_CITY),
]  # fmt: skip


# ---------------------------------------------------------------- upstream expected outputs


def test_json_format_common_sample() -> None:
    feed = parse("upstream_json_common.json")
    assert (feed.format, feed.title, feed.link) == (
        "jsonfeed",
        "Sample feed with common data",
        "https://example.com/blog/",
    )
    expected = [((g or "").removeprefix("urn:sha1:"), *rest) for g, *rest in COMMON]  # JsonFormat: id = the bare uid
    assert facts(feed) == expected
    assert feed.items[1].text.endswith("Craig Hockenberry spent a little time making it look pretty. :)")
    assert "<" not in feed.items[1].text and "\n" in feed.items[1].text  # paragraphs kept as lines


def test_atom_format_common_sample() -> None:
    feed = parse("upstream_atom_common.xml")
    assert (feed.format, feed.title, feed.link) == ("atom", "Sample feed with common data", "https://example.com/blog/")
    assert [f[:3] + f[4:] for f in facts(feed)] == [c[:3] + c[4:] for c in COMMON]  # authors: see below
    assert [i.author for i in feed.items[:3]] == ["fulmeek", "Brent Simmons and Manton Reece", "Mark Pilgrim"]


def test_atom_entries_without_an_author_have_none() -> None:
    assert parse("upstream_atom_common.xml").items[3].author is None
    assert [i.author for i in parse("upstream_atom_microblog.xml").items] == [None, None]


def test_mrss_format_common_sample() -> None:
    feed = parse("upstream_mrss_common.xml", "application/rss+xml")
    assert feed.format == "rss2" and len(feed.items) == 4
    assert [(i.guid, i.url, i.title) for i in feed.items] == [
        ((c[0] or "").removeprefix("urn:sha1:"), c[1], c[2]) for c in COMMON
    ]
    assert [i.published for i in feed.items] == [datetime.fromisoformat(c[4]) for c in COMMON]
    assert all(i.author is None for i in feed.items)  # MrssFormat writes no author


@pytest.mark.parametrize("name", ["upstream_json_microblog.json", "upstream_atom_microblog.xml"])
def test_microblog_items_without_link_are_keyed_by_their_uid(name: str) -> None:
    feed = parse(name)
    assert [i.url for i in feed.items] == [None, None]
    assert [i.guid.removeprefix("urn:sha1:") for i in feed.items if i.guid] == [
        "1918f084648b82057c1dd3faa3d091da82a6fac2",
        "e62189168a06dfa74f61c621c79c33c4c8517e1f",
    ]
    assert feed.items[0].text == "Oh 😲 I found three monkeys 🙈🙉🙊"
    assert feed.items[1].published == datetime.fromisoformat("2018-10-07T16:38:17+00:00")


@pytest.mark.parametrize("name", ["upstream_json_empty.json", "upstream_atom_empty.xml"])
def test_a_bridge_with_nothing_new_is_an_empty_feed_not_an_error(name: str) -> None:
    feed = parse(name)
    assert feed.items == () and feed.title == "Sample feed with minimum data"


# ---------------------------------------------------------------- hand-built bridge outputs


def test_instagram_bridge_atom() -> None:
    feed = parse("instagram_username_atom.xml")
    assert feed.title == "qazaq_qogam - Instagram Bridge" and feed.link == "https://www.instagram.com/qazaq_qogam/"
    first, video, gallery = feed.items
    assert first.guid == first.url == "https://www.instagram.com/p/DFq3xYz1AbC/"  # not the enclosure link
    assert first.author == "qazaq_qogam" and first.published == datetime.fromisoformat("2026-02-28T09:15:00+00:00")
    assert first.text == (
        "Халық кеңесі бүгін Алматыда жиналды.\n"
        "Народный совет собрался сегодня в Алматы, обсуждали языковую политику & местное самоуправление.\n"
        "#халықкеңесі @almaty_akimat"
    )
    assert video.title == "▶ Видео с площади: люди требуют ответа от акимата"
    assert video.text == "Видео с площади: люди требуют ответа от акимата"
    assert gallery.guid == "urn:sha1:3f7a1c2e9b0d4e5f6a7b8c9d0e1f2a3b4c5d6e7f"
    assert gallery.url == "https://www.instagram.com/p/DFl1AsDfGhJ/"


def test_facebook_bridge_json_with_php_escapes() -> None:
    feed = parse("facebook_user_json.json")
    assert feed.title == "Народный совет Казахстана"
    statement, note, notice = feed.items
    assert statement.guid == statement.url == "https://www.facebook.com/narodnyisovet.kz/posts/pfbid02Kq7wXyZ"
    assert statement.title == "Заявление Народного совета о сепаратизме"
    assert statement.author == "Народный совет Казахстана"
    assert statement.text == (
        "Народный совет осуждает любые призывы к сепаратизму.\nХалық кеңесі елдің тұтастығын қолдайды. Полный текст"
    )
    assert (note.title, note.author, note.text) == ("", None, "Встреча с жителями Шымкента перенесена на пятницу.")
    assert note.published == datetime.fromisoformat("2026-02-26T08:05:12+00:00")
    assert notice.guid == "6f1d0a3c2b9e8d7c6b5a49382716f5e4d3c2b1a0" and notice.url is None
    assert notice.text == "Жиын «Халық кеңесі» ғимаратында өтеді.\nСобрание пройдёт в здании совета."


# ---------------------------------------------------------------- as feed sources, through the pipeline


def doc_config_block() -> str:
    match = re.search(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert match, "docs/rss-bridge.md has no ```yaml block"
    return match.group(1)


def test_the_config_block_in_the_docs_is_valid(tmp_path: Path) -> None:
    config = parse_config(doc_config_block(), base_dir=tmp_path, source_types=SOURCE_MODELS)
    bridges = [s for s in config.sources if isinstance(s, FeedSource)]
    assert len(bridges) >= 3 and all("action=display" in s.url and "&format=" in s.url for s in bridges)
    assert {re.search(r"bridge=(\w+)", s.url).group(1) for s in bridges} >= {  # type: ignore[union-attr]
        "InstagramBridge",
        "FacebookBridge",
        "TwitterBridge",
    }


@pytest.mark.parametrize(
    ("name", "fmt", "matching"), [("instagram_username_atom.xml", "Atom", 1), ("facebook_user_json.json", "Json", 2)]
)
def test_bridge_feed_through_the_pipeline(
    tmp_path: Path, httpserver: HTTPServer, store: SqliteStore, name: str, fmt: str, matching: int
) -> None:
    query = f"action=display&bridge=InstagramBridge&context=Username&u=qazaq_qogam&format={fmt}"
    content_type = MIME[Path(name).suffix] + ("" if fmt == "Atom" else "; charset=UTF-8")
    httpserver.expect_request("/", query_string=query).respond_with_data(
        (FIXTURES / name).read_bytes(), content_type=content_type
    )
    config = make_config(
        tmp_path,
        f"""
        topics:
          peoples-council: ["Народный совет*", "Халық кеңесі"]
        sources:
          - name: ig-bridge
            type: feed
            url: "{httpserver.url_for("/")}?{query}"
            interval: 30m
            robots: false
        """,
    )

    def run(now: datetime) -> RunResult:
        async def go() -> RunResult:
            async with Fetcher(user_agent="t", clock=lambda: now) as fetcher:
                return await run_source(
                    config.sources[0], fetcher=fetcher, store=store, matcher=Matcher(config.topics), now=now
                )

        return asyncio.run(go())

    first = run(NOW)
    assert first.ok and first.new_posts == 3 and first.topics == ("peoples-council",)
    assert run(NOW + timedelta(minutes=30)).new_posts == 0
    assert store.conn.execute("SELECT count(*) FROM matches WHERE topic = 'peoples-council'").fetchone()[0] == matching
