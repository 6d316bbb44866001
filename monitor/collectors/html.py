"""The `html` source type: posts read from web pages with CSS selectors, optionally opening each linked
page (`follow`) and turning its comment section (`comments`) into posts of their own.

`parse_page`, `parse_listing`, `plan_follow` and the cursor functions are pure: they take HTML text or
data and `now`, and return data. Only `collect` fetches, always through the session.

A poll
  1. The listing (`url`) is fetched with conditional GET, then up to `max_pages - 1` further pages by
     `next` (not after a 304: page one did not change). `next` always paginates the listing.
  2. Without `follow`, `items`/`fields`/`comments` are read from each listing page.
  3. With `follow`, the listing pages only give links; then at most `max_follow` linked pages are opened,
     one at a time: first links never opened (listing order, then older ones left over by the budget),
     then pages first seen within `REVISIT_FOR` again, the one checked longest ago first, so that new
     comments are found. A 304 on the listing still revisits. A failing page is a warning (it moves to
     the back of the queue); the poll fails only when every page it tried failed. A 429/503 stops the
     poll's remaining requests and sets `Collected.retry_at`.

Fields (see selectors.py for `"css @attr"`): `text` joins every match (one paragraph each); the others take
the first match. `link`, `follow` and `next` read `@href` unless told otherwise; `link: "@id"` names the
element's anchor on the page. `published` is parsed by monitor.dates in the source's `timezone`; when the
text of a match is no date, its `datetime`, `title` or `content` attribute is tried. An item's fields never
read from a comment or another item nested inside it; an item or comment with neither title nor text (an
ad slot, a deleted comment) is left out.

Identity (the store's key is the guid, else the url; see normalize.py)
  * An item's key is its `link`. A link with a fragment (`thread#p453`) is also its guid, so that the key
    keeps the fragment: the posts of one page must not share a key.
  * The first item of a followed page is its article: without a link, the page's own URL is its url.
  * Other items without a link get a guid: the page URL + `#` + the item element's `id` attribute when it
    has one, else `#hash-` + a digest of the canonical page URL, title, author, absolute published time and
    text; their url is that anchor, else the page.
  * A comment's guid is its own `link` (an anchor such as `article#comment-5` keeps its fragment), else the
    page URL + `#` + its element's `id`, else the same digest. So a comment with neither a link nor an id
    that is edited becomes a new post (the old one stays): two different comments must never merge.
    Relative dates ("2 hours ago") are left out of the digest because they drift between polls.
  * A comment's parent_ref is the article's guid, else its url without fragment.

Cursor (follow only): `{"v": 1, "links": [[url, first_seen, last_opened], ...]}`, canonical URLs, epoch
seconds, last_opened 0 for never, newest first, at most `MAX_TRACKED` links (those on the listing kept first).
An unreadable cursor counts as empty: every listed link is new again, once.

Warnings and health: a selector that matched nothing is reported once per poll and selector, with the
page (or how many pages) - `items`, `follow`, a field that matched in no item of a page, and
`comments.items` only when it matched on none of the poll's pages (an article may have no comments).
These also go to `Collected.health`; fetch problems of single followed pages are warnings only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urldefrag
from zoneinfo import ZoneInfo

import msgspec

from monitor.collectors.decode import Decoded, decode, gunzip_if_gzip
from monitor.collectors.links import absolute_url
from monitor.collectors.paging import Pages
from monitor.collectors.selectors import (
    FieldSpec,
    document,
    nodes_with,
    page_base,
    parse_spec,
    select,
    selector_problem,
    spec_text,
)
from monitor.config import SourceBase, SourceSection, SourceURL, TimeZoneName
from monitor.dates import parse_date
from monitor.exceptions import FetchError, ParseError
from monitor.normalize import canonical_url
from monitor.schema import Parse
from monitor.types import Collected, RawItem, SourceState

if TYPE_CHECKING:  # selectolax and httpx are loaded to poll, not to read the config
    from selectolax.lexbor import LexborHTMLParser, LexborNode

    from monitor.collectors.fetch import Response, Session

HEADERS = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"}
REVISIT_FOR = timedelta(days=3)  # pages first seen this recently are opened again for new comments
MAX_TRACKED = 300  # links remembered in the cursor
MAX_LINKS_PER_PAGE = 300  # follow links read from one listing page
MAX_HEALTH_CHARS = 600
CURSOR_VERSION = 1
_DATE_ATTRS = ("datetime", "title", "content", "data-time", "data-timestamp")
_ANCHOR_ATTRS = ("id", "name")  # "@id" as a link means "#<id>" on this page
_FIELD_NAMES = ("title", "text", "link", "published", "author")
_HTML_TYPES = ("html", "xml", "text/plain")


# --- the source's configuration -----------------------------------------------------------------------


def _selector(spec: object, *, allow_self: bool = False) -> str:
    """The spec unchanged, or ValueError naming what is wrong with the selector."""
    if not isinstance(spec, str):
        raise ValueError(f"expected a CSS selector, got {spec!r}")
    problem = selector_problem(spec, allow_self=allow_self)
    if problem:
        raise ValueError(problem)
    return spec


Selector = Annotated[str, Parse(_selector)]
FieldSelector = Annotated[str, Parse(lambda spec: _selector(spec, allow_self=True))]  # may be "@attr" alone


class HtmlFields(SourceSection, frozen=True, kw_only=True):
    """CSS selectors relative to one item; `"sel @attr"` reads an attribute, `"@attr"` the item's own."""

    title: FieldSelector | None = None
    text: FieldSelector | None = None
    link: FieldSelector | None = None
    published: FieldSelector | None = None
    author: FieldSelector | None = None


class CommentsBlock(SourceSection, frozen=True, kw_only=True):
    items: Selector
    fields: HtmlFields


class HtmlSource(SourceBase, frozen=True, kw_only=True):
    """`type: html`: posts read from a page (or the pages it links to) with CSS selectors."""

    url: SourceURL
    items: Selector
    fields: HtmlFields
    follow: Selector | None = None  # selector of links to open; items/fields/comments then apply to each page
    comments: CommentsBlock | None = None
    next: Selector | None = None  # selector of the "next page" link
    max_pages: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3  # listing pages per poll (with `next`)
    max_follow: Annotated[int, msgspec.Meta(ge=1, le=500)] = 20  # linked pages opened per poll (with `follow`)
    timezone: TimeZoneName = "UTC"  # for scraped dates without an offset

    def __post_init__(self) -> None:
        if not (self.fields.title or self.fields.text):
            raise ValueError("fields: give at least a `title` or a `text` selector")


# --- pure parsing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Miss:
    """A configured selector that found nothing on one page."""

    role: str  # "items", "follow", "fields.text", "comments.items", "comments.fields.author", ...
    selector: str
    url: str
    what: str = "matched nothing"  # or "matched in no item", "gave no readable date in any item", ...


@dataclass(frozen=True)
class PageResult:
    """Posts read from one page: its items in page order (the article first), then its comments."""

    items: tuple[RawItem, ...]
    comments: int  # how many of `items` are comments
    next_url: str | None  # the `next` link, when configured and found
    misses: tuple[Miss, ...]
    warnings: tuple[str, ...] = ()  # faults of the page itself (broken bytes, a structure cut)


@dataclass(frozen=True)
class ListingResult:
    """Links read from a listing page for `follow`."""

    links: tuple[str, ...]  # canonical (normalize.canonical_url), unique, in page order
    next_url: str | None
    misses: tuple[Miss, ...]
    warnings: tuple[str, ...] = ()  # faults of the page itself (broken bytes, a structure cut)


@dataclass(frozen=True)
class _Page:
    """What field readers need to know about the page."""

    url: str  # the page's address (after redirects)
    base: str  # for relative links: <base href> or the page's address
    tz: ZoneInfo
    now: datetime | None  # for relative dates


@dataclass(frozen=True)
class _Fields:
    """Field values read from one item or comment element."""

    title: str
    text: str
    link: str | None
    published: datetime | None
    stable_published: datetime | None  # absolute dates only: safe in a digest
    author: str | None
    anchor: str | None  # page URL + "#" + the element's id
    found: frozenset[str]  # names of the fields that gave a value


def parse_page(html: str, url: str, source: HtmlSource, now: datetime) -> PageResult:
    """Items and comments of one page (the listing without `follow`, else a followed page)."""
    tree, cut = document(html)
    page = _Page(url=url, base=page_base(tree, url), tz=ZoneInfo(source.timezone), now=now)
    misses: list[Miss] = []
    comment_nodes = select(tree, source.comments.items) if source.comments else []
    comment_ids = frozenset(n.mem_id for n in comment_nodes)
    item_nodes = select(tree, source.items, excluded=comment_ids)
    if not item_nodes:
        misses.append(Miss("items", source.items, url))
    items = _read_items(item_nodes, source.fields, comment_ids, page, first_is_article=source.follow is not None)
    misses += _field_misses("fields", source.fields, [read for _, read in items], page.url, "item")
    posts = [item for item, _ in items]
    comments: list[RawItem] = []
    if source.comments is not None:
        parent = _ref(posts[0]) if posts else None
        comments, comment_misses = _read_comments(comment_nodes, source.comments, parent, page)
        misses += comment_misses
    next_url = _next_url(tree, source.next, page) if source.next else None
    return PageResult(tuple(posts + comments), len(comments), next_url, tuple(misses), _cut_note(cut, url))


def parse_listing(html: str, url: str, source: HtmlSource) -> ListingResult:
    """The `follow` links and the `next` link of one listing page."""
    tree, cut = document(html)
    page = _Page(url=url, base=page_base(tree, url), tz=ZoneInfo(source.timezone), now=None)
    links: list[str] = []
    misses: list[Miss] = []
    if source.follow:
        spec = parse_spec(source.follow, default_attr="href")
        links = _links(select(tree, spec.css) if spec.css else [], spec, page, url)
        if not links:
            misses.append(Miss("follow", source.follow, url))
    next_url = _next_url(tree, source.next, page) if source.next else None
    return ListingResult(tuple(links), next_url, tuple(misses), _cut_note(cut, url))


def _cut_note(cut: str | None, url: str) -> tuple[str, ...]:
    return (f"{url}: {cut}",) if cut else ()


def _links(nodes: Iterable[LexborNode], spec: FieldSpec, page: _Page, own_url: str) -> list[str]:
    seen = {urldefrag(own_url).url}
    links = []
    for node in nodes:
        value = node.attributes.get(spec.attr) if spec.attr else node.text()
        link = absolute_url(value, page.base, keep_fragment=False)
        link = canonical_url(link) if link else None  # a rotating utm_* must not make a link look new
        if link and link not in seen:
            seen.add(link)
            links.append(link)
            if len(links) >= MAX_LINKS_PER_PAGE:
                break
    return links


def _next_url(tree: LexborHTMLParser, selector: str, page: _Page) -> str | None:
    spec = parse_spec(selector, default_attr="href")
    for node in select(tree, spec.css) if spec.css else []:
        value = node.attributes.get(spec.attr) if spec.attr else node.text()
        link = absolute_url(value, page.base, keep_fragment=False)
        if link and link != urldefrag(page.url).url:
            return link
    return None


def _read_items(
    nodes: Sequence[LexborNode],
    fields: HtmlFields,
    comment_ids: frozenset[int],
    page: _Page,
    *,
    first_is_article: bool,
) -> list[tuple[RawItem, _Fields]]:
    item_ids = frozenset(n.mem_id for n in nodes)
    out: list[tuple[RawItem, _Fields]] = []
    for node in nodes:
        read = _read_fields(node, fields, (item_ids - {node.mem_id}) | comment_ids, page)
        if not (read.title or read.text):
            continue  # an empty slot the selector also matches (an ad, a deleted post)
        url, guid = read.link, None
        if url is not None and urldefrag(url).fragment:
            guid = url  # "#p453" names a place in a page: the key keeps the fragment
        elif url is None and first_is_article and not out:
            url = urldefrag(page.url).url  # a followed page's article is the page itself
        elif url is None:
            guid = read.anchor or _digest_guid(page.url, read)
            url = read.anchor or urldefrag(page.url).url  # where a reader finds it
        item = RawItem(
            guid=guid, url=url, title=read.title, text=read.text, author=read.author, published=read.published
        )
        out.append((item, read))
    return out


def _read_comments(
    nodes: Sequence[LexborNode], block: CommentsBlock, parent: str | None, page: _Page
) -> tuple[list[RawItem], list[Miss]]:
    if not nodes:
        return [], [Miss("comments.items", block.items, page.url)]
    comment_ids = frozenset(n.mem_id for n in nodes)
    reads = []
    comments = []
    for node in nodes:
        read = _read_fields(node, block.fields, comment_ids - {node.mem_id}, page)
        reads.append(read)
        if not (read.title or read.text):
            continue  # a deleted comment or a placeholder
        guid = read.link or read.anchor or _digest_guid(page.url, read)
        comments.append(
            RawItem(
                guid=guid,
                url=read.link or read.anchor or urldefrag(page.url).url,
                title=read.title,
                text=read.text,
                author=read.author,
                published=read.published,
                parent_ref=parent,
            )
        )
    return comments, _field_misses("comments.fields", block.fields, reads, page.url, "comment")


def _read_fields(node: LexborNode, fields: HtmlFields, excluded: Collection[int], page: _Page) -> _Fields:
    found: set[str] = set()

    def text_of(selector: str | None, name: str, *, first: bool) -> str | None:
        if not selector:
            return None
        value = spec_text(node, parse_spec(selector), excluded=excluded, first=first)
        if value:
            found.add(name)
        return value

    title = _one_line(text_of(fields.title, "title", first=True))
    text = text_of(fields.text, "text", first=False) or ""
    author = _one_line(text_of(fields.author, "author", first=True)) or None
    link = _link(node, fields.link, excluded, page) if fields.link else None
    published, stable = _published(node, fields.published, excluded, page) if fields.published else (None, None)
    found.update(name for name, value in (("link", link), ("published", published)) if value is not None)
    own_id = (node.attributes.get("id") or "").strip()
    anchor = f"{urldefrag(page.url).url}#{own_id}" if own_id else None
    return _Fields(title, text, link, published, stable, author, anchor, frozenset(found))


def _link(node: LexborNode, selector: str, excluded: Collection[int], page: _Page) -> str | None:
    spec = parse_spec(selector, default_attr="href")
    for match in nodes_with(node, spec, excluded=excluded):
        value = (match.attributes.get(spec.attr) if spec.attr else match.text()) or ""
        value = value.strip()
        if spec.attr in _ANCHOR_ATTRS and value and not value.startswith("#"):
            value = "#" + value  # "@id": the element's anchor on this page
        link = absolute_url(value, page.base)
        if link:
            return link
    return None


def _published(
    node: LexborNode, selector: str, excluded: Collection[int], page: _Page
) -> tuple[datetime | None, datetime | None]:
    """The first readable date among the matches: (resolved against now, absolute only)."""
    spec = parse_spec(selector)
    for match in nodes_with(node, spec, excluded=excluded):
        raws = [match.attributes.get(spec.attr) or ""] if spec.attr else [match.text(), *_date_attrs(match)]
        for raw in raws:
            when = parse_date(raw, now=page.now, tz=page.tz) if raw else None
            if when is not None:
                return when, parse_date(raw, tz=page.tz)
    return None, None


def _date_attrs(node: LexborNode) -> list[str]:
    """Machine-readable dates a text selector's element may carry (`<time datetime>`, `<abbr title>`)."""
    return [value for name in _DATE_ATTRS if (value := node.attributes.get(name))]


def _field_misses(prefix: str, fields: HtmlFields, reads: Sequence[_Fields], url: str, noun: str) -> list[Miss]:
    """Configured fields that gave a value in none of the page's items (none when there are no items)."""
    if not reads:
        return []
    found: set[str] = set()
    for read in reads:
        found |= read.found
    misses = []
    for name in _FIELD_NAMES:
        selector = getattr(fields, name)
        if selector and name not in found:
            what = f"gave no readable date in any {noun}" if name == "published" else f"matched in no {noun}"
            misses.append(Miss(f"{prefix}.{name}", selector, url, what))
    return misses


def _digest_guid(page_url: str, read: _Fields) -> str:
    page = canonical_url(page_url) or urldefrag(page_url).url  # the same page under any tracking parameters
    when = read.stable_published.isoformat() if read.stable_published else ""
    data = "\x1f".join((page, read.title, read.author or "", when, " ".join(read.text.split())))
    return f"{page}#hash-{hashlib.blake2b(data.encode(), digest_size=8).hexdigest()}"


def _ref(item: RawItem) -> str | None:
    if item.guid:
        return item.guid
    return urldefrag(item.url).url if item.url else None


def _one_line(value: str | None) -> str:
    return " ".join(value.split()) if value else ""


# --- follow bookkeeping (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Tracked:
    """A followed link as the cursor remembers it."""

    first_seen: int  # epoch seconds
    opened: int = 0  # epoch seconds of the last time it was opened; 0: never


def load_cursor(text: str | None) -> dict[str, Tracked]:
    """The tracked links from `sources.cursor`; an unreadable cursor is an empty one."""
    if not text:
        return {}
    try:
        data = json.loads(text)
        rows = data["links"] if isinstance(data, dict) and data.get("v") == CURSOR_VERSION else []
        return {str(url): Tracked(int(first), int(opened)) for url, first, opened in rows[: MAX_TRACKED * 2]}
    except (ValueError, TypeError, KeyError):
        return {}


def dump_cursor(tracked: Mapping[str, Tracked], keep: Collection[str] = ()) -> str:
    """Compact JSON of at most MAX_TRACKED links: those in `keep` (on the listing now) first, then newest."""
    order = sorted(tracked, key=lambda url: (url not in keep, -tracked[url].first_seen, url))[:MAX_TRACKED]
    order.sort(key=lambda url: (-tracked[url].first_seen, url))
    rows = [[url, tracked[url].first_seen, tracked[url].opened] for url in order]
    return json.dumps({"v": CURSOR_VERSION, "links": rows}, ensure_ascii=False, separators=(",", ":"))


def plan_follow(
    tracked: Mapping[str, Tracked], links: Sequence[str], now: datetime, budget: int
) -> tuple[list[str], dict[str, Tracked]]:
    """Which pages to open this poll, and the tracked links with the listing's new ones added.

    New links first (listing order, then older never-opened ones, newest first), then pages first seen
    within REVISIT_FOR, least recently opened first; at most `budget` in all.
    """
    stamp = int(now.timestamp())
    merged = dict(tracked)
    for link in links:
        merged.setdefault(link, Tracked(first_seen=stamp))
    on_listing = set(links)
    fresh = [link for link in dict.fromkeys(links) if merged[link].opened == 0]
    leftover = sorted(
        (u for u, t in merged.items() if t.opened == 0 and u not in on_listing),
        key=lambda u: (-merged[u].first_seen, u),
    )
    horizon = stamp - int(REVISIT_FOR.total_seconds())
    revisit = sorted(
        (u for u, t in merged.items() if t.opened and t.first_seen >= horizon),
        key=lambda u: (merged[u].opened, -merged[u].first_seen, u),
    )
    return (fresh + leftover + revisit)[: max(budget, 0)], merged


# --- fetching -------------------------------------------------------------------------------------------


def read_page(body: bytes, *, content_type: str | None, url: str, source: HtmlSource, now: datetime) -> PageResult:
    """One response body -> its items and comments (pure; runs in a worker process)."""
    decoded = _decode(body, content_type)
    page = parse_page(decoded.text, url, source, now)
    return replace(page, warnings=_with(decoded.warning, page.warnings, url))


def read_listing(body: bytes, *, content_type: str | None, url: str, source: HtmlSource) -> ListingResult:
    """One listing body -> its `follow` and `next` links (pure; runs in a worker process)."""
    decoded = _decode(body, content_type)
    listing = parse_listing(decoded.text, url, source)
    return replace(listing, warnings=_with(decoded.warning, listing.warnings, url))


def _decode(body: bytes, content_type: str | None) -> Decoded:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind and not any(part in kind for part in _HTML_TYPES):
        raise ParseError(f"content type {kind} is not HTML")
    return decode(gunzip_if_gzip(body), content_type)


def _with(warning: str | None, warnings: tuple[str, ...], url: str) -> tuple[str, ...]:
    return (f"{url}: {warning}", *warnings) if warning else warnings


@dataclass
class _Poll:
    """One poll's pages (paging.Pages: items, warnings, when to stop) and its selector misses."""

    source: HtmlSource
    pages: Pages
    misses: list[Miss] = field(default_factory=list)
    content_pages: int = 0  # pages read with items/fields/comments

    async def content(self, resp: Response, what: str) -> PageResult | None:
        page = await self.pages.parse(
            resp,
            read_page,
            what=what,
            content_type=resp.content_type,
            url=resp.url,
            source=self.source,
            now=self.pages.now,
        )
        if page is None:
            return None
        self.pages.session.note_items(len(page.items))
        self.pages.items.extend(page.items)
        self.pages.warnings.extend(page.warnings)
        self.misses.extend(page.misses)
        self.content_pages += 1
        return page

    async def read(self, resp: Response, what: str) -> tuple[str | None, tuple[str, ...]] | None:
        """Read one listing page: its next link and follow links; None when it could not be read."""
        if not self.source.follow:
            page = await self.content(resp, what)
            return (page.next_url, ()) if page is not None else None
        listing = await self.pages.parse(
            resp, read_listing, what=what, content_type=resp.content_type, url=resp.url, source=self.source
        )
        if listing is None:
            return None
        self.pages.session.note_items(len(listing.links))
        self.pages.warnings.extend(listing.warnings)
        self.misses.extend(listing.misses)
        return listing.next_url, listing.links


async def collect(source: HtmlSource, session: Session, state: SourceState, now: datetime) -> Collected:
    poll = _Poll(source, Pages(session, now))
    first = await poll.pages.first(source.url, etag=state.etag, last_modified=state.last_modified, headers=HEADERS)
    links: list[str] = []
    if not first.not_modified:
        links = await _read_listing(poll, first)
    elif source.follow is None:
        return Collected(items=(), etag=state.etag, last_modified=state.last_modified, not_modified=True)
    etag = state.etag if first.not_modified else first.etag
    last_modified = state.last_modified if first.not_modified else first.last_modified
    cursor = None
    opened = 0
    if source.follow:
        cursor, opened = await _follow(poll, links, state.cursor)
    summaries = _summaries(poll.misses, poll.content_pages)
    poll.pages.warnings.extend(summaries)
    return poll.pages.collected(
        etag=etag,
        last_modified=last_modified,
        cursor=cursor,
        not_modified=first.not_modified and opened == 0,
        health=_health(summaries) or poll.pages.health,
    )


async def _read_listing(poll: _Poll, first: Response) -> list[str]:
    """Read the listing's pages (page one already fetched); the follow links of all of them."""
    read = await poll.read(first, "listing")
    assert read is not None  # the first page's ParseError goes up
    next_url, links = read
    all_links = list(links)
    visited = {urldefrag(poll.source.url).url, urldefrag(first.url).url}
    for _ in range(poll.source.max_pages - 1):
        if not next_url or next_url in visited:
            break
        visited.add(next_url)
        resp = await poll.pages.get(next_url, what="next page", headers=HEADERS)
        read = await poll.read(resp, "next page") if resp is not None else None
        if read is None:
            break
        next_url, links = read
        all_links.extend(links)
    return list(dict.fromkeys(all_links))


async def _follow(poll: _Poll, links: list[str], cursor: str | None) -> tuple[str, int]:
    """Open the planned pages; the new cursor and how many pages were read. A failing page is a warning;
    the poll fails only when every page it tried failed."""
    pages = poll.pages
    plan, tracked = plan_follow(load_cursor(cursor), links, pages.now, poll.source.max_follow)
    stamp = int(pages.now.timestamp())
    read = failed = 0
    first_error: str | None = None
    for url in plan:
        if pages.stopped:
            break
        tracked[url] = replace(tracked[url], opened=stamp)
        warned = len(pages.warnings)
        resp = await pages.get(url, what="linked page", headers=HEADERS)
        page = await poll.content(resp, "linked page") if resp is not None else None
        if page is None:
            failed += 1
            first_error = first_error or (pages.warnings[warned] if len(pages.warnings) > warned else None)
            continue
        read += 1
    if plan and read == 0:
        retry_after = (pages.retry_at - pages.now).total_seconds() if pages.retry_at is not None else None
        raise FetchError(f"every linked page failed ({failed} tried); first: {first_error}", retry_after=retry_after)
    return dump_cursor(tracked, keep=links), read


def _summaries(misses: Sequence[Miss], content_pages: int) -> list[str]:
    """One line per (role, selector): the page, or how many pages, where it found nothing."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for miss in misses:
        groups.setdefault((miss.role, miss.selector, miss.what), []).append(miss.url)
    lines = []
    for (role, selector, what), urls in groups.items():
        if role == "comments.items" and len(urls) < content_pages:
            continue  # some pages had comments: the others just have none yet
        where = urls[0] if len(urls) == 1 else f"{len(urls)} pages (first: {urls[0]})"
        lines.append(f"{role} selector {selector!r} {what} on {where}")
    return lines


def _health(lines: Sequence[str]) -> str | None:
    if not lines:
        return None
    text = "; ".join(lines)
    return text if len(text) <= MAX_HEALTH_CHARS else text[: MAX_HEALTH_CHARS - 1] + "…"
