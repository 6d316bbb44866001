"""The `html` collector: golden files on real captures (the selectors a user would configure for each
site), pure parts with Hypothesis, fetching against 127.0.0.1, and a poll through the real pipeline.

Regenerate the golden files with MONITOR_UPDATE_GOLDEN=1 after a deliberate change, then review the diff.
"""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.collectors import html as html_collector
from monitor.collectors.fetch import Fetcher
from monitor.collectors.html import (
    MAX_TRACKED,
    REVISIT_FOR,
    HtmlSource,
    Tracked,
    dump_cursor,
    load_cursor,
    parse_listing,
    parse_page,
    plan_follow,
)
from monitor.collectors.links import absolute_url
from monitor.collectors.selectors import FieldSpec, parse_spec
from monitor.exceptions import ConfigError, FetchError
from monitor.match import Matcher
from monitor.pipeline import limits_of, run_source
from monitor.schema import validate
from monitor.store.sqlite import SqliteStore
from monitor.types import Collected, FetchRecord, RawItem, SourceState
from tests.conftest import CORPUS, NOW, make_config

HERE = Path(__file__).parent
GOLDEN = HERE / "golden" / "html"
FIXTURES = HERE / "fixtures" / "html"
UPDATE = os.environ.get("MONITOR_UPDATE_GOLDEN") == "1"

TOPICS = """
store: store.db
topics:
  separatism: [separatis*, сепаратизм*, сепаратист*]
  peoples-council: ["People's Council", "Народный совет*", "Народного совет*", "Халық кеңесі"]
"""


def html_source(tmp_path: Path, url: str, block: str, name: str = "site") -> HtmlSource:
    """The source a user gets from this YAML block in config.yaml (through the real config loader)."""
    body = textwrap.indent(textwrap.dedent(block).strip(), "    ")
    config = make_config(tmp_path, f"{TOPICS}\nsources:\n  - name: {name}\n    type: html\n    url: '{url}'\n{body}\n")
    source = config.sources[0]
    assert isinstance(source, HtmlSource)
    return source


# --- golden files ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    capture: str  # "corpus:html/x.html" or "fixture:x.html"
    url: str  # the address the page was captured from
    config: str  # the source's YAML, as a user would write it for this site


CASES: dict[str, Case] = {
    # WordPress comments; follow: the page is what a listing link opens
    "de_netzpolitik_article-with-comments": Case(
        "corpus:html/de_netzpolitik_article-with-comments.html",
        "https://netzpolitik.org/2016/die-cider-connection-abmahnungen-gegen-nutzer-von-creative-commons-bildern/",
        """
        follow: h2.teaser__title a @href
        timezone: Europe/Berlin
        items: article.article-area
        fields:
          title: h1.entry-title
          text: .entry-content
          published: .entry-meta time.published
          author: .entry-meta .byline a
        comments:
          items: article.comment-body
          fields:
            author: .comment-author .fn
            text: .comment-content
            published: .comment-metadata time @datetime
            link: .comment-metadata a @href
        """,
    ),
    # wpDiscuz: the comment box carries id="comment-N"; its dates are relative German ("50 Minuten her")
    "de_tichyseinblick_commentary-with-comments": Case(
        "corpus:html/de_tichyseinblick_commentary-with-comments.html",
        "https://www.tichyseinblick.de/kolumnen/spahns-spitzwege/no-peace-for-our-time-pence-syrien-und-die-tuerkei/",
        """
        follow: h2 a @href
        timezone: Europe/Berlin
        items: article.rty-article-page
        fields:
          title: h1.entry-title
          text: .rty-article-page-excerpt, .rty-article-page-content
          published: .entry-date
          author: .rty-article-page-author a
        comments:
          items: .wc-comment-right
          fields:
            author: .wc-comment-author
            text: .wc-comment-text
            published: .wc-comment-date
            link: .wc-comment-link-input @value
        """,
    ),
    # WordPress with nested replies (li.comment inside li.comment); Spanish comment dates
    "es_cubadebate_political-news-with-comments": Case(
        "corpus:html/es_cubadebate_political-news-with-comments.html",
        "http://www.cubadebate.cu/noticias/2022/04/26/sesiona-iv-pleno-del-comite-central-del-partido/",
        """
        follow: h3 a @href
        timezone: America/Havana
        items: div.post
        fields:
          title: h2.title
          text: .note_content > p, .note_content > blockquote, .note_content .section-body
          published: .meta time @datetime
          author: '#taxonomies a[href*="/autor/"]'
        comments:
          items: li.comment
          fields:
            author: cite strong
            text: .commenttext > p
            published: .commentmetadata
        """,
    ),
    # forum-backed comments: each links to its forum post
    "de_mtb-news_article-with-forum-comments": Case(
        "corpus:html/de_mtb-news_article-with-forum-comments.html",
        "https://www.mtb-news.de/news/reifen-tubeless-montieren/",
        """
        follow: h2 a @href
        timezone: Europe/Berlin
        items: '#cb-container'
        fields:
          title: h1.entry-title
          text: .cb-entry-content
          published: time @datetime
          author: .cb-author
        comments:
          items: .mtbnewsCommentMessageContainer
          fields:
            author: .mtbnewsCommentMessageInfoContainer a[href*="/profile"]
            text: .mtbnewsCommentMessage
            published: time
            link: time a @href
        """,
    ),
    # the comments are rendered in the browser from a template: the selector a user copies from the
    # browser's inspector matches nothing in the served HTML, and that is reported
    "ru_football-ua_article-with-comments": Case(
        "corpus:html/ru_football-ua_article-with-comments.html",
        "https://football.ua/germany/311510-podolski-zavershil-kareru-v-sbornojj.html",
        """
        follow: .news-feed li a @href
        timezone: Europe/Kyiv
        items: article.author-article
        fields:
          title: h1
          text: .intro, .article-text
          published: p.date
        comments:
          items: article.comment-item
          fields:
            author: .user a.name
            text: .comment-text
            published: p.date
            link: a.num @href
        """,
    ),
    # XenForo: the thread is the article, every post (the opening one too) a comment
    "de_katzen-forum_xenforo-thread": Case(
        "corpus:html/de_katzen-forum_xenforo-thread.html",
        "https://www.katzen-forum.net/threads/jede-nacht-verliert-pepe-soviel-dreck-aus-dem-fell.230143/",
        """
        follow: .structItem-title a @href
        next: a.pageNav-jump--next @href
        timezone: Europe/Berlin
        items: .p-body-header
        fields:
          title: h1.p-title-value
          author: .p-description .username
          published: .p-description time @datetime
        comments:
          items: article.message--post
          fields:
            author: '@data-author'
            text: .bbWrapper
            published: time.u-dt @datetime
            link: a.message-attribution-gadget @href
        """,
    ),
    # phpBB, no follow: the thread page itself is polled and each post is an item; post links carry a
    # session id (sid=...), so the item's own anchor (@id) is the stable link
    "de_myoos_phpbb-thread": Case(
        "corpus:html/de_myoos_phpbb-thread.html",
        "https://foren.myoos.de/viewtopic.php?f=4&t=167",
        """
        timezone: Europe/Berlin
        items: div.post
        fields:
          text: .content
          author: p.author a.username
          published: p.author
          link: '@id'
        """,
    ),
    # StackExchange: question (with its title, above it) first, answers, then every comment
    "en_german-stackexchange_qa-thread": Case(
        "corpus:html/en_german-stackexchange_qa-thread.html",
        "https://german.stackexchange.com/questions/10376/",
        """
        follow: a.s-link @href
        items: 'div:has(> #question-header), div.answer'
        fields:
          title: '#question-header h1'
          text: .s-prose
          link: a.js-share-link @href
          published: .post-signature:last-child .relativetime @title
          author: .post-signature:last-child .user-details > a
        comments:
          items: li.comment
          fields:
            author: .comment-user
            text: .comment-copy
            published: .comment-date span @title
        """,
    ),
    # our own pages: a Russian/Kazakh listing (no follow), its article with comments, a forum thread
    "ru_news_listing": Case(
        "fixture:ru_news_listing.html",
        "https://vestnik.example.kz/news/",
        """
        next: a.next
        timezone: Asia/Almaty
        items: article.teaser
        fields:
          title: h2
          text: .lead
          link: a.headline @href
          published: time
          author: .byline
        """,
    ),
    "ru_news_article": Case(
        "fixture:ru_news_article.html",
        "https://vestnik.example.kz/news/2026/03/01/narodnyj-sovet.html",
        """
        follow: a.headline @href
        timezone: Asia/Almaty
        items: article.story
        fields:
          title: .story-title
          text: .story-body
          published: time.published
          author: .story-meta .author
        comments:
          items: li.comment
          fields:
            author: .who
            text: .comment-body
            published: .comment-head a.anchor, .comment-head .when
            link: a.anchor @href
        """,
    ),
    "ru_forum_thread": Case(
        "fixture:ru_forum_thread.html",
        "https://forum.example.kz/t/thread-17",
        """
        next: .pager a.next
        timezone: Asia/Almaty
        items: div.post
        fields:
          text: .post-text
          author: .post-author
          published: .post-date
        """,
    ),
}


def capture_path(case: Case) -> Path:
    kind, _, name = case.capture.partition(":")
    if kind == "fixture":
        return FIXTURES / name
    return CORPUS / name


def item_json(item: RawItem) -> dict[str, Any]:
    return {
        "guid": item.guid,
        "url": item.url,
        "title": item.title,
        "text": item.text,
        "author": item.author,
        "published": item.published.isoformat() if item.published else None,
        "parent_ref": item.parent_ref,
        "extra": [list(pair) for pair in item.extra],
    }


def check_golden(path: Path, actual: dict[str, Any]) -> None:
    if UPDATE:
        path.write_text(json.dumps(actual, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert actual == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_pages(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    source = html_source(tmp_path, case.url, case.config)
    page = parse_page(capture_path(case).read_text(encoding="utf-8"), case.url, source, NOW)
    actual = {
        "capture": case.capture,
        "url": case.url,
        "next_url": page.next_url,
        "misses": [f"{m.role} selector {m.selector!r} {m.what}" for m in page.misses],
        "comments": page.comments,
        "items": [item_json(item) for item in page.items],
    }
    check_golden(GOLDEN / f"{name}.json", actual)


# --- pure parts -------------------------------------------------------------------------------------------


def test_field_specs_read_css_and_attribute() -> None:
    assert parse_spec("a.permalink @href") == FieldSpec("a.permalink", "href")
    assert parse_spec("  time[datetime]   @datetime ") == FieldSpec("time[datetime]", "datetime")
    assert parse_spec("@data-author") == FieldSpec("", "data-author")
    assert parse_spec(".body") == FieldSpec(".body", None)
    assert parse_spec("a.next", default_attr="href") == FieldSpec("a.next", "href")
    assert parse_spec('a[href*="@x"]') == FieldSpec('a[href*="@x"]', None)  # an @ inside the CSS is CSS


def test_links_resolve_against_the_page_and_keep_only_http() -> None:
    assert absolute_url("../b?x=1#c", "https://h.kz/a/p.html") == "https://h.kz/b?x=1#c"
    assert absolute_url("//cdn.h.kz/x", "https://h.kz/") == "https://cdn.h.kz/x"
    assert absolute_url("#c5", "https://h.kz/p") == "https://h.kz/p#c5"
    assert absolute_url("#c5", "https://h.kz/p", keep_fragment=False) == "https://h.kz/p"
    for bad in ("mailto:a@h.kz", "javascript:void(0)", "", "   ", None, "ftp://h.kz/x"):
        assert absolute_url(bad, "https://h.kz/") is None


def test_base_href_and_relative_links_on_a_listing(tmp_path: Path) -> None:
    source = html_source(
        tmp_path,
        "https://vestnik.example.kz/",
        """
        follow: a.headline
        next: a.next
        items: article
        fields: {title: h2}
        """,
    )
    html = (FIXTURES / "ru_news_listing.html").read_text(encoding="utf-8")
    listing = parse_listing(html, "https://vestnik.example.kz/news/index.html", source)
    assert listing.links == (  # <base href="/news/">; canonical: no utm_*, so a rotating one is not a new link
        "https://vestnik.example.kz/news/2026/03/01/narodnyj-sovet.html",
        "https://vestnik.example.kz/news/2026/02/28/sud.html",
        "https://vestnik.example.kz/news/2026/02/28/kenes.html",
    )
    assert listing.next_url == "https://vestnik.example.kz/news/?page=2"
    assert listing.misses == ()


def test_nested_comments_do_not_absorb_their_replies(tmp_path: Path) -> None:
    case = CASES["ru_news_article"]
    source = html_source(tmp_path, case.url, case.config)
    page = parse_page((FIXTURES / "ru_news_article.html").read_text(encoding="utf-8"), case.url, source, NOW)
    article, *comments = page.items
    assert "Комментарии" not in article.text and "фейк" not in article.text  # comments are not article text
    assert "реклама" not in article.text  # script content is dropped
    first = comments[0]
    assert first.guid == case.url + "#c101" and "фейк" not in first.text  # the reply c102 is its own post
    assert [c.author for c in comments] == ["Ерлан", "Марина К.", "Асқар", "Гость"]  # empty c105 left out
    assert all(c.parent_ref == case.url for c in comments)


def test_guids_without_links_are_stable_across_polls(tmp_path: Path) -> None:
    """Relative dates drift between polls; the digest guid must not."""
    for name in ("ru_forum_thread", "ru_news_article"):
        case = CASES[name]
        source = html_source(tmp_path, case.url, case.config)
        html = capture_path(case).read_text(encoding="utf-8")
        first = parse_page(html, case.url, source, NOW)
        later = parse_page(html, case.url, source, NOW + timedelta(hours=30))
        assert [i.guid for i in first.items] == [i.guid for i in later.items]
        assert [i.published for i in first.items] != [i.published for i in later.items]  # they did drift


def test_a_missing_field_is_reported_only_when_no_item_has_it(tmp_path: Path) -> None:
    source = html_source(
        tmp_path,
        "https://h.kz/",
        """
        items: .post
        fields: {title: h2, text: .body, author: .who}
        """,
    )
    html = "<div class=post><h2>A</h2><p class=body>x</p></div><div class=post><h2>B</h2><span class=who>Z</span></div>"
    assert [m.role for m in parse_page(html, "https://h.kz/", source, NOW).misses] == []
    html = "<div class=post><h2>A</h2></div><div class=post><h2>B</h2></div>"
    assert [m.role for m in parse_page(html, "https://h.kz/", source, NOW).misses] == ["fields.text", "fields.author"]


def test_an_invalid_selector_never_reaches_the_parser(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources\[0\]\.items \(line \d+\): invalid CSS selector 'div\['"):
        html_source(tmp_path, "https://h.kz/", "items: 'div['\nfields: {title: h2}")


html_soup = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "<div class=post>",
                "</div>",
                "<h2>",
                "</h2>",
                "<a href='/x#y'>",
                "</a>",
                "<li class=c id=k>",
                "<time datetime='2026-02-30T25:00'>",
                "<base href='javascript:x'>",
                "<!--",
                "&amp;",
                "\x00",
            ]
        ),
        st.text(max_size=20),
    ),
    max_size=40,
).map("".join)


@given(html_soup)
def test_any_page_parses_without_raising(html: str) -> None:
    source = validate(
        HtmlSource,
        {
            "name": "s",
            "type": "html",
            "url": "https://h.kz/",
            "items": ".post",
            "interval": "1h",
            "timeout": "5s",
            "max_bytes": 1000,
            "user_agent": "t",
            "robots": False,
            "follow": "a",
            "next": "a",
            "fields": {"title": "h2", "text": ".post", "link": "a", "published": "time", "author": "@id"},
            "comments": {"items": "li.c", "fields": {"text": "li", "link": "@id"}},
        },
    )
    page = parse_page(html, "https://h.kz/p", source, NOW)
    assert page.comments <= len(page.items)
    assert all(i.guid or i.url for i in page.items)
    parse_listing(html, "https://h.kz/p", source)


urls = st.sampled_from([f"https://h.kz/a{n}" for n in range(12)])
stamps = st.integers(min_value=0, max_value=int(NOW.timestamp()))
tracked_maps = st.dictionaries(urls, st.builds(Tracked, stamps, st.one_of(st.just(0), stamps)), max_size=12)


@given(tracked_maps, st.lists(urls, max_size=12), st.integers(min_value=0, max_value=15))
def test_follow_plan_is_bounded_new_first_and_recent_only(
    tracked: dict[str, Tracked], links: list[str], budget: int
) -> None:
    plan, merged = plan_follow(tracked, links, NOW, budget)
    assert len(plan) <= budget and len(plan) == len(set(plan))
    never = [u for u in plan if merged[u].opened == 0]
    assert plan[: len(never)] == never  # every never-opened link before any revisit
    horizon = int((NOW - REVISIT_FOR).timestamp())
    assert all(merged[u].opened == 0 or merged[u].first_seen >= horizon for u in plan)
    fresh = [u for u in dict.fromkeys(links) if merged[u].opened == 0]
    assert plan[: min(budget, len(fresh))] == fresh[:budget]  # listing order among the new ones
    assert set(links) <= set(merged)


@given(st.dictionaries(st.text(min_size=1, max_size=30), st.builds(Tracked, stamps, stamps), max_size=40))
def test_cursor_round_trips(tracked: dict[str, Tracked]) -> None:
    assert load_cursor(dump_cursor(tracked)) == tracked


def test_cursor_is_bounded_and_keeps_the_listing_first() -> None:
    tracked = {f"https://h.kz/{n}": Tracked(first_seen=n) for n in range(MAX_TRACKED + 50)}
    listed = ["https://h.kz/0", "https://h.kz/1"]  # the oldest, but still on the listing
    kept = load_cursor(dump_cursor(tracked, keep=listed))
    assert len(kept) == MAX_TRACKED and set(listed) <= set(kept)
    assert f"https://h.kz/{MAX_TRACKED + 49}" in kept and "https://h.kz/2" not in kept
    assert load_cursor("not json") == {} and load_cursor('{"v": 99}') == {} and load_cursor(None) == {}


# --- fetching against 127.0.0.1 ---------------------------------------------------------------------------


def collect(
    source: HtmlSource, state: SourceState | None = None, now: datetime = NOW
) -> tuple[Collected | FetchError, list[FetchRecord]]:
    async def go() -> tuple[Collected | FetchError, list[FetchRecord]]:
        async with Fetcher(per_host=2, user_agent="monitor-test", clock=lambda: now) as fetcher:
            session = fetcher.session(source.name, limits_of(source))
            try:
                result: Collected | FetchError = await html_collector.collect(
                    source, session, state or SourceState(source.name), now
                )
            except FetchError as exc:
                result = exc
            return result, session.records

    return asyncio.run(go())


def ok(result: Collected | FetchError) -> Collected:
    assert isinstance(result, Collected), result
    return result


def article_page(n: int, comments: int = 1) -> str:
    replies = "".join(
        f'<li class="comment" id="c{n}-{k}"><span class="who">Читатель {k}</span>'
        f'<div class="comment-body">Комментарий {k} к статье {n}: сепаратизм не пройдёт</div></li>'
        for k in range(comments)
    )
    return (
        f'<html><head><meta charset="utf-8"></head><body><article class="story">'
        f'<h1 class="story-title">Статья {n}</h1><div class="story-body"><p>Текст статьи {n}</p></div>'
        f"<ol>{replies}</ol></article></body></html>"
    )


def listing_page(links: list[str], next_href: str | None = None) -> str:
    anchors = "".join(f'<h2><a class="headline" href="{href}">{href}</a></h2>' for href in links)
    more = f'<a class="next" href="{next_href}">next</a>' if next_href else ""
    return f'<html><head><meta charset="utf-8"></head><body>{anchors}{more}</body></html>'


FOLLOW = """
follow: a.headline @href
items: article.story
fields: {title: .story-title, text: .story-body}
comments: {items: li.comment, fields: {author: .who, text: .comment-body}}
max_follow: 2
robots: false
"""


def article_handler(n: int, comments: dict[int, int] | None) -> Callable[[Request], Response]:
    """Article n with `comments[n]` comments (default 1), read at each request (a test may add comments meanwhile)."""

    def handler(request: Request) -> Response:
        return Response(article_page(n, (comments or {}).get(n, 1)), content_type="text/html")

    return handler


def serve_site(httpserver: HTTPServer, articles: int, comments: dict[int, int] | None = None) -> None:
    httpserver.expect_request("/news").respond_with_data(
        listing_page([f"/a{n}" for n in range(1, articles + 1)]), content_type="text/html; charset=utf-8"
    )
    for n in range(1, articles + 1):
        httpserver.expect_request(f"/a{n}").respond_with_handler(article_handler(n, comments))


def requested(httpserver: HTTPServer, since: int = 0) -> list[str]:
    return [request.full_path.rstrip("?") for request, _ in httpserver.log[since:]]


def test_follow_opens_new_links_first_then_revisits_within_max_follow(httpserver: HTTPServer, tmp_path: Path) -> None:
    serve_site(httpserver, articles=5)
    source = html_source(tmp_path, httpserver.url_for("/news"), FOLLOW)
    state = SourceState(source.name)
    polls = []
    for step in range(4):
        now = NOW + timedelta(minutes=10 * step)
        mark = len(httpserver.log)
        collected = ok(collect(source, state, now)[0])
        state = SourceState(source.name, cursor=collected.cursor)
        polls.append(requested(httpserver, mark))
        assert len(collected.items) == 2 * (len(polls[-1]) - 1)  # each page: its article and one comment
    assert polls == [
        ["/news", "/a1", "/a2"],
        ["/news", "/a3", "/a4"],
        ["/news", "/a5", "/a1"],  # the last new one, then the page checked longest ago
        ["/news", "/a2", "/a3"],
    ]
    mark = len(httpserver.log)
    ok(collect(source, state, NOW + REVISIT_FOR + timedelta(hours=1))[0])
    assert requested(httpserver, mark) == ["/news"]  # nothing new and nothing recent: no page opened


def test_a_304_listing_still_revisits_recent_pages_for_new_comments(httpserver: HTTPServer, tmp_path: Path) -> None:
    comments = {1: 1, 2: 1}

    def listing(request: Request) -> Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(listing_page(["/a1", "/a2"]), content_type="text/html", headers={"ETag": '"v1"'})

    httpserver.expect_request("/news").respond_with_handler(listing)
    for n in (1, 2):
        httpserver.expect_request(f"/a{n}").respond_with_handler(article_handler(n, comments))
    source = html_source(tmp_path, httpserver.url_for("/news"), FOLLOW)
    first = ok(collect(source)[0])
    assert first.etag == '"v1"' and len(first.items) == 4
    comments[2] = 3  # two new comments under article 2
    state = SourceState(source.name, etag=first.etag, cursor=first.cursor)
    mark = len(httpserver.log)
    second = ok(collect(source, state, NOW + timedelta(minutes=10))[0])
    assert requested(httpserver, mark) == ["/news", "/a1", "/a2"]
    assert httpserver.log[mark][0].headers["If-None-Match"] == '"v1"'
    assert not second.not_modified and second.etag == '"v1"'
    assert {i.text for i in second.items if i.parent_ref} >= {"Комментарий 2 к статье 2: сепаратизм не пройдёт"}


def test_next_pagination_is_bounded_by_max_pages(httpserver: HTTPServer, tmp_path: Path) -> None:
    for page in range(1, 6):
        posts = f'<div class="post"><h2>Пост {page}</h2><a href="/p{page}">link</a></div>'
        more = f'<a class="next" href="/list?page={page + 1}">дальше</a>'
        httpserver.expect_request("/list", query_string=f"page={page}").respond_with_data(
            f"<html><body>{posts}{more}</body></html>", content_type="text/html"
        )
    source = html_source(
        tmp_path,
        httpserver.url_for("/list") + "?page=1",
        """
        items: div.post
        fields: {title: h2, link: a @href}
        next: a.next
        max_pages: 3
        robots: false
        """,
    )
    collected = ok(collect(source)[0])
    assert requested(httpserver) == ["/list?page=1", "/list?page=2", "/list?page=3"]
    assert [i.title for i in collected.items] == ["Пост 1", "Пост 2", "Пост 3"]


def test_a_windows_1251_page_without_charset_decodes(httpserver: HTTPServer, tmp_path: Path) -> None:
    html = (FIXTURES / "ru_news_article.html").read_text(encoding="utf-8").replace('<meta charset="utf-8">', "")
    body = html.encode("cp1251", errors="xmlcharrefreplace")  # Kazakh letters become &#NNNN; as a CMS does
    httpserver.expect_request("/article").respond_with_data(body, content_type="text/html")
    source = html_source(
        tmp_path,
        httpserver.url_for("/article"),
        CASES["ru_news_article"].config.replace("follow: a.headline @href", "robots: false"),
    )
    collected = ok(collect(source)[0])
    article, *comments = collected.items
    assert article.title == "В соцсетях опубликована «декларация Народного совета»"
    assert "признаки сепаратизма" in article.text
    assert comments[2].text == "Халық кеңесі деген не? Бұл арандатушылық." and comments[2].author == "Асқар"


def test_a_selector_matching_nothing_is_a_warning_and_health(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/news").respond_with_data(listing_page(["/a1"]), content_type="text/html")
    source = html_source(
        tmp_path,
        httpserver.url_for("/news"),
        """
        items: article.post
        fields: {title: h2}
        robots: false
        """,
    )
    collected = ok(collect(source)[0])
    expected = f"items selector 'article.post' matched nothing on {httpserver.url_for('/news')}"
    assert collected.items == () and collected.warnings == (expected,) and collected.health == expected


def test_a_failing_followed_page_is_a_warning_and_the_rest_is_collected(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/news").respond_with_data(listing_page(["/a1", "/a2", "/a3"]), content_type="text/html")
    httpserver.expect_request("/a1").respond_with_data(article_page(1), content_type="text/html")
    httpserver.expect_request("/a2").respond_with_data("oops", status=500)
    httpserver.expect_request("/a3").respond_with_data(article_page(3), content_type="text/html")
    source = html_source(tmp_path, httpserver.url_for("/news"), FOLLOW.replace("max_follow: 2", "max_follow: 5"))
    collected = ok(collect(source)[0])
    assert [i.title for i in collected.items if not i.parent_ref] == ["Статья 1", "Статья 3"]
    assert len(collected.warnings) == 1 and "/a2: HTTP 500" in collected.warnings[0]
    assert collected.health is None  # a fetch problem is not a selector problem
    cursor = json.loads(collected.cursor or "")
    assert all(opened for _, _, opened in cursor["links"])  # the failed page goes to the back of the queue


def test_every_followed_page_failing_fails_the_poll(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/news").respond_with_data(listing_page(["/a1", "/a2"]), content_type="text/html")
    for path in ("/a1", "/a2"):
        httpserver.expect_request(path).respond_with_data("gone", status=404)
    source = html_source(tmp_path, httpserver.url_for("/news"), FOLLOW)
    result, records = collect(source)
    assert isinstance(result, FetchError) and "every linked page failed (2 tried)" in str(result)
    assert [r.http_status for r in records] == [200, 404, 404]


def test_a_rate_limit_on_a_followed_page_stops_the_poll_politely(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/news").respond_with_data(listing_page(["/a1", "/a2", "/a3"]), content_type="text/html")
    httpserver.expect_request("/a1").respond_with_data(article_page(1), content_type="text/html")
    httpserver.expect_request("/a2").respond_with_data("slow down", status=429, headers={"Retry-After": "120"})
    source = html_source(tmp_path, httpserver.url_for("/news"), FOLLOW.replace("max_follow: 2", "max_follow: 5"))
    collected = ok(collect(source)[0])
    assert requested(httpserver) == ["/news", "/a1", "/a2"]  # /a3 is not asked for
    assert collected.retry_at == NOW + timedelta(seconds=120)
    assert [i.title for i in collected.items if not i.parent_ref] == ["Статья 1"]


def test_a_followed_link_that_is_not_html_is_skipped_with_a_warning(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/news").respond_with_data(listing_page(["/a1", "/report.pdf"]), content_type="text/html")
    httpserver.expect_request("/a1").respond_with_data(article_page(1), content_type="text/html")
    httpserver.expect_request("/report.pdf").respond_with_data(b"%PDF-1.4", content_type="application/pdf")
    source = html_source(tmp_path, httpserver.url_for("/news"), FOLLOW)
    collected = ok(collect(source)[0])
    assert len(collected.items) == 2
    assert collected.warnings == (
        f"could not read linked page {httpserver.url_for('/report.pdf')}: content type application/pdf is not HTML",
    )


def test_a_304_without_follow_is_not_modified(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/news").respond_with_response(Response(status=304))
    source = html_source(tmp_path, httpserver.url_for("/news"), "items: div\nfields: {title: h2}\nrobots: false")
    collected = ok(collect(source, SourceState("site", etag='"e"', last_modified="Sun, 01 Mar 2026 10:00:00 GMT"))[0])
    assert collected.not_modified and collected.items == ()
    assert (collected.etag, collected.last_modified) == ('"e"', "Sun, 01 Mar 2026 10:00:00 GMT")


# --- through the real pipeline -----------------------------------------------------------------------------


def test_comments_are_stored_under_their_article_and_a_second_poll_adds_nothing(
    httpserver: HTTPServer, tmp_path: Path, store: SqliteStore
) -> None:
    serve_site(httpserver, articles=2, comments={1: 2, 2: 1})
    source = html_source(tmp_path, httpserver.url_for("/news"), FOLLOW)
    matcher = Matcher(make_config(tmp_path, TOPICS + "sources: []").topics)

    def poll(now: datetime) -> Any:
        async def go() -> Any:
            async with Fetcher(per_host=2, user_agent="monitor-test", clock=lambda: now) as fetcher:
                return await run_source(source, fetcher=fetcher, store=store, matcher=matcher, now=now)

        return asyncio.run(go())

    first = poll(NOW)
    assert first.ok and first.new_posts == 5, first
    rows = store.conn.execute("SELECT id, key, parent_id, text FROM posts ORDER BY id").fetchall()
    articles = {key: post_id for post_id, key, parent, _ in rows if parent is None}
    assert set(articles) == {httpserver.url_for("/a1"), httpserver.url_for("/a2")}
    for _, key, parent, _ in rows:
        if parent is not None:
            page, _, anchor = key.partition("#")
            assert parent == articles[page] and anchor.startswith("c")
    matched = store.conn.execute("SELECT count(*) FROM matches WHERE topic = 'separatism'").fetchone()[0]
    assert matched == 3  # the comments say "сепаратизм"
    second = poll(NOW + timedelta(minutes=15))
    assert second.ok and second.new_posts == 0 and second.updated_posts == 0, second
    assert store.conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 5
    assert store.source_state(source.name).cursor is not None
