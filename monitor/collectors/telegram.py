"""The `telegram` source type: a public channel's web preview, `https://t.me/s/<channel>` (or `url`).

`parse_channel_page` is pure: HTML text and the page URL in, messages out; it does no I/O. `collect`
fetches through the session.

Paging: the newest page is read on every poll. When the channel was never read (no cursor), or the
newest page does not reach back to the last message seen (a gap: more than one page of news since the
last poll), older pages are read with `?before=<oldest id read so far>` until the last seen message is
reached, the page has no `<link rel="prev">`, a page brings nothing older, or `max_pages` pages were
read; stopping short of the last seen message is a warning. Every message read is returned (edits to
recent ones are found that way); the cursor is the newest message id seen, in decimal.

A message (div.tgme_widget_message[data-post="<channel>/<id>"]) becomes a RawItem with
  * guid and url: the permalink `https://t.me/<channel>/<id>`, so an edited message keeps its row;
  * text: the message text or media caption (div.tgme_widget_message_text.js-message_text, not the quoted
    message of a reply), then a poll's question and options, or a document's title;
  * title: "Forwarded from <name>" for a forwarded message, else empty (channel posts have no title);
  * author: the post's signature, else the channel's title;
  * published: a.tgme_widget_message_date time[datetime];
  * extra: views (as shown, e.g. "2.88K") and views_count (its number), forwarded_from and
    forwarded_from_url, reply_to (permalink) and reply_to_text (its first 200 characters),
    link_preview_url and link_preview_title, media (photo, video, ... comma-separated), edited ("1").
Service messages (channel created, photo changed, ...) are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from monitor.collectors.decode import decode, gunzip_if_gzip
from monitor.collectors.htmltext import html_to_text
from monitor.collectors.links import absolute_url
from monitor.collectors.paging import Pages
from monitor.collectors.selectors import document, select
from monitor.config import SourceBase
from monitor.dates import parse_date
from monitor.schema import Parse
from monitor.types import Collected, RawItem, SourceState

if TYPE_CHECKING:  # selectolax and httpx are loaded to poll, not to read the config
    from selectolax.lexbor import LexborNode

    from monitor.collectors.fetch import Session

_CHANNEL = re.compile(r"^[A-Za-z0-9_]{3,64}$")


def _channel(value: object) -> str:
    name = value.strip().removeprefix("@") if isinstance(value, str) else ""  # "@name" is how Telegram writes it
    if not _CHANNEL.fullmatch(name):
        raise ValueError(
            f"{value!r} is not a channel name: give the name from t.me/NAME "
            "(3 to 64 letters, digits or _, with or without a leading @)"
        )
    return name


class TelegramSource(SourceBase, frozen=True, kw_only=True):
    """`type: telegram`: a public channel's web preview, by its name (`channel: somechannel`)."""

    channel: Annotated[str, Parse(_channel)]
    max_pages: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5  # pages read back on the first poll (?before=)


HEADERS = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"}
MESSAGE = "div.tgme_widget_message[data-post]"
REPLY_TEXT_CHARS = 200
_MEDIA = (  # (kind, class of its element), in the order they are listed in `media`
    ("photo", "tgme_widget_message_photo_wrap"),
    ("video", "tgme_widget_message_video_player"),
    ("round_video", "tgme_widget_message_roundvideo_player"),
    ("voice", "tgme_widget_message_voice_player"),
    ("document", "tgme_widget_message_document_wrap"),
    ("sticker", "tgme_widget_message_sticker_wrap"),
    ("poll", "tgme_widget_message_poll"),
    ("location", "tgme_widget_message_location_wrap"),
)
_POST = re.compile(r"^\s*([A-Za-z0-9_]{1,64})/(\d{1,18})\s*$")
_COUNT = re.compile(r"^\s*([\d.,]+)\s*([KMB]?)\s*$", re.IGNORECASE)
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}


@dataclass(frozen=True)
class ChannelPage:
    """The messages of one channel preview page, in page order (oldest first)."""

    items: tuple[RawItem, ...]
    ids: tuple[int, ...]  # message ids of `items`, same order
    older_url: str | None  # `<link rel="prev">`: there are older messages
    title: str | None  # the channel's title
    warnings: tuple[str, ...] = ()  # faults of the page itself (broken bytes, a structure cut)


def parse_channel_page(html: str, url: str) -> ChannelPage:
    """Messages of a t.me/s/ page; `url` is the page's address (for relative links)."""
    tree, cut = document(html)
    title = _channel_title(
        tree.css_first(".tgme_channel_info_header_title"), tree.css_first('meta[property="og:title"]')
    )
    items: list[RawItem] = []
    ids: list[int] = []
    for node in select(tree, MESSAGE):
        parsed = _message(node, title)
        if parsed is not None:
            ids.append(parsed[0])
            items.append(parsed[1])
    prev = tree.css_first('link[rel="prev"]')
    older = absolute_url(prev.attributes.get("href"), url) if prev is not None else None
    return ChannelPage(tuple(items), tuple(ids), older, title, (f"{url}: {cut}",) if cut else ())


def _channel_title(header: LexborNode | None, og: LexborNode | None) -> str | None:
    if header is not None and (text := " ".join(header.text().split())):
        return text
    content = og.attributes.get("content") if og is not None else None
    return " ".join(content.split()) if content else None


def _message(node: LexborNode, channel_title: str | None) -> tuple[int, RawItem] | None:
    match = _POST.match(node.attributes.get("data-post") or "")
    if match is None or "service_message" in (node.attributes.get("class") or ""):
        return None
    channel, number = match[1], int(match[2])
    permalink = f"https://t.me/{channel}/{number}"
    extra: list[tuple[str, str]] = []
    replies = select(node, "a.tgme_widget_message_reply")
    reply_ids = frozenset(n.mem_id for n in replies)
    text = _text(node, reply_ids)
    forwarded = _forwarded(node, extra)
    _reply(replies, permalink, extra)
    _details(node, extra)
    time = node.css_first("a.tgme_widget_message_date time[datetime]")
    published = parse_date(time.attributes.get("datetime") or "") if time is not None else None
    signature = _first_text(node, ".tgme_widget_message_from_author")
    owner = _first_text(node, ".tgme_widget_message_owner_name")
    item = RawItem(
        guid=permalink,
        url=permalink,
        title=f"Forwarded from {forwarded}" if forwarded else "",
        text=text,
        author=signature or owner or channel_title or channel,
        published=published,
        extra=tuple(extra),
    )
    return number, item


def _text(node: LexborNode, excluded: frozenset[int]) -> str:
    parts = []
    body = select(node, ".tgme_widget_message_text.js-message_text", excluded=excluded)
    if body:  # the first is the outermost: the page nests a copy inside it
        parts.append(html_to_text(body[0].html or "", checked=True))
    for selector in (
        ".tgme_widget_message_poll_question",
        ".tgme_widget_message_poll_option_text",
        ".tgme_widget_message_document_title",
    ):
        parts.extend(" ".join(n.text().split()) for n in select(node, selector, excluded=excluded))
    return "\n".join(part for part in parts if part)


def _forwarded(node: LexborNode, extra: list[tuple[str, str]]) -> str | None:
    source = node.css_first(".tgme_widget_message_forwarded_from_name")
    if source is None:
        return None
    name = " ".join(source.text().split())
    if name:
        extra.append(("forwarded_from", name))
    href = absolute_url(source.attributes.get("href"), "https://t.me/")
    if href:
        extra.append(("forwarded_from_url", href))
    return name or None


def _reply(replies: list[LexborNode], permalink: str, extra: list[tuple[str, str]]) -> None:
    if not replies:
        return
    reply = replies[0]
    href = absolute_url(reply.attributes.get("href"), permalink)
    if href:
        extra.append(("reply_to", href))
    quoted = reply.css_first(".js-message_reply_text, .tgme_widget_message_text")
    if quoted is not None and (text := " ".join(quoted.text().split())):
        extra.append(("reply_to_text", text[:REPLY_TEXT_CHARS]))


def _details(node: LexborNode, extra: list[tuple[str, str]]) -> None:
    views = _first_text(node, ".tgme_widget_message_views")
    if views:
        extra.append(("views", views))
        count = parse_count(views)
        if count is not None:
            extra.append(("views_count", str(count)))
    preview = node.css_first("a.tgme_widget_message_link_preview")
    if preview is not None:
        href = absolute_url(preview.attributes.get("href"), "https://t.me/")
        if href:
            extra.append(("link_preview_url", href))
        title = _first_text(preview, ".link_preview_title")
        if title:
            extra.append(("link_preview_title", title))
    classes = " ".join(n.attributes.get("class") or "" for n in node.css("[class]")).split()
    kinds = [kind for kind, css_class in _MEDIA if css_class in classes]
    if kinds:
        extra.append(("media", ",".join(kinds)))
    meta = _first_text(node, ".tgme_widget_message_meta")
    if meta and "edited" in meta.lower():
        extra.append(("edited", "1"))


def _first_text(node: LexborNode, selector: str) -> str | None:
    found = node.css_first(selector)
    text = " ".join(found.text().split()) if found is not None else ""
    return text or None


def parse_count(text: str) -> int | None:
    """ "2.88K" -> 2880, "1.2M" -> 1200000, "947" -> 947; None when it is not such a count."""
    match = _COUNT.match(text)
    if match is None:
        return None
    try:
        number = float(match[1].replace(",", "."))
    except ValueError:
        return None
    return round(number * _SCALE[match[2].lower()])


def page_url(base: str, before: int | None) -> str:
    """`base` with its `before` parameter set to `before` (or removed)."""
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "before"]
    if before is not None:
        query.append(("before", str(before)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _cursor_id(cursor: str | None) -> int | None:
    return int(cursor) if cursor and cursor.strip().isdigit() else None


def read_channel_page(body: bytes, *, content_type: str | None, url: str) -> ChannelPage:
    """One response body -> its messages (pure; runs in a worker process)."""
    decoded = decode(gunzip_if_gzip(body), content_type)
    page = parse_channel_page(decoded.text, url)
    return replace(page, warnings=(f"{url}: {decoded.warning}", *page.warnings)) if decoded.warning else page


async def collect(source: TelegramSource, session: Session, state: SourceState, now: datetime) -> Collected:
    url = source.url or f"https://t.me/s/{source.channel}"
    last_seen = _cursor_id(state.cursor)
    pages = Pages(session, now)
    first = await pages.first(url, etag=state.etag, last_modified=state.last_modified, headers=HEADERS)
    if first.not_modified:
        return Collected(items=(), etag=state.etag, last_modified=state.last_modified, not_modified=True)
    page = await pages.parse(first, read_channel_page, content_type=first.content_type, url=first.url)
    assert page is not None  # the first response's ParseError goes up
    session.note_items(len(page.items))
    pages.warnings.extend(page.warnings)
    if not page.items:
        note = f"no messages ({MESSAGE}) on {first.url}: the channel has no public preview, or the page layout changed"
        return Collected(items=(), etag=first.etag, last_modified=first.last_modified, warnings=(note,), health=note)
    newest = await _page_back(source, pages, url, page, last_seen)
    return pages.collected(etag=first.etag, last_modified=first.last_modified, cursor=str(max(newest, last_seen or 0)))


async def _page_back(source: TelegramSource, pages: Pages, url: str, page: ChannelPage, last_seen: int | None) -> int:
    """Read older pages while needed (module docstring) into `pages`; the newest message id."""
    pages.items.extend(page.items)
    newest, oldest = max(page.ids), min(page.ids)
    read = 1
    older = page.older_url
    while older and (last_seen is None or oldest > last_seen + 1) and read < source.max_pages:
        address = page_url(url, oldest)
        resp = await pages.get(address, what="older messages", headers=HEADERS)
        page_read = (
            await pages.parse(
                resp, read_channel_page, what="older messages", content_type=resp.content_type, url=resp.url
            )
            if resp is not None
            else None
        )
        if page_read is None:
            break
        pages.session.note_items(len(page_read.items))
        pages.warnings.extend(page_read.warnings)
        fresh = [(n, item) for n, item in zip(page_read.ids, page_read.items, strict=True) if n < oldest]
        if not fresh:
            break  # the server ignored `before`: no progress, stop
        pages.items.extend(item for _, item in fresh)
        oldest = min(n for n, _ in fresh)
        older = page_read.older_url
        read += 1
    if last_seen is not None and oldest > last_seen + 1 and older:
        pages.capped(
            f"stopped at message {oldest} after {read} page(s) without reaching message {last_seen} "
            "seen last time: messages in between may be missed (raise max_pages or poll more often)"
        )
    return newest
