"""The `telegram` collector: golden files (the real t.me/s capture and our Russian/Kazakh page), paging with
?before= against 127.0.0.1, and polls through the real pipeline.

Regenerate the golden files with MONITOR_UPDATE_GOLDEN=1 after a deliberate change, then review the diff.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.collectors import telegram
from monitor.collectors.fetch import Fetcher
from monitor.collectors.telegram import TelegramSource, page_url, parse_channel_page, parse_count
from monitor.exceptions import FetchError
from monitor.match import Matcher
from monitor.pipeline import limits_of, run_source
from monitor.store.sqlite import SqliteStore
from monitor.types import Collected, FetchRecord, RawItem, RunResult, SourceState
from tests.conftest import CORPUS, NOW, make_config

HERE = Path(__file__).parent
GOLDEN = HERE / "golden" / "telegram"
UPDATE = os.environ.get("MONITOR_UPDATE_GOLDEN") == "1"

TOPICS = """
store: store.db
topics:
  separatism: [separatis*, сепаратизм*, сепаратист*]
  peoples-council: ["People's Council", "Народн* совет*", "Халық кеңесі"]
"""


def channel_source(tmp_path: Path, url: str, extra: str = "") -> TelegramSource:
    config = make_config(
        tmp_path,
        f"""{TOPICS}
sources:
  - name: chan
    type: telegram
    channel: dala_news_test
    url: '{url}'
    robots: false
{extra}""",
    )
    source = config.sources[0]
    assert isinstance(source, TelegramSource)
    return source


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


@pytest.mark.parametrize(
    ("name", "path", "url"),
    [
        ("clashreport_excerpt", "corpus", "https://t.me/s/ClashReport"),
        ("ru_kz_channel_page", "fixture", "https://t.me/s/dala_news_test"),
    ],
)
def test_golden_channel_pages(name: str, path: str, url: str) -> None:
    if path == "corpus":
        capture = CORPUS / "telegram" / f"{name}.html"
    else:
        capture = HERE / "fixtures" / "telegram" / f"{name}.html"
    page = parse_channel_page(capture.read_text(encoding="utf-8"), url)
    actual = {
        "capture": f"{path}:{capture.name}",
        "url": url,
        "title": page.title,
        "older_url": page.older_url,
        "ids": list(page.ids),
        "items": [item_json(item) for item in page.items],
    }
    golden = GOLDEN / f"{name}.json"
    if UPDATE:
        golden.write_text(json.dumps(actual, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    assert actual == json.loads(golden.read_text(encoding="utf-8"))


def test_counts_as_shown_become_numbers() -> None:
    assert [parse_count(s) for s in ("947", "2.88K", "12.4K", "1.1M", "1,5K", "2B")] == [
        947,
        2880,
        12400,
        1_100_000,
        1500,
        2_000_000_000,
    ]
    assert parse_count("views") is None and parse_count("") is None and parse_count("1.2.3K") is None


@given(st.integers(min_value=1, max_value=10**12))
def test_paging_address_keeps_other_parameters(before: int) -> None:
    url = page_url("https://t.me/s/chan?q=%D1%81%D0%B5%D0%BF%D0%B0%D1%80&before=5", before)
    assert url == f"https://t.me/s/chan?q=%D1%81%D0%B5%D0%BF%D0%B0%D1%80&before={before}"
    assert (
        page_url(url, before) == url and page_url(url, None) == "https://t.me/s/chan?q=%D1%81%D0%B5%D0%BF%D0%B0%D1%80"
    )


@given(st.text(max_size=300).map(lambda t: f'<div class="tgme_widget_message" data-post="c/1">{t}</div>'))
def test_any_channel_page_parses_without_raising(html: str) -> None:
    page = parse_channel_page(html, "https://t.me/s/c")
    assert len(page.items) == len(page.ids) <= 1


# --- a channel on 127.0.0.1 ---------------------------------------------------------------------------------


def message(channel: str, number: int, text: str) -> str:
    return (
        f'<div class="tgme_widget_message_wrap js-widget_message_wrap"><div class="tgme_widget_message '
        f'js-widget_message" data-post="{channel}/{number}"><div class="tgme_widget_message_bubble">'
        f'<div class="tgme_widget_message_text js-message_text" dir="auto">{text}</div>'
        f'<div class="tgme_widget_message_footer"><span class="tgme_widget_message_views">{number}</span>'
        f'<span class="tgme_widget_message_meta"><a class="tgme_widget_message_date" '
        f'href="https://t.me/{channel}/{number}"><time datetime="{(NOW - timedelta(minutes=500 - number)).isoformat()}"'
        f' class="time">x</time></a></span></div></div></div></div>'
    )


class Channel:
    """A t.me/s/ preview of messages 1..newest, 20 per page, that honours ?before= (unless told not to)."""

    def __init__(self, newest: int, channel: str = "dala_news_test") -> None:
        self.newest = newest
        self.channel = channel
        self.texts: dict[int, str] = {}
        self.ignore_before = False

    def page(self, before: int | None) -> str:
        top = self.newest if before is None or self.ignore_before else min(before - 1, self.newest)
        numbers = range(max(1, top - 19), top + 1)
        prev = f'<link rel="prev" href="/s/{self.channel}?before={numbers[0]}">' if numbers and numbers[0] > 1 else ""
        body = "".join(message(self.channel, n, self.texts.get(n, f"Сообщение {n}")) for n in numbers)
        return f'<html><head><meta charset="utf-8">{prev}</head><body><section>{body}</section></body></html>'

    def handler(self, request: Request) -> Response:
        before = request.args.get("before")
        return Response(self.page(int(before) if before else None), content_type="text/html; charset=utf-8")


def serve(httpserver: HTTPServer, channel: Channel) -> str:
    httpserver.expect_request(f"/s/{channel.channel}").respond_with_handler(channel.handler)
    return httpserver.url_for(f"/s/{channel.channel}")


def collect(
    source: TelegramSource, cursor: str | None = None, state: SourceState | None = None
) -> tuple[Collected | FetchError, list[FetchRecord]]:
    async def go() -> tuple[Collected | FetchError, list[FetchRecord]]:
        async with Fetcher(per_host=2, user_agent="monitor-test", clock=lambda: NOW) as fetcher:
            session = fetcher.session(source.name, limits_of(source))
            try:
                result: Collected | FetchError = await telegram.collect(
                    source, session, state or SourceState(source.name, cursor=cursor), NOW
                )
            except FetchError as exc:
                result = exc
            return result, session.records

    return asyncio.run(go())


def ok(result: Collected | FetchError) -> Collected:
    assert isinstance(result, Collected), result
    return result


def asked(httpserver: HTTPServer, since: int = 0) -> list[str | None]:
    return [request.args.get("before") for request, _ in httpserver.log[since:]]


def test_first_poll_pages_back_up_to_max_pages(httpserver: HTTPServer, tmp_path: Path) -> None:
    source = channel_source(tmp_path, serve(httpserver, Channel(newest=100)), "    max_pages: 3")
    collected = ok(collect(source)[0])
    assert asked(httpserver) == [None, "81", "61"]
    assert len(collected.items) == 60 and collected.cursor == "100" and collected.warnings == ()
    assert collected.items[0].guid == "https://t.me/dala_news_test/81"


def test_paging_stops_at_the_start_of_the_channel(httpserver: HTTPServer, tmp_path: Path) -> None:
    source = channel_source(tmp_path, serve(httpserver, Channel(newest=30)), "    max_pages: 10")
    collected = ok(collect(source)[0])
    assert asked(httpserver) == [None, "11"] and len(collected.items) == 30


def test_next_poll_reads_one_page_when_it_reaches_the_last_seen_message(httpserver: HTTPServer, tmp_path: Path) -> None:
    source = channel_source(tmp_path, serve(httpserver, Channel(newest=105)))
    collected = ok(collect(source, cursor="100")[0])
    assert asked(httpserver) == [None] and collected.cursor == "105"


def test_after_a_gap_it_pages_back_to_the_last_seen_message_and_stops(httpserver: HTTPServer, tmp_path: Path) -> None:
    source = channel_source(tmp_path, serve(httpserver, Channel(newest=150)), "    max_pages: 10")
    collected = ok(collect(source, cursor="100")[0])
    assert asked(httpserver) == [None, "131", "111"]  # page 3 holds 91..110: message 100 reached
    assert collected.cursor == "150" and collected.warnings == ()


def test_a_gap_longer_than_max_pages_is_a_warning(httpserver: HTTPServer, tmp_path: Path) -> None:
    source = channel_source(tmp_path, serve(httpserver, Channel(newest=150)), "    max_pages: 2")
    collected = ok(collect(source, cursor="100")[0])
    assert asked(httpserver) == [None, "131"]
    assert collected.cursor == "150"
    assert collected.warnings == (
        "stopped at message 111 after 2 page(s) without reaching message 100 seen last "
        "time: messages in between may be missed (raise max_pages or poll more often)",
    )


def test_a_server_ignoring_before_cannot_loop(httpserver: HTTPServer, tmp_path: Path) -> None:
    channel = Channel(newest=100)
    channel.ignore_before = True
    source = channel_source(tmp_path, serve(httpserver, channel), "    max_pages: 50")
    collected = ok(collect(source)[0])
    assert asked(httpserver) == [None, "81"] and len(collected.items) == 20


def test_a_page_without_messages_is_a_warning_and_health(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/s/dala_news_test").respond_with_data(
        "<html><body><div class='tgme_page'>If you have Telegram, you can contact…</div></body></html>",
        content_type="text/html",
    )
    source = channel_source(tmp_path, httpserver.url_for("/s/dala_news_test"))
    collected = ok(collect(source, cursor="7")[0])
    assert collected.items == () and collected.cursor is None  # the pipeline keeps the old cursor
    assert collected.health is not None and collected.health.startswith("no messages (div.tgme_widget_message")
    assert collected.warnings == (collected.health,)


def test_a_failing_older_page_keeps_the_newest_one(httpserver: HTTPServer, tmp_path: Path) -> None:
    channel = Channel(newest=100)

    def handler(request: Request) -> Response:
        if request.args.get("before"):
            return Response("slow down", status=429, headers={"Retry-After": "60"})
        return channel.handler(request)

    httpserver.expect_request("/s/dala_news_test").respond_with_handler(handler)
    source = channel_source(tmp_path, httpserver.url_for("/s/dala_news_test"))
    collected = ok(collect(source)[0])
    assert len(collected.items) == 20 and collected.cursor == "100"
    assert collected.retry_at == NOW + timedelta(seconds=60)
    assert "could not read older messages" in collected.warnings[0]


def test_a_search_url_keeps_its_query_when_paging(httpserver: HTTPServer, tmp_path: Path) -> None:
    channel = Channel(newest=60)
    httpserver.expect_request("/s/dala_news_test").respond_with_handler(channel.handler)
    source = channel_source(tmp_path, httpserver.url_for("/s/dala_news_test") + "?q=совет", "    max_pages: 2")
    ok(collect(source)[0])
    assert [dict(request.args) for request, _ in httpserver.log] == [{"q": "совет"}, {"q": "совет", "before": "41"}]


def test_a_304_is_not_modified(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/s/dala_news_test").respond_with_response(Response(status=304))
    source = channel_source(tmp_path, httpserver.url_for("/s/dala_news_test"))
    collected = ok(collect(source, state=SourceState("chan", etag='"t"', cursor="9"))[0])
    assert collected.not_modified and collected.etag == '"t"' and collected.cursor is None


# --- through the real pipeline -----------------------------------------------------------------------------


def poll(source: TelegramSource, store: SqliteStore, tmp_path: Path) -> RunResult:
    matcher = Matcher(make_config(tmp_path, TOPICS + "sources: []").topics)

    async def go() -> RunResult:
        async with Fetcher(per_host=2, user_agent="monitor-test", clock=lambda: NOW) as fetcher:
            return await run_source(source, fetcher=fetcher, store=store, matcher=matcher, now=NOW)

    return asyncio.run(go())


def test_polls_store_each_message_once_and_an_edit_updates_its_row(
    httpserver: HTTPServer, tmp_path: Path, store: SqliteStore
) -> None:
    channel = Channel(newest=45)
    channel.texts[44] = "В соцсетях появилась «декларация Народного совета»"
    source = channel_source(tmp_path, serve(httpserver, channel), "    max_pages: 2")
    first = poll(source, store, tmp_path)
    assert first.ok and first.new_posts == 40 and first.topics == ("peoples-council",), first
    assert store.source_state("chan").cursor == "45"
    second = poll(source, store, tmp_path)
    assert second.ok and second.new_posts == 0 and second.updated_posts == 0, second
    channel.texts[44] = "В соцсетях появилась «декларация Народного совета». Полиция проверяет её на сепаратизм"
    channel.newest = 46
    third = poll(source, store, tmp_path)
    assert third.ok and third.new_posts == 1 and third.updated_posts == 1, third
    rows: Callable[[str], Any] = lambda sql: store.conn.execute(sql).fetchall()  # noqa: E731
    assert rows("SELECT count(*) FROM posts") == [(41,)]
    assert rows("SELECT key, text FROM posts WHERE key LIKE '%/44'") == [
        ("https://t.me/dala_news_test/44", channel.texts[44])
    ]
