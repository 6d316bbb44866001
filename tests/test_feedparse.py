"""Feed parsing: golden files for every corpus feed, plus the hostile and edge cases.

Golden files live in tests/golden/feeds/, one JSON per corpus feed: the feed's title, link, format
and its items (guid, url, title, the first 200 characters of text, author, published ISO).
Regenerate them after a deliberate change, then review the diff:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_feedparse.py
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from monitor.collectors.feedparse import MAX_ITEMS, ParsedFeed, parse_feed
from monitor.collectors.links import absolute_url
from monitor.exceptions import ParseError
from tests.conftest import CORPUS

GOLDEN = Path(__file__).parent / "golden" / "feeds"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

# corpus file -> (the URL it is read as fetched from, the Content-Type it is served with)
EX = "https://feeds.example.org/"
FEEDS: dict[str, tuple[str, str | None]] = {
    "rss/de_golem_iso-8859-1.xml": ("https://rss.golem.de/rss.php?feed=RSS2.0", None),
    "rss/de_heise_rdf.xml": ("https://www.heise.de/newsticker/heise.rdf", None),
    "rss/en_al-monitor_xml-base.xml": (EX + "al-monitor.xml", None),
    "rss/en_aljazeera_no-xml-decl.xml": ("https://www.aljazeera.com/xml/rss/all.xml", None),
    "rss/en_bbc-world.xml": ("https://feeds.bbci.co.uk/news/world/rss.xml", None),
    "rss/en_blog_missing-dates.xml": (EX + "missing-dates.xml", None),
    "rss/en_blog_relative-links.xml": ("https://csaba.example.org/blog/index.xml", None),
    "rss/en_cnn.xml": (EX + "cnn.rss", None),
    "rss/en_davidbau_rdf_iso-8859-1.xml": ("https://davidbau.com/index.rdf", None),
    "rss/en_dawn-pk_escaped-html.xml": (EX + "dawn.xml", None),
    "rss/en_dw_rdf.xml": (EX + "dw.rdf", None),
    "rss/en_foreignpolicy.xml": ("https://foreignpolicy.com/feed/", None),
    "rss/en_koreatimes_bad-dates.xml": (EX + "koreatimes.rss", None),
    "rss/en_mercopress_crlf-no-decl.xml": ("https://en.mercopress.com/rss/", None),
    "rss/en_nytimes-world.xml": ("https://rss.nytimes.com/services/xml/rss/nyt/World.xml", None),
    "rss/en_reddit-frontpage.xml": ("https://www.reddit.com/.rss", None),
    "rss/en_restofworld.xml": ("https://restofworld.org/feed/latest", None),
    "rss/fr_lemonde.xml": ("http://www.lemonde.fr/rss/une.xml", None),
    "rss/pt_jn-pt_iso-8859-1.xml": (EX + "jn.xml", None),
    "rss/ru_aif-ru.xml": (EX + "aif.xml", None),
    "rss/ru_ibash-org-ru_windows-1251.xml": (EX + "ibash.xml", None),
    "rss/ru_koi8-r_synthetic.xml": ("http://example.com/rss.xml", None),
    "rss/ru_meduza-io_trimmed.xml": ("https://meduza.io/rss/all", None),
    "rss/ru_oren-ru_windows-1251.xml": (EX + "oren.xml", "text/xml"),
    "rss/uk_suspilne-media_ukrnet.xml": ("https://suspilne.media/rss/ukrnet.rss", None),
    "rss/ur_bbc-urdu.xml": (EX + "urdu.xml", None),
    "atom/de_heise.atom": ("http://www.heise.de/developer/rss/news-atom.xml", "application/atom+xml"),
    "atom/en_bearblog_escaped-html.atom": ("https://herman.bearblog.dev/feed/", None),
    "atom/en_blogger.atom": (EX + "blogger.atom", None),
    "atom/en_github-commits.atom": ("https://github.com/miniflux/v2/commits/main.atom", None),
    "atom/en_intertwingly_blog.atom": ("http://intertwingly.net/blog/index.atom", None),
    "atom/en_kottke_cdata.atom": ("https://feeds.kottke.org/main", None),
    "atom/en_rainmeter-forum_phpbb.atom": ("http://rainmeter.net/forum/feed.php", None),
    "atom/en_talkingpointsmemo.atom": ("http://talkingpointsmemo.com/feed/all", None),
    "atom/en_youtube-channel.atom": (EX + "youtube.atom", None),
    "malformed/ffp_declares-utf16-is-ascii_synthetic.xml": ("https://example.com/feed.xml", None),
    "malformed/fp_aaa_illformed_truncated-root.xml": ("http://example.com/feed.xml", None),
    "malformed/fp_bogus_encoding.xml": ("http://example.com/feed.xml", None),
    "malformed/fp_encoding_mismatch_crash.xml": ("http://example.com/feed.xml", None),
    "malformed/fp_high_bit_date_iso-8859-7.xml": ("http://example.com/feed.xml", "text/xml"),
    "malformed/fp_http_text_plain.xml": ("http://example.com/feed.xml", "text/plain"),
    "malformed/fp_invalid-bytes-with-bom.xml": ("http://example.com/feed.xml", None),
    "malformed/fp_koi8r_no-encoding-declared.xml": ("http://example.com/feed.xml", None),
    "malformed/fp_rss_incomplete_cdata.xml": ("http://example.com/feed.xml", None),
    "malformed/fp_undeclared_entity.xml": ("http://example.com/feed.xml", None),
    "malformed/fp_undeclared_namespace.xml": ("http://example.com/feed.xml", None),
    "malformed/mf_invalid-prolog_encoding.xml": ("https://example.com/feed.xml", None),
    "malformed/nf_saxerror.xml": ("http://example.com/feed.xml", None),
    "malformed/real_en_androidauthority_leading-blank-lines.xml": (
        "https://www.androidauthority.com/feed/",
        None,
    ),
    "malformed/real_en_dylanharris_broken-prolog.xml": ("https://dylanharris.org/feed-me.rss", None),
    "malformed/real_en_feedburner_illegally-nested-items.xml": (EX + "dvorak.xml", None),
    "malformed/real_en_theguardian-world_unescaped-ampersand.xml": (
        "https://www.theguardian.com/world/rss",
        None,
    ),
    "malformed/real_it_lucasdelirium_raw-html-in-description.xml": (EX + "lucasdelirium.xml", None),
    "malformed/real_ru_oren-ru_gzip-bytes-named-xml.xml.gz": (EX + "oren.xml", "application/xml"),
}


def _read(rel: str) -> ParsedFeed:
    url, content_type = FEEDS[rel]
    return parse_feed((CORPUS / rel).read_bytes(), url=url, content_type=content_type)


def _as_golden(rel: str, feed: ParsedFeed) -> dict[str, Any]:
    url, content_type = FEEDS[rel]
    return {
        "source": rel,
        "url": url,
        "content_type": content_type,
        "format": feed.format,
        "title": feed.title,
        "link": feed.link,
        "count": len(feed.items),
        "items": [
            {
                "guid": item.guid,
                "url": item.url,
                "title": item.title,
                "text": item.text[:200],
                "author": item.author,
                "published": item.published.isoformat() if item.published else None,
            }
            for item in feed.items
        ],
    }


def _golden_path(rel: str) -> Path:
    return GOLDEN / (rel.replace("/", "__").removesuffix(".gz") + ".json")


@pytest.mark.parametrize("rel", sorted(FEEDS))
def test_corpus_feed_matches_golden(corpus: Path, rel: str) -> None:
    actual = _as_golden(rel, _read(rel))
    path = _golden_path(rel)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert actual == expected


def test_every_golden_file_has_a_feed() -> None:
    names = {_golden_path(rel).name for rel in FEEDS}
    stale = sorted(p.name for p in GOLDEN.glob("*.json") if p.name not in names)
    assert not stale


# ---- counts and facts checked by hand (they hold whatever the golden files say)


@pytest.mark.parametrize(
    ("rel", "count"),
    [
        ("malformed/real_en_feedburner_illegally-nested-items.xml", 10),
        ("malformed/real_en_theguardian-world_unescaped-ampersand.xml", 54),
        ("malformed/real_en_dylanharris_broken-prolog.xml", 35),
        ("malformed/nf_saxerror.xml", 3),
        ("malformed/real_ru_oren-ru_gzip-bytes-named-xml.xml.gz", 10),
        ("rss/en_koreatimes_bad-dates.xml", 195),
        ("rss/en_dw_rdf.xml", 141),
        ("atom/en_kottke_cdata.atom", 60),
    ],
)
def test_item_counts(corpus: Path, rel: str, count: int) -> None:
    assert len(_read(rel).items) == count


@pytest.mark.parametrize(
    ("rel", "title"),
    [
        ("rss/ru_oren-ru_windows-1251.xml", "В Бузулуке главные стройплощадки – детсад и Ледовый дворец"),
        (
            "malformed/real_ru_oren-ru_gzip-bytes-named-xml.xml.gz",
            "В Бузулуке главные стройплощадки – детсад и Ледовый дворец",
        ),
        ("rss/ru_ibash-org-ru_windows-1251.xml", "Цитата #17703"),
        ("rss/ru_koi8-r_synthetic.xml", "Первая новость"),
        ("malformed/fp_koi8r_no-encoding-declared.xml", "Как пережить новогоднюю ночь"),
        ("rss/pt_jn-pt_iso-8859-1.xml", "Mãe de utente é a nova presidente da Raríssimas"),
        ("malformed/mf_invalid-prolog_encoding.xml", "Café"),
    ],
)
def test_non_utf8_and_lying_encodings_decode(corpus: Path, rel: str, title: str) -> None:
    assert _read(rel).items[0].title == title


def test_relative_links_resolve_against_the_feed_link(corpus: Path) -> None:
    feed = _read("rss/en_blog_relative-links.xml")
    assert feed.link == "https://csaba.example.org/blog/"
    assert feed.items[0].url == "https://csaba.example.org/blog/teaching-elderly-people-to-use-android/"


def test_missing_dates_stay_none(corpus: Path) -> None:
    items = _read("rss/en_blog_missing-dates.xml").items
    assert sum(1 for i in items if i.published is None) == 7


def test_sloppy_rfc822_dates(corpus: Path) -> None:
    item = _read("rss/en_koreatimes_bad-dates.xml").items[0]  # "Thu,28 Jul 2022 4:35:5 GMT+9"
    assert item.published == datetime(2022, 7, 27, 19, 35, 5, tzinfo=UTC)


def test_escaped_html_becomes_text(corpus: Path) -> None:
    for rel in (
        "rss/en_dawn-pk_escaped-html.xml",
        "atom/en_bearblog_escaped-html.atom",
        "rss/en_reddit-frontpage.xml",
    ):
        for item in _read(rel).items:
            assert "<p" not in item.text and "&lt;" not in item.text and "&amp;" not in item.text


def test_raw_html_elements_in_description_are_kept_as_text(corpus: Path) -> None:
    item = _read("malformed/real_it_lucasdelirium_raw-html-in-description.xml").items[0]
    assert item.text.startswith("L'Ordine dei Giganti: è arrivato il DLC di Indy")
    assert "Death By Scrolling" in item.text


def test_undeclared_entity_is_kept_as_text(corpus: Path) -> None:
    assert _read("malformed/fp_undeclared_entity.xml").title == "testing &doesnotexist; entity"


def test_empty_document_is_a_parse_error(corpus: Path) -> None:
    body = (CORPUS / "malformed/fp_rss_empty_document.xml").read_bytes()
    with pytest.raises(ParseError, match="empty document"):
        parse_feed(body, url="http://example.com/feed.xml")


# ---- synthetic documents

URL = "https://example.org/feed.xml"


def _rss(items: str, channel: str = "<title>T</title><link>https://example.org/</link>") -> bytes:
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{channel}{items}</channel></rss>'.encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>bomb</title>
<item><title>boom &lol9;</title><description>&lol9;</description><link>https://example.org/1</link></item>
</channel></rss>"""


def test_billion_laughs_does_not_expand() -> None:
    feed = parse_feed(BILLION_LAUGHS, url=URL)
    item = feed.items[0]
    # the reference stays an inert, unexpanded name; expansion would give 10**9 "lol"s
    assert "lollol" not in item.title + item.text
    assert len(item.title) < 30 and len(item.text) < 30


def test_internal_entities_are_never_expanded() -> None:
    """Small enough for libxml2's own amplification guard to let through: only our settings stop it."""
    body = BILLION_LAUGHS.replace(b"&lol9;", b"&lol3;")
    item = parse_feed(body, url=URL).items[0]
    assert "lollol" not in item.title + item.text


def test_external_entity_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    for target in (secret.as_uri(), "file:///etc/passwd"):
        body = (
            f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{target}">]>'
            '<rss version="2.0"><channel><title>x</title><item><title>a &xxe; b</title>'
            "<description>&xxe;</description><link>https://example.org/1</link></item></channel></rss>"
        ).encode()
        item = parse_feed(body, url=URL).items[0]
        assert "TOP-SECRET" not in item.title + item.text
        assert "root:" not in item.title + item.text


def test_external_dtd_is_not_loaded(tmp_path: Path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY leak "LEAKED-FROM-DTD">')
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{dtd.as_uri()}">'
        '<rss version="2.0"><channel><item><title>a &leak; b</title><link>https://example.org/1</link>'
        "</item></channel></rss>"
    ).encode()
    item = parse_feed(body, url=URL).items[0]
    assert "LEAKED" not in item.title


def test_items_are_bounded() -> None:
    many = "".join(f"<item><title>n{i}</title></item>" for i in range(MAX_ITEMS + 10))
    assert len(parse_feed(_rss(many), url=URL).items) == MAX_ITEMS


def test_html_page_is_not_a_feed() -> None:
    page = b"<!DOCTYPE html>\n<html><head><title>Hi</title></head><body><p>x</p></body></html>"
    with pytest.raises(ParseError, match="not a feed: HTML page"):
        parse_feed(page, url=URL, content_type="text/html")
    with pytest.raises(ParseError, match="not a feed: HTML page"):
        parse_feed(b"<html><body>no doctype</body></html>", url=URL)


@pytest.mark.parametrize("body", [b"", b"   \n\t ", b"<!-- only a comment -->"])
def test_empty_documents(body: bytes) -> None:
    with pytest.raises(ParseError, match="empty document"):
        parse_feed(body, url=URL)


def test_other_xml_is_not_a_feed() -> None:
    with pytest.raises(ParseError, match=r"not a feed: root element <opml>"):
        parse_feed(b"<opml version='2.0'><body/></opml>", url=URL)


def test_garbage_is_a_one_line_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(b"\x00\x01\x02 not xml at all <<<", url=URL)
    assert "\n" not in str(caught.value)


def test_items_with_nothing_are_dropped() -> None:
    body = _rss("<item><guid isPermaLink='false'>x</guid></item><item><title>kept</title></item>")
    assert [i.title for i in parse_feed(body, url=URL).items] == ["kept"]


def test_fullest_text_wins_and_is_plain() -> None:
    body = _rss(
        '<item xmlns:content="http://purl.org/rss/1.0/modules/content/"><title>A &amp; B</title>'
        "<description>short</description>"
        "<content:encoded><![CDATA[<p>The <b>full</b> text.</p><script>evil()</script><p>Second.</p>]]>"
        "</content:encoded><link>/a</link></item>"
    )
    item = parse_feed(body, url=URL).items[0]
    assert item.title == "A & B"
    assert item.text == "The full text.\nSecond."
    assert item.url == "https://example.org/a"


def test_guid_permalink_is_the_link_when_there_is_no_link() -> None:
    body = _rss("<item><title>t</title><guid>https://example.org/p/1</guid></item>")
    item = parse_feed(body, url=URL).items[0]
    assert item.guid == item.url == "https://example.org/p/1"
    body = _rss("<item><title>t</title><guid isPermaLink='false'>https://example.org/p/1</guid></item>")
    assert parse_feed(body, url=URL).items[0].url is None


def test_rss_author_email_and_dc_creator() -> None:
    body = _rss(
        "<item xmlns:dc='http://purl.org/dc/elements/1.1/'><title>t</title>"
        "<author>jane@example.org (Jane Doe)</author></item>"
        "<item xmlns:dc='http://purl.org/dc/elements/1.1/'><title>u</title><dc:creator>Иван</dc:creator></item>"
    )
    assert [i.author for i in parse_feed(body, url=URL).items] == ["Jane Doe", "Иван"]


def test_http_charset_is_used_when_the_document_says_nothing() -> None:
    body = _rss("<item><title>Новости</title></item>").decode().encode("cp1251")
    feed = parse_feed(body, url=URL, content_type="application/rss+xml; charset=windows-1251")
    assert feed.items[0].title == "Новости"


def test_windows_1251_feed_without_any_declaration_is_sniffed() -> None:
    body = _rss("<item><title>Сепаратисты заявили о создании народного совета</title></item>")
    feed = parse_feed(body.decode().encode("cp1251"), url=URL)
    assert feed.items[0].title == "Сепаратисты заявили о создании народного совета"


def test_gzip_body_is_inflated() -> None:
    body = gzip.compress(_rss("<item><title>zipped</title></item>"))
    assert parse_feed(body, url=URL).items[0].title == "zipped"


def test_truncated_feed_keeps_complete_items() -> None:
    whole = _rss("<item><title>one</title></item><item><title>two</title></item>")
    body = whole[: whole.index(b"</item></channel>") + 3]  # cut inside the last end tag
    assert [i.title for i in parse_feed(body, url=URL).items] == ["one", "two"]


def test_atom_xml_base_and_alternate_link() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://example.net/blog/">
 <title type="html">My &lt;b&gt;Blog&lt;/b&gt;</title>
 <link rel="self" href="/feed.atom"/><link href="./"/>
 <author><name>Feed Author</name></author>
 <entry xml:base="2024/">
  <id>tag:example.net,2024:1</id><title>First</title>
  <link rel="edit" href="/edit/1"/><link rel="alternate" type="text/html" href="first.html"/>
  <updated>2024-01-02T03:04:05+02:00</updated>
  <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Hello</p><p>World</p></div></content>
 </entry>
 <entry><id>2</id><title type="text">Plain &lt;not a tag&gt;</title><link href="/second"/>
  <published>2024-02-01T00:00:00Z</published><updated>2024-03-01T00:00:00Z</updated>
  <summary>Some summary</summary><author><name>Other</name></author></entry>
</feed>"""
    feed = parse_feed(body, url="https://feeds.example.net/atom")
    assert (feed.format, feed.title, feed.link) == ("atom", "My Blog", "https://example.net/blog/")
    first, second = feed.items
    assert first.url == "https://example.net/blog/2024/first.html"
    assert first.text == "Hello\nWorld"
    assert first.author == "Feed Author"
    assert first.published == datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert second.url == "https://example.net/second"
    assert second.title == "Plain <not a tag>"
    assert second.published == datetime(2024, 2, 1, tzinfo=UTC)
    assert second.author == "Other"


def test_rss1_rdf_with_dc_date() -> None:
    body = b"""<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/"><channel rdf:about="x"><title>R</title><link>https://r.example/</link>
 </channel><item rdf:about="https://r.example/1"><title>One</title><link>https://r.example/1</link>
 <dc:date>2023-04-18T14:05:00+03:00</dc:date></item></rdf:RDF>"""
    feed = parse_feed(body, url=URL)
    assert feed.format == "rss1"
    assert feed.items[0].published == datetime(2023, 4, 18, 11, 5, tzinfo=UTC)


JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "JSON Feed",
    "home_page_url": "https://json.example/",
    "authors": [{"name": "Feed Author"}],
    "items": [
        {
            "id": "1",
            "url": "/posts/1",
            "title": "Hello & welcome",
            "content_html": "<p>Hi <b>there</b></p><p>Para 2</p>",
            "content_text": "Hi there",
            "date_published": "2024-05-06T07:08:09+03:00",
        },
        {"id": 2, "external_url": "https://elsewhere.example/x", "content_text": "Only text\n\nwith <angle>"},
        {"id": "3"},
        "not an object",
    ],
}


def test_json_feed_1_1() -> None:
    body = json.dumps(JSON_FEED).encode()
    feed = parse_feed(body, url="https://json.example/feed.json", content_type="application/feed+json")
    assert (feed.format, feed.title, feed.link) == ("jsonfeed", "JSON Feed", "https://json.example/")
    first, second = feed.items
    assert first.guid == "1" and first.url == "https://json.example/posts/1"
    assert first.title == "Hello & welcome"
    assert first.text == "Hi there\nPara 2"
    assert first.author == "Feed Author"
    assert first.published == datetime(2024, 5, 6, 4, 8, 9, tzinfo=UTC)
    assert second.guid == "2" and second.url == "https://elsewhere.example/x"
    assert second.text == "Only text\nwith <angle>"


def test_rss_bridge_json_feed_1_0() -> None:
    """RSS-Bridge's JSON output: version 1, `author` object, content_html, date_modified only."""
    doc = {
        "version": "https://jsonfeed.org/version/1",
        "title": "Telegram Bridge",
        "home_page_url": "https://t.me/s/somechannel",
        "items": [
            {
                "id": "https://t.me/somechannel/42",
                "url": "https://t.me/somechannel/42",
                "title": "Народный совет собрался",
                "content_html": "<div>Народный совет <br>собрался</div>",
                "date_modified": "2024-05-06T07:08:09+00:00",
                "author": {"name": "Канал"},
            }
        ],
    }
    feed = parse_feed(json.dumps(doc, ensure_ascii=False).encode(), url="https://bridge.example/?format=Json")
    item = feed.items[0]
    assert item.text == "Народный совет\nсобрался"
    assert item.author == "Канал"
    assert item.published == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_rss_bridge_atom_output() -> None:
    body = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
 <title type="text">Telegram Bridge</title><id>https://bridge.example/?action=display</id>
 <updated>2024-05-06T07:08:09+00:00</updated>
 <link rel="alternate" type="text/html" href="https://t.me/s/somechannel"/>
 <entry><title type="html"><![CDATA[Сепаратизм &amp; закон]]></title>
  <published>2024-05-06T07:08:09+00:00</published><updated>2024-05-06T07:08:09+00:00</updated>
  <id>https://t.me/somechannel/42</id><link rel="alternate" type="text/html" href="https://t.me/somechannel/42"/>
  <author><name>Канал</name></author>
  <content type="html"><![CDATA[<div class="tgme">Текст <a href="x">поста</a></div>]]></content></entry>
</feed>""".encode()
    item = parse_feed(body, url="https://bridge.example/?format=Atom").items[0]
    assert (item.title, item.text, item.author) == ("Сепаратизм & закон", "Текст поста", "Канал")


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"version": "x"}', b'{"items": "nope"}', b"[" * 100_000 + b"]" * 100_000],
)
def test_bad_json_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(ParseError):
        parse_feed(body, url=URL, content_type="application/json")


SAMPLE = _rss(
    "<item><title>Народный совет &amp; co</title><link>/a?x=1&amp;y=2</link>"
    "<description>&lt;p&gt;Text&lt;/p&gt;</description>"
    "<pubDate>Tue, 17 Feb 2026 20:01:20 +0500</pubDate></item>"
    "<item><title>two</title><guid>https://example.org/2</guid></item>"
)


@given(st.binary(max_size=3000), st.sampled_from([None, "text/xml", "application/json", "text/html"]))
def test_arbitrary_bytes_give_a_feed_or_a_parse_error(body: bytes, content_type: str | None) -> None:
    try:
        feed = parse_feed(body, url=URL, content_type=content_type)
    except ParseError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(item.title or item.text or item.url for item in feed.items)


@given(st.integers(min_value=0, max_value=len(SAMPLE)), st.binary(max_size=20), st.integers(0, len(SAMPLE)))
def test_damaged_feeds_give_a_feed_or_a_parse_error(cut: int, noise: bytes, at: int) -> None:
    body = SAMPLE[:at] + noise + SAMPLE[at:cut]
    try:
        feed = parse_feed(body, url=URL)
    except ParseError:
        return
    for item in feed.items:
        assert item.url is None or item.url.startswith(("http://", "https://"))
        assert item.published is None or item.published.tzinfo is UTC


@given(
    st.from_regex(
        r"https?://[A-Za-z0-9._@\[\]-]{0,10}(:[0-9]{0,6})?([/?#][A-Za-z0-9/?#%\[\] \t.-]{0,12})?", fullmatch=True
    ),
    st.booleans(),
)
@example("https://? 0", True)  # found by hypothesis: urljoin gave it the base's host
def test_absolute_links_skip_the_url_parser_only_when_it_would_keep_them(value: str, keep_fragment: bool) -> None:
    # the fast path for plain absolute links gives what urlsplit's checks give
    from urllib.parse import urldefrag, urlsplit

    try:
        parts = urlsplit(value.strip())
        expected = value.strip() if parts.scheme in ("http", "https") and parts.netloc else None
    except ValueError:
        expected = None
    if expected is not None and not keep_fragment:
        expected = urldefrag(expected).url
    assert absolute_url(value, "https://base.example/", keep_fragment=keep_fragment) == expected
