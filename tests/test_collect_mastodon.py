"""The mastodon collector: golden files on the real captures, paging and rate limits against a real HTTP
server on 127.0.0.1, and boosts through the real pipeline and store.

Golden files live in tests/golden/api/ (`mastodon__<capture>.json`); regenerate after a deliberate change
with `UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_collect_mastodon.py` and read the diff.
"""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.collectors import mastodon
from monitor.collectors.fetch import Fetcher, RequestLimits
from monitor.collectors.mastodon import MastodonSource
from monitor.exceptions import FetchError, ParseError
from monitor.store.sqlite import SqliteStore
from monitor.types import Collected, RawItem, RunResult, SourceState
from tests.conftest import NOW, collect_once, make_config, run_once
from tests.goldens import check_golden

LIMITS = RequestLimits(timeout=timedelta(seconds=5), max_bytes=1_000_000, user_agent="monitor-test/1.0", robots=False)
CAPTURES = [
    "timelines_tag_page1_localhost.json",
    "timelines_tag_empty_page_localhost.json",
    "timelines_tag_hoot_localhost.json",
    "timelines_public_localhost.json",
    "search_v2_q-halcy_mastodon-social.json",
    "status_110446223051565765_mastodon-social.json",
    "status_context_mastodon-social.json",
]


# ---------------------------------------------------------------- helpers


def load(corpus: Path, name: str) -> Any:
    return json.loads((corpus / "api" / "mastodon" / name).read_text(encoding="utf-8"))


def source_for(tmp_path: Path, url: str) -> MastodonSource:
    config = make_config(
        tmp_path,
        f"""
        topics: {{kz: [kazakhstan]}}
        sources:
          - {{name: masto, type: mastodon, url: '{url}', robots: false}}
        """,
    )
    source = config.sources[0]
    assert isinstance(source, MastodonSource)
    return source


def collect(source: MastodonSource, state: SourceState | None = None) -> tuple[Collected | FetchError, list[Any]]:
    return collect_once(mastodon.collect, source, state, limits=LIMITS)


def run(source: MastodonSource, store: SqliteStore, now: datetime = NOW) -> RunResult:
    result: RunResult = run_once(source, store, now)
    return result


def derived_status(template: dict[str, Any], n: int) -> dict[str, Any]:
    """A copy of a real status with its own id, uri, url and text (for paging tests)."""
    status = copy.deepcopy(template)
    status["id"] = str(n)
    status["uri"] = f"http://localhost:3000/ap/users/1/statuses/{n}"
    status["url"] = f"http://localhost:3000/@mastodonpy_test_2/{n}"
    status["content"] = f"<p>status number {n}</p>"
    return status


class Timeline:
    """A tag timeline served like Mastodon: newest first, `min_id` pages forward, Link prev/next headers."""

    def __init__(self, server: HTTPServer, template: dict[str, Any], ids: range) -> None:
        self.server = server
        self.template = template
        self.statuses = [derived_status(template, n) for n in ids]
        self.queries: list[dict[str, list[str]]] = []
        server.expect_request("/api/v1/timelines/tag/kazakhstan").respond_with_handler(self.handle)

    def add(self, ids: range) -> None:
        self.statuses += [derived_status(self.template, n) for n in ids]

    def handle(self, request: Request) -> Response:
        query = parse_qs(urlsplit(request.url).query)
        self.queries.append(query)
        limit = int(query.get("limit", ["20"])[0])
        ordered = sorted(self.statuses, key=lambda s: int(s["id"]))
        if "min_id" in query:
            page = [s for s in ordered if int(s["id"]) > int(query["min_id"][0])][:limit]
        else:
            page = ordered[-limit:]
        page.reverse()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if page:
            base = self.server.url_for("/api/v1/timelines/tag/kazakhstan")
            headers["Link"] = (
                f'<{base}?limit={limit}&max_id={page[-1]["id"]}>; rel="next", '
                f'<{base}?limit={limit}&min_id={page[0]["id"]}>; rel="prev"'
            )
        return Response(json.dumps(page), headers=headers)


# ---------------------------------------------------------------- golden files and mapping


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_matches_golden(corpus: Path, name: str) -> None:
    check_golden(f"mastodon__{name}", mastodon.parse_statuses(load(corpus, name)))


def test_single_status_keeps_content_warning_media_description_and_the_origin_uri(corpus: Path) -> None:
    [item] = mastodon.parse_statuses(load(corpus, "status_110446223051565765_mastodon-social.json"))
    assert item.title == "test post for mastodon.py stuff"  # spoiler_text
    assert item.text.endswith("[gifv: a furry cube breakdancing]")
    assert "#ThisIsAHashtag" in item.text and "<" not in item.text
    # the status seen on mastodon.social: guid is its ActivityPub uri on its home instance, not the local id
    assert item.guid == "https://icosahedron.website/users/halcy/statuses/110446222386355655"
    assert item.author == "halcy\u200b :icosahedron: (@halcy@icosahedron.website)"
    assert item.published == datetime.fromisoformat("2023-05-28T12:06:50+00:00")


def test_entities_are_decoded_and_local_accounts_get_their_instance(corpus: Path) -> None:
    items = mastodon.parse_statuses(load(corpus, "timelines_public_localhost.json"))
    assert items[1].text == "you can't say that on television"
    assert items[1].author == "@admin@localhost"


def test_link_urls_keep_their_hidden_parts(corpus: Path) -> None:
    first = mastodon.parse_statuses(load(corpus, "search_v2_q-halcy_mastodon-social.json"))[0]
    assert first.text.endswith("https://www.youtube.com/watch?v=MWCSw_cNxKc")


def test_not_statuses_is_a_parse_error_naming_what_was_expected(corpus: Path) -> None:
    with pytest.raises(ParseError, match="expected Mastodon statuses"):
        mastodon.parse_statuses(load(corpus, "trends_tags_mastodon-social.json"))
    with pytest.raises(ParseError, match="expected Mastodon statuses"):
        mastodon.parse_statuses({"error": "This API requires an authenticated user"})


def test_a_boost_becomes_the_status_it_boosts(corpus: Path) -> None:
    original = load(corpus, "timelines_public_localhost.json")[1]
    booster = load(corpus, "status_context_mastodon-social.json")["ancestors"][0]
    boost = {**booster, "id": "999", "content": "", "reblog": original}
    [item] = mastodon.parse_statuses([boost])
    plain = mastodon.status_item(original)
    assert plain is not None and replace(item, extra=()) == replace(plain, extra=())
    assert ("boosted_by", "halcy@mastodon.social") in item.extra
    assert item.guid == original["uri"] and item.author == "@admin@localhost"


@settings(deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "id",
                        "uri",
                        "url",
                        "content",
                        "reblog",
                        "account",
                        "statuses",
                        "poll",
                        "media_attachments",
                        "spoiler_text",
                        "created_at",
                        "ancestors",
                    ]
                ),
                inner,
                max_size=6,
            )
        ),
        max_leaves=20,
    )
)
def test_any_json_gives_items_or_a_parse_error(data: object) -> None:
    try:
        items = mastodon.parse_statuses(data)
    except ParseError:
        return
    assert all(isinstance(i, RawItem) and i.guid for i in items)


# ---------------------------------------------------------------- addresses and headers


def test_page_url_replaces_paging_and_asks_search_for_statuses() -> None:
    url = mastodon.page_url("https://m.example/api/v2/search?q=%D0%BA%D0%B7&limit=5&max_id=9", min_id="42")
    assert parse_qs(urlsplit(url).query) == {"q": ["кз"], "type": ["statuses"], "limit": ["40"], "min_id": ["42"]}
    assert mastodon.page_url("https://m.example/api/v1/timelines/public?local=true", min_id=None).endswith(
        "/api/v1/timelines/public?local=true&limit=40"
    )
    assert mastodon.api_url("https://m.example/tags/Kazakhstan") == "https://m.example/api/v1/timelines/tag/Kazakhstan"


def test_link_header_of_the_capture(corpus: Path) -> None:
    headers = json.loads((corpus / "api/mastodon/timelines_tag_page1_localhost.headers.json").read_text())
    link = headers["link"][0]
    assert mastodon.link_rel(link, "next").endswith("limit=10&max_id=117020582177108552")  # type: ignore[union-attr]
    assert mastodon.link_rel(link, "prev").endswith("limit=10&min_id=117020582251615632")  # type: ignore[union-attr]
    assert mastodon.link_rel(None, "prev") is None


# ---------------------------------------------------------------- fetching against 127.0.0.1


def test_first_poll_reads_one_page_then_min_id_pages_forward_without_gaps(
    tmp_path: Path, httpserver: HTTPServer, corpus: Path
) -> None:
    timeline = Timeline(httpserver, load(corpus, "timelines_public_localhost.json")[0], range(1000, 1100))
    source = source_for(tmp_path, httpserver.url_for("/api/v1/timelines/tag/kazakhstan"))
    first, records = collect(source)
    assert isinstance(first, Collected) and len(first.items) == 40 and first.cursor == "1099"
    assert timeline.queries == [{"limit": ["40"]}]  # one page, although it was full
    assert records[0].items == 40

    timeline.add(range(1100, 1190))  # 90 new statuses
    second, records = collect(source, SourceState("masto", cursor=first.cursor))
    assert isinstance(second, Collected)
    assert [q.get("min_id") for q in timeline.queries[1:]] == [["1099"], ["1139"], ["1179"]]  # Link rel=prev
    assert sorted(int(i.extra[0][1]) for i in second.items) == list(range(1100, 1190))
    assert second.cursor == "1189" and second.warnings == ()
    assert [r.items for r in records] == [40, 40, 10]

    third, _ = collect(source, SourceState("masto", cursor=second.cursor))
    assert isinstance(third, Collected) and third.items == () and third.cursor == "1189"


def test_paging_is_bounded_and_the_next_poll_continues(tmp_path: Path, httpserver: HTTPServer, corpus: Path) -> None:
    timeline = Timeline(httpserver, load(corpus, "timelines_public_localhost.json")[0], range(1000, 2000))
    source = source_for(tmp_path, httpserver.url_for("/api/v1/timelines/tag/kazakhstan"))
    result, records = collect(source, SourceState("masto", cursor="1000"))
    assert isinstance(result, Collected)
    assert len(records) == mastodon.MAX_PAGES and len(result.items) == mastodon.MAX_PAGES * 40
    assert result.cursor == str(1000 + mastodon.MAX_PAGES * 40)
    assert "the rest on the next poll" in result.warnings[0]
    collect(source, SourceState("masto", cursor=result.cursor))
    assert timeline.queries[mastodon.MAX_PAGES]["min_id"] == [result.cursor]


def test_429_gives_retry_after_and_the_pipeline_waits(
    tmp_path: Path, httpserver: HTTPServer, store: SqliteStore
) -> None:
    httpserver.expect_request("/api/v1/timelines/public").respond_with_data(
        "Too many requests", status=429, headers={"Retry-After": "120"}
    )
    source = source_for(tmp_path, httpserver.url_for("/api/v1/timelines/public"))
    error, _ = collect(source)
    assert isinstance(error, FetchError) and error.http_status == 429 and error.retry_after == 120.0
    result = run(source, store)
    assert not result.ok and "429" in (result.error or "")
    assert store.source_state("masto").retry_at == NOW + timedelta(seconds=120)
    requests = len(httpserver.log)
    later = run(source, store, NOW + timedelta(seconds=60))
    assert later.skipped and len(httpserver.log) == requests  # no request before Retry-After ends


def test_429_on_a_later_page_keeps_what_was_read(tmp_path: Path, httpserver: HTTPServer, corpus: Path) -> None:
    template = load(corpus, "timelines_public_localhost.json")[0]
    page = [derived_status(template, n) for n in range(1040, 1000, -1)]
    httpserver.expect_ordered_request("/api/v1/timelines/tag/kazakhstan").respond_with_json(page)
    httpserver.expect_ordered_request("/api/v1/timelines/tag/kazakhstan").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "30"}
    )
    source = source_for(tmp_path, httpserver.url_for("/api/v1/timelines/tag/kazakhstan"))
    result, _ = collect(source, SourceState("masto", cursor="1000"))
    assert isinstance(result, Collected) and len(result.items) == 40 and result.cursor == "1040"
    assert result.retry_at == NOW + timedelta(seconds=30) and "429" in result.warnings[0]


def test_rate_limit_headers_stop_paging(tmp_path: Path, httpserver: HTTPServer, corpus: Path) -> None:
    template = load(corpus, "timelines_public_localhost.json")[0]
    page = [derived_status(template, n) for n in range(1040, 1000, -1)]
    httpserver.expect_request("/api/v1/timelines/tag/kazakhstan").respond_with_json(
        page, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2026-03-01T12:07:00.000Z"}
    )
    source = source_for(tmp_path, httpserver.url_for("/api/v1/timelines/tag/kazakhstan"))
    result, records = collect(source, SourceState("masto", cursor="1000"))
    assert isinstance(result, Collected) and len(records) == 1
    assert result.retry_at == NOW + timedelta(minutes=7)
    assert result.health == "rate-limited until 2026-03-01 12:07:00Z"


def test_bodies_that_are_not_json(tmp_path: Path, httpserver: HTTPServer, corpus: Path) -> None:
    httpserver.expect_request("/html").respond_with_data("<!doctype html><p>login</p>", content_type="text/html")
    httpserver.expect_request("/bom").respond_with_data(
        b"\xef\xbb\xbf" + (corpus / "api/mastodon/timelines_tag_hoot_localhost.json").read_bytes(),
        content_type="application/json",
    )
    with pytest.raises(ParseError, match="got an HTML page"):
        asyncio.run(_collect_raising(source_for(tmp_path, httpserver.url_for("/html"))))
    result, _ = collect(source_for(tmp_path, httpserver.url_for("/bom")))
    assert isinstance(result, Collected) and result.items[0].text == "#hoot (hashtag toot)"


async def _collect_raising(source: MastodonSource) -> Collected:
    async with Fetcher(user_agent="t", clock=lambda: NOW) as fetcher:
        return await mastodon.collect(source, fetcher.session(source.name, LIMITS), SourceState(source.name), NOW)


# ---------------------------------------------------------------- through the pipeline


def test_boosts_of_one_status_are_stored_once(
    tmp_path: Path, httpserver: HTTPServer, store: SqliteStore, corpus: Path
) -> None:
    public = load(corpus, "timelines_public_localhost.json")
    original, other = public[1], public[2]
    boosters = [public[0]["account"], load(corpus, "status_context_mastodon-social.json")["ancestors"][0]["account"]]
    boosts = [
        {**public[0], "id": str(117020599000000000 + n), "content": "", "account": account, "reblog": original}
        for n, account in enumerate(boosters)
    ]
    page = [boosts[1], boosts[0], other, original]  # newest first
    httpserver.expect_request("/api/v1/timelines/tag/kazakhstan").respond_with_handler(
        lambda request: Response(json.dumps([] if "min_id" in request.args else page), content_type="application/json")
    )
    source = source_for(tmp_path, httpserver.url_for("/api/v1/timelines/tag/kazakhstan"))

    first = run(source, store)
    assert first.ok and first.items == 2 and first.new_posts == 2  # four statuses on the page, two posts
    assert store.conn.execute("SELECT items FROM fetches").fetchall() == [(4,)]
    rows = store.conn.execute("SELECT key, author, text FROM posts ORDER BY id").fetchall()
    assert sorted(r[0] for r in rows) == sorted([original["uri"], other["uri"]])
    assert store.source_state("masto").cursor == boosts[1]["id"]  # the timeline's own newest id

    second = run(source, store, NOW + timedelta(minutes=15))
    assert second.ok and second.new_posts == 0
    assert httpserver.log[-1][0].args["min_id"] == boosts[1]["id"]
    assert store.conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 2
