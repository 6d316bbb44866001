"""The reddit collector: golden files on the real captures, paging, comment threads and rate limits against
a real HTTP server on 127.0.0.1, and comments linked to their post through the real pipeline and store.

Golden files live in tests/golden/api/ (`reddit__<capture>.json`); regenerate after a deliberate change
with `UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_collect_reddit.py` and read the diff.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from monitor.collectors import reddit
from monitor.collectors.fetch import Fetcher, RequestLimits
from monitor.collectors.paging import DEFAULT_RATE_WAIT
from monitor.collectors.reddit import RedditSource
from monitor.exceptions import FetchError, ParseError
from monitor.store.sqlite import SqliteStore
from monitor.types import Collected, RawItem, RunResult, SourceState
from tests.conftest import NOW, collect_once, make_config, run_once
from tests.goldens import check_golden

LIMITS = RequestLimits(timeout=timedelta(seconds=5), max_bytes=1_000_000, user_agent="monitor-test/1.0", robots=False)
JSON = "application/json; charset=UTF-8"


# ---------------------------------------------------------------- helpers


def load(corpus: Path, name: str) -> Any:
    return json.loads((corpus / "api" / "reddit" / name).read_text(encoding="utf-8"))


def source_for(tmp_path: Path, url: str, extra: str = "") -> RedditSource:
    config = make_config(
        tmp_path,
        f"""
        topics: {{kz: [kazakhstan]}}
        sources:
          - {{name: rd, type: reddit, url: '{url}', robots: false{extra}}}
        """,
    )
    source = config.sources[0]
    assert isinstance(source, RedditSource)
    return source


def collect(source: RedditSource, state: SourceState | None = None) -> tuple[Collected | FetchError, list[Any]]:
    return collect_once(reddit.collect, source, state, limits=LIMITS)


def run(source: RedditSource, store: SqliteStore, now: datetime = NOW) -> RunResult:
    result: RunResult = run_once(source, store, now)
    return result


class Subreddit:
    """/r/askreddit/new.json served like Reddit: newest first, `limit` and `after` honoured."""

    def __init__(self, server: HTTPServer, listing: dict[str, Any], visible: int) -> None:
        self.children = listing["data"]["children"]
        self.visible = visible  # how many of the oldest posts exist "now"
        self.queries: list[dict[str, list[str]]] = []
        server.expect_request("/r/askreddit/new.json").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        query = parse_qs(urlsplit(request.url).query)
        self.queries.append(query)
        posts = self.children[len(self.children) - self.visible :]
        if "after" in query:
            names = [c["data"]["name"] for c in posts]
            posts = posts[names.index(query["after"][0]) + 1 :]
        limit = int(query.get("limit", ["25"])[0])
        page = posts[:limit]
        after = page[-1]["data"]["name"] if len(posts) > limit else None
        body = {"kind": "Listing", "data": {"children": page, "after": after, "before": None, "modhash": ""}}
        return Response(json.dumps(body), content_type=JSON)


# ---------------------------------------------------------------- golden files and mapping


@pytest.mark.parametrize("name", ["r-askreddit_new_limit100.json", "search_r-all_q-praw-oauth-search.json"])
def test_listing_matches_golden(corpus: Path, name: str) -> None:
    posts, _ = reddit.parse_listing(load(corpus, name))
    check_golden(f"reddit__{name}", [p.item for p in posts])


def test_comments_match_golden(corpus: Path) -> None:
    check_golden("reddit__comments_2gmzqe.json", reddit.parse_comments(load(corpus, "comments_2gmzqe.json")))


def test_listing_facts(corpus: Path) -> None:
    posts, after = reddit.parse_listing(load(corpus, "r-askreddit_new_limit100.json"))
    assert len(posts) == 100 and after == "t3_48f6io"
    first = posts[0]
    assert first.item.guid == "t3_48fbm9" and first.id == "48fbm9" and first.comments == 1
    assert (
        first.item.url
        == "https://www.reddit.com/r/AskReddit/comments/48fbm9/serious_parents_of_reddit_whats_the_biggest_lie/"
    )
    assert first.item.published == datetime.fromisoformat("2016-03-01T08:37:38+00:00")
    search, _ = reddit.parse_listing(load(corpus, "search_r-all_q-praw-oauth-search.json"))
    assert [p.item.extra[0][1] for p in search][:3] == ["redditdev", "redditdev", "learnpython"]
    assert search[-1].item.title == "たびたび話題になるサイドバーの閲覧中ユーザ数について（また）調べた"


def test_comment_threads_are_flattened_and_point_at_the_post(corpus: Path) -> None:
    comments = reddit.parse_comments(load(corpus, "comments_2gmzqe.json"))
    assert [c.guid for c in comments] == ["t1_cklfmye", "t1_cklhv0f"]  # the reply follows its parent
    assert {c.parent_ref for c in comments} == {"t3_2gmzqe"}
    assert comments[1].extra == (("reply_to", "t1_cklfmye"),)
    assert comments[1].url == (
        "https://www.reddit.com/r/redditdev/comments/2gmzqe/praw_https_enabled_praw_testing_needed/cklhv0f/"
    )


def test_link_posts_carry_their_target_and_deleted_comments_are_skipped(corpus: Path) -> None:
    page = load(corpus, "comments_2gmzqe.json")
    post = copy.deepcopy(page[0])
    post["data"]["children"][0]["data"].update(
        is_self=False, url="https://example.kz/news/1", selftext="", selftext_html=None
    )
    [link] = [p.item for p in reddit.parse_listing(post)[0]]
    assert link.text == "https://example.kz/news/1" and ("link", "https://example.kz/news/1") in link.extra
    page[1]["data"]["children"][0]["data"].update(body="[deleted]", author="[deleted]")
    assert [c.guid for c in reddit.parse_comments(page)] == ["t1_cklhv0f"]  # its reply is kept


def test_the_cassette_holds_the_same_search_listing(corpus: Path) -> None:
    cassette = load(corpus, "cassette_TestSubreddit.test_search.json")
    [search] = [i for i in cassette["interactions"] if i["request"]["method"] == "GET"]
    body = search["response"]["body"]["string"]
    assert body == (corpus / "api/reddit/search_r-all_q-praw-oauth-search.json").read_text(encoding="utf-8")
    posts, _ = reddit.parse_listing(json.loads(body))
    assert len(posts) == 6


def test_other_shapes_are_parse_errors(corpus: Path) -> None:
    with pytest.raises(ParseError, match="expected a Reddit Listing"):
        reddit.parse_listing(load(corpus, "comments_2gmzqe.json"))
    with pytest.raises(ParseError, match="expected a Reddit comment page"):
        reddit.parse_comments(load(corpus, "r-askreddit_new_limit100.json"))
    with pytest.raises(ParseError, match="kind 'Listing'"):
        reddit.parse_listing({"message": "Forbidden", "error": 403})


@settings(deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "kind",
                        "data",
                        "children",
                        "name",
                        "id",
                        "created_utc",
                        "body",
                        "replies",
                        "permalink",
                        "title",
                        "selftext",
                        "is_self",
                        "url",
                        "num_comments",
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
        posts, _ = reddit.parse_listing(data)
        comments = reddit.parse_comments(data)
    except ParseError:
        return
    assert all(isinstance(p.item, RawItem) for p in posts) and all(c.guid for c in comments)


def test_listing_url() -> None:
    url = reddit.listing_url("https://www.reddit.com/r/Kazakhstan/new", limit=25)
    assert url == "https://www.reddit.com/r/Kazakhstan/new.json?raw_json=1&limit=25"
    search = reddit.listing_url(
        "https://www.reddit.com/r/Kazakhstan/search.json?q=%D1%81%D0%B5%D0%BF%D0%B0%D1%80%D0%B0%D1%82%D0%B8%D0%B7%D0%BC"
        "&restrict_sr=1&after=t3_x",
        limit=100,
        after="t3_y",
    )
    assert parse_qs(urlsplit(search).query) == {
        "q": ["сепаратизм"],
        "restrict_sr": ["1"],
        "sort": ["new"],
        "raw_json": ["1"],
        "limit": ["100"],
        "after": ["t3_y"],
    }
    assert reddit.comments_url("http://127.0.0.1:8000/r/x/new.json", "2gmzqe") == (
        "http://127.0.0.1:8000/comments/2gmzqe.json?raw_json=1&limit=200&sort=new"
    )


# ---------------------------------------------------------------- fetching against 127.0.0.1


def test_first_poll_one_page_later_polls_page_back_to_the_cursor(
    tmp_path: Path, httpserver: HTTPServer, corpus: Path
) -> None:
    sub = Subreddit(httpserver, load(corpus, "r-askreddit_new_limit100.json"), visible=60)
    source = source_for(tmp_path, httpserver.url_for("/r/askreddit/new.json"))
    first, _ = collect(source)
    assert isinstance(first, Collected) and len(first.items) == 60
    assert sub.queries == [{"raw_json": ["1"], "limit": ["100"]}]

    sub.visible = 100  # 40 new posts
    second, records = collect(source, SourceState("rd", cursor=first.cursor))
    assert isinstance(second, Collected)
    assert [q.get("limit") for q in sub.queries[1:]] == [["25"], ["100"]]
    assert sub.queries[2]["after"] == [sub.children[24]["data"]["name"]]  # page 1 was all new
    assert len(second.items) == 100 and second.warnings == () and [r.items for r in records] == [25, 75]

    third, _ = collect(source, SourceState("rd", cursor=second.cursor))
    assert isinstance(third, Collected) and len(sub.queries) == 4  # nothing new: one small page


def test_paging_is_bounded(
    tmp_path: Path, httpserver: HTTPServer, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reddit, "NEXT_LIMIT", 10)
    monkeypatch.setattr(reddit, "FIRST_LIMIT", 10)
    sub = Subreddit(httpserver, load(corpus, "r-askreddit_new_limit100.json"), visible=100)
    source = source_for(tmp_path, httpserver.url_for("/r/askreddit/new.json"))
    result, _ = collect(source, SourceState("rd", cursor='{"newest": 1000.0, "threads": {}}'))
    assert isinstance(result, Collected) and len(sub.queries) == reddit.MAX_PAGES
    assert len(result.items) == 30 and "older ones skipped" in result.warnings[0]


def test_comment_threads_are_bounded_and_read_again_only_when_they_grow(
    tmp_path: Path, httpserver: HTTPServer, corpus: Path
) -> None:
    Subreddit(httpserver, load(corpus, "r-askreddit_new_limit100.json"), visible=100)
    thread = (corpus / "api/reddit/comments_2gmzqe.json").read_bytes()
    httpserver.expect_request(re.compile(r"/comments/\w+\.json")).respond_with_data(thread, content_type=JSON)
    source = source_for(
        tmp_path, httpserver.url_for("/r/askreddit/new.json"), ", comments: true, max_comment_threads: 3"
    )
    first, records = collect(source)
    assert isinstance(first, Collected)
    threads = [r.url for r in records if "/comments/" in r.url]
    assert len(threads) == 3 and "/comments/48fbm9.json" in threads[0]  # the newest post's thread first
    comments = [i for i in first.items if i.guid and i.guid.startswith("t1_")]
    assert len(comments) == 6 and comments[0].parent_ref == "t3_48fbm9"
    cursor = json.loads(first.cursor or "")
    assert cursor["threads"]["48fbm9"] == 1 and len(cursor["threads"]) == 3

    second, records = collect(source, SourceState("rd", cursor=first.cursor))
    assert isinstance(second, Collected)
    assert len([r for r in records if "/comments/" in r.url]) == 3  # the next three threads waiting
    assert "48fbm9" not in "".join(r.url for r in records if "/comments/" in r.url)


def test_rate_limit_headers_stop_the_poll_and_set_retry_at(
    tmp_path: Path, httpserver: HTTPServer, corpus: Path, store: SqliteStore
) -> None:
    httpserver.expect_request("/r/askreddit/new.json").respond_with_data(
        (corpus / "api/reddit/r-askreddit_new_limit100.json").read_bytes(),
        content_type=JSON,
        headers={"X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Used": "100", "X-Ratelimit-Reset": "120"},
    )
    source = source_for(tmp_path, httpserver.url_for("/r/askreddit/new.json"), ", comments: true")
    result, records = collect(source)
    assert isinstance(result, Collected) and len(records) == 1  # no comment thread asked for
    assert len(result.items) == 100 and result.retry_at == NOW + timedelta(seconds=120)
    assert result.health == "rate-limited until 2026-03-01 12:02:00Z"

    stored = run(source, store)
    assert stored.ok and stored.new_posts == 100
    state = store.source_state("rd")
    assert state.retry_at == NOW + timedelta(seconds=120) and state.health == result.health
    requests = len(httpserver.log)
    assert run(source, store, NOW + timedelta(seconds=60)).skipped and len(httpserver.log) == requests


@pytest.mark.parametrize("reset", ["1e300", "99999999999999", "inf", "soon"])
def test_a_rate_limit_reset_past_the_calendar_or_unreadable_waits_the_default(
    tmp_path: Path, httpserver: HTTPServer, corpus: Path, reset: str
) -> None:
    """A reset no clock can hold (1e300 overflowed datetime and crashed the collector) waits DEFAULT_RATE_WAIT."""
    httpserver.expect_request("/r/askreddit/new.json").respond_with_data(
        (corpus / "api/reddit/r-askreddit_new_limit100.json").read_bytes(),
        content_type=JSON,
        headers={"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": reset},
    )
    result, _ = collect(source_for(tmp_path, httpserver.url_for("/r/askreddit/new.json")))
    assert isinstance(result, Collected) and len(result.items) == 100
    assert result.retry_at == NOW + DEFAULT_RATE_WAIT


def test_429_gives_retry_after(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/r/askreddit/new.json").respond_with_data(
        "Too Many Requests", status=429, headers={"Retry-After": "60"}
    )
    error, records = collect(source_for(tmp_path, httpserver.url_for("/r/askreddit/new.json")))
    assert isinstance(error, FetchError) and error.retry_after == 60.0 and records[0].http_status == 429


def test_a_blocked_html_answer_is_a_clear_parse_error(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/r/askreddit/new.json").respond_with_data(
        "<!doctype html><title>Blocked</title>", content_type="text/html"
    )
    source = source_for(tmp_path, httpserver.url_for("/r/askreddit/new.json"))

    async def go() -> Collected:
        async with Fetcher(user_agent="t", clock=lambda: NOW) as fetcher:
            return await reddit.collect(source, fetcher.session("rd", LIMITS), SourceState("rd"), NOW)

    with pytest.raises(ParseError, match="got an HTML page"):
        asyncio.run(go())


def test_the_cassette_response_served_as_recorded(tmp_path: Path, httpserver: HTTPServer, corpus: Path) -> None:
    cassette = load(corpus, "cassette_TestSubreddit.test_search.json")
    [search] = [i for i in cassette["interactions"] if i["request"]["method"] == "GET"]
    headers = {k: v[0] for k, v in search["response"]["headers"].items() if k in ("Content-Type", "Vary")}
    httpserver.expect_request("/r/all/search.json").respond_with_data(
        search["response"]["body"]["string"].encode("utf-8"), headers=headers
    )
    source = source_for(tmp_path, httpserver.url_for("/r/all/search.json") + "?q=praw+oauth+search&sort=relevance")
    result, _ = collect(source)
    assert isinstance(result, Collected) and len(result.items) == 6
    sent = httpserver.log[0][0].args
    assert sent["q"] == "praw oauth search" and sent["sort"] == "relevance" and sent["raw_json"] == "1"


# ---------------------------------------------------------------- through the pipeline


def test_comments_are_linked_to_their_post_and_a_second_poll_adds_nothing(
    tmp_path: Path, httpserver: HTTPServer, corpus: Path, store: SqliteStore
) -> None:
    page = load(corpus, "comments_2gmzqe.json")
    listing = page[0]  # a Listing holding the one post
    httpserver.expect_request("/r/redditdev/new.json").respond_with_handler(
        lambda request: Response(json.dumps(listing), content_type=JSON)
    )
    httpserver.expect_request("/comments/2gmzqe.json").respond_with_data(json.dumps(page), content_type=JSON)
    source = source_for(tmp_path, httpserver.url_for("/r/redditdev/new.json"), ", comments: true")

    first = run(source, store)
    assert first.ok and first.new_posts == 3
    rows = dict(store.conn.execute("SELECT key, parent_id FROM posts").fetchall())
    post_id = store.conn.execute("SELECT id FROM posts WHERE key = 't3_2gmzqe'").fetchone()[0]
    assert rows == {"t3_2gmzqe": None, "t1_cklfmye": post_id, "t1_cklhv0f": post_id}

    requests = len(httpserver.log)
    second = run(source, store, NOW + timedelta(minutes=15))
    assert second.ok and second.new_posts == 0 and second.updated_posts == 0
    assert len(httpserver.log) == requests + 1  # the listing only: no comment grew

    listing["data"]["children"][0]["data"]["num_comments"] = 3  # a new comment: the thread is read again
    third = run(source, store, NOW + timedelta(minutes=30))
    assert third.ok and third.new_posts == 0 and len(httpserver.log) == requests + 3
    assert store.conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 3
