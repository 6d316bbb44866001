"""The `reddit` source type: subreddit listings and searches through Reddit's public `.json` endpoints.

`source.url` is a listing or a search, e.g. ``https://www.reddit.com/r/Kazakhstan/new.json`` or
``https://www.reddit.com/r/Kazakhstan/search.json?q=...&restrict_sr=1`` (``.json`` is added to a
path without it; a search without ``sort`` gets ``sort=new``; ``raw_json=1`` is always asked, so
texts come unescaped).

Polling: listings are newest first. The first poll reads one page of `FIRST_LIMIT` posts. Later polls
read `NEXT_LIMIT` posts and follow ``after`` (older) only while a whole page is newer than the cursor,
at most `MAX_PAGES` pages; every post on the pages read is handed on (the store keeps one row per
post and updates edited ones). A poll does not use ``before=<fullname>``: Reddit answers it with an
empty listing for ever once that post is removed, which would silently stop the source.

Comments (``comments: true``): the threads of the posts on this poll's pages whose ``num_comments``
grew since their thread was last read (new posts first), at most ``max_comment_threads`` per poll;
the others wait for the next poll. Each comment (t1) becomes a post whose parent is the submission;
nested replies are flattened and "more" stubs skipped.

Rate limits: when ``X-Ratelimit-Remaining`` reaches 0 the poll stops, keeps what it read and sets
`Collected.retry_at` to now + ``X-Ratelimit-Reset`` seconds (health "rate-limited until ...").

The cursor (opaque to the rest of the program) is JSON: the newest post's ``created_utc`` and the
comment counts of the threads read, bounded to `MAX_TRACKED_THREADS`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from monitor.collectors.htmltext import html_to_text, tidy_text
from monitor.collectors.jsonapi import describe, epoch_time, load_json, number, text_or_none
from monitor.collectors.paging import Pages
from monitor.config import SourceBase, SourceURL
from monitor.exceptions import ParseError
from monitor.types import Collected, RawItem, SourceState

if TYPE_CHECKING:  # httpx is loaded to poll, not to read the config
    from monitor.collectors.fetch import Session

__all__ = [
    "FIRST_LIMIT",
    "MAX_PAGES",
    "NEXT_LIMIT",
    "RedditSource",
    "Submission",
    "collect",
    "comments_url",
    "listing_url",
    "parse_comments",
    "parse_listing",
    "read_comments",
    "read_listing",
]


class RedditSource(SourceBase, frozen=True, kw_only=True):
    """`type: reddit`: a listing or search `.json` address; `comments` also reads new comment threads."""

    crawls_pages: ClassVar[bool] = False
    url: SourceURL
    comments: bool = False
    max_comment_threads: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10


SITE = "https://www.reddit.com"  # permalinks are relative to it
FIRST_LIMIT = 100  # posts on the first poll's one page (the API's maximum)
NEXT_LIMIT = 25  # posts on a later poll's first page
MAX_PAGES = 3  # listing pages per poll
COMMENT_LIMIT = 200  # comments asked for per thread
MAX_COMMENTS_PER_THREAD = 500  # comments read from one thread response, nested ones included
MAX_TRACKED_THREADS = 300  # threads whose comment count the cursor remembers
_GONE = frozenset({"[deleted]", "[removed]"})
_OWN_PARAMS = frozenset({"limit", "after", "before", "raw_json", "count"})  # set by the collector itself


# ---------------------------------------------------------------- parsing (pure)


@dataclass(frozen=True)
class Submission:
    """One post (t3) of a listing, with what paging and comment tracking need."""

    item: RawItem
    id: str  # base-36 id, e.g. "2gmzqe"
    created: float  # created_utc, seconds
    comments: int  # num_comments


def parse_listing(data: object) -> tuple[list[Submission], str | None]:
    """The posts of a decoded Listing and its ``after`` fullname. Raises ParseError on another shape."""
    children, after = _listing(data, "a Reddit Listing")
    posts = []
    for child in children:
        if isinstance(child, dict) and child.get("kind") == "t3" and isinstance(child.get("data"), dict):
            post = _submission(child["data"])
            if post is not None:
                posts.append(post)
    return posts, after


def parse_comments(data: object, *, post_guid: str | None = None) -> list[RawItem]:
    """Comments of a decoded ``/comments/<id>.json`` response, flattened, each with parent_ref = the post.

    `post_guid` defaults to the fullname of the submission in the response's first Listing.
    """
    if not (isinstance(data, list) and len(data) == 2):
        raise ParseError("expected a Reddit comment page (a JSON list of two Listings: the post, its comments)")
    post_children, _ = _listing(data[0], "a Reddit comment page's first Listing (the post)")
    comments, _ = _listing(data[1], "a Reddit comment page's second Listing (the comments)")
    post: dict[str, Any] = next(
        (c["data"] for c in post_children if isinstance(c, dict) and isinstance(c.get("data"), dict)), {}
    )
    post_guid = post_guid or text_or_none(post.get("name"))
    permalink = text_or_none(post.get("permalink"))
    items: list[RawItem] = []
    stack = list(reversed(comments))
    seen = 0
    while stack and seen < MAX_COMMENTS_PER_THREAD:  # depth-first, in page order; bounded
        node = stack.pop()
        seen += 1
        if not (isinstance(node, dict) and node.get("kind") == "t1" and isinstance(node.get("data"), dict)):
            continue  # "more" stubs and anything unknown
        comment = node["data"]
        item = _comment(comment, post_guid, permalink)
        if item is not None:
            items.append(item)
        replies = comment.get("replies")
        if isinstance(replies, dict):
            children = (replies.get("data") or {}).get("children")
            if isinstance(children, list):
                stack.extend(reversed(children))
    return items


def _listing(data: object, what: str) -> tuple[list[Any], str | None]:
    inner = data.get("data") if isinstance(data, dict) else None
    if not (
        isinstance(data, dict)
        and data.get("kind") == "Listing"
        and isinstance(inner, dict)
        and isinstance(inner.get("children"), list)
    ):
        raise ParseError(f"expected {what} (kind 'Listing' with data.children), got {describe(data)}")
    return inner["children"], text_or_none(inner.get("after"))


def _submission(post: dict[str, Any]) -> Submission | None:
    name, post_id = text_or_none(post.get("name")), text_or_none(post.get("id"))
    if name is None or post_id is None:
        return None
    created = number(post.get("created_utc"))
    text = _markdown_text(post, "selftext")
    link = text_or_none(post.get("url"))
    is_link_post = post.get("is_self") is False and link is not None and not _is_reddit_permalink(link)
    extra = [
        ("subreddit", str(post.get("subreddit") or "")),
        ("num_comments", str(post.get("num_comments", 0))),
    ]
    if is_link_post and link:
        text = f"{text}\n{link}" if text else link
        extra.append(("link", link))
    permalink = text_or_none(post.get("permalink"))
    if permalink:
        permalink = permalink.split("?", 1)[0]  # search results add ?ref=search_posts
    item = RawItem(
        guid=name,
        url=SITE + permalink if permalink else link,
        title=tidy_text(text_or_none(post.get("title")) or "").replace("\n", " "),
        text=text,
        author=_author(post),
        published=epoch_time(created),
        extra=tuple(extra),
    )
    comments = post.get("num_comments")
    return Submission(item, post_id, created or 0.0, comments if isinstance(comments, int) else 0)


def _comment(comment: dict[str, Any], post_guid: str | None, post_permalink: str | None) -> RawItem | None:
    name = text_or_none(comment.get("name"))
    body = text_or_none(comment.get("body"))
    if name is None or body is None or body.strip() in _GONE:
        return None
    text = _markdown_text(comment, "body")
    if not text:
        return None
    permalink = text_or_none(comment.get("permalink"))
    if permalink is None and post_permalink and text_or_none(comment.get("id")):
        permalink = f"{post_permalink.rstrip('/')}/{comment['id']}/"
    extra = [("reply_to", str(comment["parent_id"]))] if text_or_none(comment.get("parent_id")) else []
    return RawItem(
        guid=name,
        url=SITE + permalink if permalink else None,
        title="",
        text=text,
        author=_author(comment),
        published=epoch_time(comment.get("created_utc")),
        parent_ref=post_guid,
        extra=tuple(extra),
    )


def _markdown_text(thing: dict[str, Any], key: str) -> str:
    """Reddit's rendered HTML (``selftext_html``/``body_html``) as text, else the markdown source."""
    rendered = text_or_none(thing.get(f"{key}_html"))
    if rendered:
        return html_to_text(rendered)
    return tidy_text(text_or_none(thing.get(key)) or "")


def _author(thing: dict[str, Any]) -> str | None:
    author = text_or_none(thing.get("author"))
    return None if author is None or author in _GONE else author


def _is_reddit_permalink(url: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return (host == "reddit.com" or host.endswith(".reddit.com")) and "/comments/" in parts.path


# ---------------------------------------------------------------- addresses and cursor (pure)


def listing_url(url: str, *, limit: int, after: str | None = None) -> str:
    """The `.json` address of a listing or search page: raw_json=1, limit, after; sort=new for a search."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/") or "/"
    if not path.endswith(".json"):
        path += ".json"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _OWN_PARAMS]
    if path.endswith("/search.json") and not any(k == "sort" for k, _ in query):
        query.append(("sort", "new"))
    query += [("raw_json", "1"), ("limit", str(limit))]
    if after:
        query.append(("after", after))
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def comments_url(source_url: str, post_id: str) -> str:
    """The comment page of one post, on the host the listing comes from."""
    parts = urlsplit(source_url)
    query = urlencode([("raw_json", "1"), ("limit", str(COMMENT_LIMIT)), ("sort", "new")])
    return urlunsplit((parts.scheme, parts.netloc, f"/comments/{post_id}.json", query, ""))


@dataclass
class _Cursor:
    newest: float | None = None  # created_utc of the newest post seen
    threads: dict[str, int] = field(default_factory=dict)  # post id -> num_comments when its thread was read

    @classmethod
    def load(cls, text: str | None) -> _Cursor:
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        threads = data.get("threads")
        return cls(
            newest=number(data.get("newest")),
            threads={str(k): v for k, v in threads.items() if isinstance(v, int)} if isinstance(threads, dict) else {},
        )

    def dump(self) -> str:
        return json.dumps({"newest": self.newest, "threads": self.threads}, separators=(",", ":"))


# ---------------------------------------------------------------- the collector

HTML_HINT = " (blocked, or not a .json address?)"
HEADERS = {"Accept": "application/json"}


def read_listing(body: bytes, *, content_type: str | None) -> tuple[list[Submission], str | None]:
    """One listing response -> its posts and ``after`` (pure; runs in a worker process)."""
    return parse_listing(load_json(body, content_type, "Reddit", HTML_HINT))


def read_comments(body: bytes, *, content_type: str | None, post_guid: str | None) -> list[RawItem]:
    """One comment page -> its comments (pure; runs in a worker process)."""
    return parse_comments(load_json(body, content_type, "Reddit", HTML_HINT), post_guid=post_guid)


async def collect(source: RedditSource, session: Session, state: SourceState, now: datetime) -> Collected:
    cursor = _Cursor.load(state.cursor)
    pages = Pages(session, now)
    posts = await _read_listing(source, pages, cursor)
    newest = max([p.created for p in posts] + ([cursor.newest] if cursor.newest is not None else []), default=None)
    if source.comments:
        await _read_threads(source, pages, cursor, posts)
    cursor.newest = newest
    cursor.threads = _bounded_threads(cursor.threads, posts)
    return pages.collected(cursor=cursor.dump())


async def _read_listing(source: RedditSource, pages: Pages, cursor: _Cursor) -> list[Submission]:
    first = cursor.newest is None
    url = listing_url(source.url, limit=FIRST_LIMIT if first else NEXT_LIMIT)
    limit = 1 if first else MAX_PAGES
    found: list[Submission] = []
    for page in range(limit):
        resp = await pages.first(url, headers=HEADERS) if page == 0 else await pages.get(url, headers=HEADERS)
        read = await pages.parse(resp, read_listing, content_type=resp.content_type) if resp is not None else None
        if read is None:
            break
        posts, after = read
        pages.session.note_items(len(posts))
        found.extend(posts)
        pages.items.extend(p.item for p in posts)
        all_new = bool(posts) and all(p.created > (cursor.newest or 0) for p in posts)
        if pages.stopped or first or not all_new or after is None:
            break
        if page == limit - 1:
            pages.capped(f"more than {len(found)} new posts since the last poll: older ones skipped")
            break
        url = listing_url(source.url, limit=FIRST_LIMIT, after=after)
    return found


async def _read_threads(source: RedditSource, pages: Pages, cursor: _Cursor, posts: list[Submission]) -> None:
    unique = {p.id: p for p in posts}  # pages can overlap when posts arrive between requests
    grown = sorted(
        (p for p in unique.values() if p.comments > cursor.threads.get(p.id, 0)), key=lambda p: p.created, reverse=True
    )
    for post in grown[: source.max_comment_threads]:
        what = f"the comments of {post.item.guid}"
        resp = await pages.get(comments_url(source.url, post.id), what=what, headers=HEADERS)
        if resp is None and pages.stopped:
            return  # rate-limited or the site is in trouble: the rest wait for the next poll
        comments = (
            await pages.parse(resp, read_comments, what=what, content_type=resp.content_type, post_guid=post.item.guid)
            if resp is not None
            else None
        )
        cursor.threads[post.id] = post.comments  # read, or removed, forbidden or odd: do not ask again
        if comments is not None:
            pages.session.note_items(len(comments))
            pages.items.extend(comments)
        if pages.stopped:
            return


def _bounded_threads(threads: dict[str, int], posts: list[Submission]) -> dict[str, int]:
    """The counts of this poll's posts first (newest first), then older ones, at most MAX_TRACKED_THREADS."""
    ordered: dict[str, int] = {}
    for post in sorted(posts, key=lambda p: p.created, reverse=True):
        if post.id in threads:
            ordered[post.id] = threads[post.id]
    for post_id, count in threads.items():
        if len(ordered) >= MAX_TRACKED_THREADS:
            break
        ordered.setdefault(post_id, count)
    return ordered
