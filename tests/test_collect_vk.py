"""The vk collector: golden files on the VkNet captures, the token kept out of URLs, the store and logs, API
errors and paging against a real HTTP server on 127.0.0.1, and a missing token failing only its own source.

Golden files live in tests/golden/api/ (`vk__<capture>.json`); regenerate after a deliberate change with
`UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_collect_vk.py` and read the diff.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.collectors import vk
from monitor.collectors.fetch import Fetcher, RequestLimits
from monitor.collectors.vk import VkSource
from monitor.config import Config
from monitor.exceptions import FetchError, ParseError
from monitor.match import Matcher
from monitor.pipeline import poll_sources
from monitor.store.sqlite import SqliteStore
from monitor.types import Collected, RunResult, SourceState
from tests.conftest import NOW, collect_once, make_config, run_once
from tests.goldens import check_golden

LIMITS = RequestLimits(timeout=timedelta(seconds=5), max_bytes=1_000_000, user_agent="monitor-test/1.0", robots=False)
TOKEN = "vk1.a.SECRET-service-token-0123456789"
WALLS = [
    "wall.get_extended_copy_history.json",
    "wall.get_geo.json",
    "wall.get_poll.json",
    "wall.getById_donut.json",
]


# ---------------------------------------------------------------- helpers


def load(corpus: Path, name: str) -> Any:
    return json.loads((corpus / "api" / "vk" / name).read_text(encoding="utf-8"))


def config_for(tmp_path: Path, url: str, extra: str = "") -> Config:
    return make_config(
        tmp_path,
        f"""
        topics: {{kz: [казахстан*]}}
        sources:
          - {{name: vk-wall, type: vk, domain: evil_incorparate, count: 10, url: '{url}', robots: false}}
        {extra}
        """,
    )


def source_for(tmp_path: Path, url: str) -> VkSource:
    source = config_for(tmp_path, url).sources[0]
    assert isinstance(source, VkSource)
    return source


def collect(source: VkSource, state: SourceState | None = None) -> tuple[Collected | FetchError, list[Any]]:
    return collect_once(vk.collect, source, state, limits=LIMITS)


def run(source: VkSource, store: SqliteStore, now: datetime = NOW) -> RunResult:
    result: RunResult = run_once(source, store, now)
    return result


class Wall:
    """wall.get served like VK: newest first, `count` and `offset`, the token checked in the header."""

    def __init__(self, server: HTTPServer, template: dict[str, Any], ids: range) -> None:
        self.template = template
        self.ids = list(ids)
        self.queries: list[dict[str, list[str]]] = []
        server.expect_request("/method/wall.get").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        query = parse_qs(urlsplit(request.url).query)
        self.queries.append(query)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Response(json.dumps({"error": {"error_code": 5, "error_msg": "User authorization failed"}}))
        count, offset = int(query["count"][0]), int(query.get("offset", ["0"])[0])
        page = sorted(self.ids, reverse=True)[offset : offset + count]
        items = [{**copy.deepcopy(self.template), "id": n, "text": f"Пост {n} о Казахстане"} for n in page]
        body = {"response": {"count": len(self.ids), "items": items, "profiles": [], "groups": []}}
        return Response(json.dumps(body, ensure_ascii=False), content_type="application/json; charset=utf-8")


# ---------------------------------------------------------------- golden files and mapping


@pytest.mark.parametrize("name", WALLS)
def test_capture_matches_golden(corpus: Path, name: str) -> None:
    check_golden(f"vk__{name}", vk.parse_wall(load(corpus, name)))


def test_reposts_quote_the_original_with_its_attachments(corpus: Path) -> None:
    [item] = vk.parse_wall(load(corpus, "wall.get_geo.json"))
    assert item.guid == "wall1563369_1164" and item.url == "https://vk.com/wall1563369_1164"
    assert item.text.splitlines()[:2] == ["Repost (https://vk.com/wall-42895313_128):", "Мы оформляем храм..."]
    assert "Poll: А вы как готовитесь к Пасхе? — Красим яйца, печем куличи / " in item.text
    assert item.text.endswith("Place: Neklinovskiy pereulok, Rostov-na-Donu")
    assert item.published == datetime.fromisoformat("2014-04-19T13:58:26+00:00")


def test_authors_come_from_profiles_and_groups(corpus: Path) -> None:
    [repost] = vk.parse_wall(load(corpus, "wall.get_extended_copy_history.json"))
    assert repost.author == "Иван Иванов" and repost.text.startswith("Repost from Корпорация Зла (")
    [donut] = vk.parse_wall(load(corpus, "wall.getById_donut.json"))
    assert donut.author == "Группа ВК" and donut.guid == "wall-322_123"


def test_markup_in_vk_text(corpus: Path) -> None:
    post = {**load(corpus, "wall.get_poll.json")["response"]["items"][0]}
    post["text"] = "[club29246653|Корпорация Зла] пишет:<br>Народный совет &quot;собрался&quot;"
    post["attachments"] = [{"type": "link", "link": {"url": "https://example.kz/a", "title": "Халық кеңесі"}}]
    item = vk.wall_item(post)
    assert item is not None
    assert item.text == 'Корпорация Зла пишет:\nНародный совет "собрался"\nLink: Халық кеңесі https://example.kz/a'


def test_comments_are_not_wall_posts(corpus: Path) -> None:
    with pytest.raises(ParseError, match="expected VK wall posts"):
        vk.parse_wall(load(corpus, "wall.getComments_likes_attachments.json"))
    with pytest.raises(ParseError, match=r"expected a VK wall\.get response"):
        vk.parse_wall([1, 2])


def test_api_errors_map_to_fetch_errors() -> None:
    assert vk.api_error({"response": {"items": []}}) is None
    flood = vk.api_error({"error": {"error_code": 6, "error_msg": "Too many requests per second"}})
    assert flood is not None and str(flood) == "VK API error 6: Too many requests per second"
    assert flood.retry_after == 5.0
    quota = vk.api_error({"error": {"error_code": 29, "error_msg": "Rate limit reached"}})
    assert quota is not None and quota.retry_after == 3600.0
    denied = vk.api_error({"error": {"error_code": 15, "error_msg": "Access denied: wall is disabled"}})
    assert denied is not None and denied.retry_after is None


@settings(deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "response",
                        "items",
                        "id",
                        "owner_id",
                        "from_id",
                        "text",
                        "date",
                        "copy_history",
                        "attachments",
                        "type",
                        "photo",
                        "link",
                        "poll",
                        "profiles",
                        "groups",
                        "geo",
                    ]
                ),
                inner,
                max_size=6,
            )
        ),
        max_leaves=25,
    )
)
def test_any_json_gives_items_or_a_parse_error(data: object) -> None:
    try:
        items = vk.parse_wall(data)
    except ParseError:
        return
    assert all(i.guid and i.guid.startswith("wall") for i in items)


def test_request_url_carries_no_token(tmp_path: Path) -> None:
    source = source_for(tmp_path, vk.API_URL)
    url = vk.request_url(source, offset=20)
    assert parse_qs(urlsplit(url).query) == {
        "domain": ["evil_incorparate"],
        "count": ["10"],
        "extended": ["1"],
        "v": ["5.199"],
        "offset": ["20"],
    }
    assert "token" not in url


# ---------------------------------------------------------------- the token


def test_without_the_token_only_the_vk_source_fails(
    tmp_path: Path, httpserver: HTTPServer, store: SqliteStore, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VK_SERVICE_TOKEN", raising=False)
    httpserver.expect_request("/api/v1/timelines/tag/hoot").respond_with_data(
        (corpus / "api/mastodon/timelines_tag_hoot_localhost.json").read_bytes(), content_type="application/json"
    )
    config = config_for(
        tmp_path,
        httpserver.url_for("/method/wall.get"),
        extra=f"""
          - {{name: masto, type: mastodon, url: '{httpserver.url_for("/api/v1/timelines/tag/hoot")}', robots: false}}
        """,
    )

    async def go() -> list[RunResult]:
        async with Fetcher(user_agent="t", clock=lambda: NOW) as fetcher:
            return await poll_sources(
                config.sources, fetcher=fetcher, store=store, matcher=Matcher(config.topics), clock=lambda: NOW
            )

    wall, masto = asyncio.run(go())
    assert not wall.ok and wall.error is not None
    assert wall.error.startswith("environment variable VK_SERVICE_TOKEN is not set")
    assert masto.ok and masto.new_posts == 1
    assert [r[0].path for r in httpserver.log] == ["/api/v1/timelines/tag/hoot"]  # nothing asked of VK
    assert store.source_state("vk-wall").last_error == wall.error


def test_the_token_goes_in_a_header_and_nowhere_else(
    tmp_path: Path,
    httpserver: HTTPServer,
    store: SqliteStore,
    corpus: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("VK_SERVICE_TOKEN", TOKEN)
    Wall(httpserver, load(corpus, "wall.get_poll.json")["response"]["items"][0], range(1, 6))
    source = source_for(tmp_path, httpserver.url_for("/method/wall.get"))
    assert run(source, store).new_posts == 5
    request = httpserver.log[0][0]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}" and TOKEN not in request.url

    # an API error that quotes the token: masked in the error, the store and the logs
    httpserver.clear()
    httpserver.expect_request("/method/wall.get").respond_with_json(
        {"error": {"error_code": 5, "error_msg": f"User authorization failed: invalid access_token ({TOKEN})."}}
    )
    failed = run(source, store, NOW + timedelta(minutes=15))
    assert not failed.ok and failed.error == "VK API error 5: User authorization failed: invalid access_token (***)."
    fetched = store.conn.execute("SELECT url, error FROM fetches").fetchall()
    assert len(fetched) == 2 and all(TOKEN not in (url + (error or "")) for url, error in fetched)
    dump = "\n".join(store.conn.iterdump())
    assert "domain=evil_incorparate" in dump and TOKEN not in dump
    assert TOKEN not in caplog.text and "VK API error 5" in caplog.text


def test_rate_limit_error_sets_retry_at(
    tmp_path: Path, httpserver: HTTPServer, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VK_SERVICE_TOKEN", TOKEN)
    httpserver.expect_request("/method/wall.get").respond_with_json(
        {"error": {"error_code": 29, "error_msg": "Rate limit reached"}}
    )
    source = source_for(tmp_path, httpserver.url_for("/method/wall.get"))
    result = run(source, store)
    assert not result.ok and result.error == "VK API error 29: Rate limit reached"
    assert store.source_state("vk-wall").retry_at == NOW + timedelta(hours=1)
    assert run(source, store, NOW + timedelta(minutes=30)).skipped and len(httpserver.log) == 1


# ---------------------------------------------------------------- paging and the pipeline


def test_first_poll_one_page_later_polls_page_back_to_the_cursor(
    tmp_path: Path, httpserver: HTTPServer, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VK_SERVICE_TOKEN", TOKEN)
    wall = Wall(httpserver, load(corpus, "wall.get_poll.json")["response"]["items"][0], range(1, 31))
    source = source_for(tmp_path, httpserver.url_for("/method/wall.get"))
    first, _ = collect(source)
    assert isinstance(first, Collected) and len(first.items) == 10 and first.cursor == "30"
    assert wall.queries[0] == {"domain": ["evil_incorparate"], "count": ["10"], "extended": ["1"], "v": ["5.199"]}

    wall.ids += range(31, 46)  # 15 new posts
    second, records = collect(source, SourceState("vk-wall", cursor=first.cursor))
    assert isinstance(second, Collected) and second.cursor == "45"
    assert [q.get("offset") for q in wall.queries[1:]] == [None, ["10"]]
    assert len(second.items) == 20 and [r.items for r in records] == [10, 10]

    wall.ids += range(46, 100)  # more than three pages
    third, records = collect(source, SourceState("vk-wall", cursor=second.cursor))
    assert isinstance(third, Collected) and len(records) == vk.MAX_PAGES
    assert third.cursor == "99" and "older ones skipped" in third.warnings[0]


def test_a_second_poll_adds_nothing(
    tmp_path: Path, httpserver: HTTPServer, store: SqliteStore, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VK_SERVICE_TOKEN", TOKEN)
    httpserver.expect_request("/method/wall.get").respond_with_data(
        (corpus / "api/vk/wall.get_geo.json").read_bytes(), content_type="application/json; charset=utf-8"
    )
    source = source_for(tmp_path, httpserver.url_for("/method/wall.get"))
    first = run(source, store)
    assert first.ok and first.new_posts == 1
    assert store.conn.execute("SELECT key, url, author FROM posts").fetchall() == [
        ("wall1563369_1164", "https://vk.com/wall1563369_1164", None)
    ]
    second = run(source, store, NOW + timedelta(minutes=15))
    assert second.ok and second.new_posts == 0 and second.updated_posts == 0
    assert store.source_state("vk-wall").cursor == "1164"
