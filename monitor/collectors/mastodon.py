"""The `mastodon` source type: public statuses from any Mastodon instance's REST API.

`source.url` names what to read, on any instance:

* ``/api/v1/timelines/tag/<tag>`` (the web address ``/tags/<tag>`` is read as this), the hashtag timeline;
* ``/api/v1/accounts/<id>/statuses``, one account's statuses;
* ``/api/v1/timelines/public`` (``?local=true`` kept), the public timeline;
* ``/api/v2/search?q=...`` (``type=statuses`` added when missing), a search. Instances may limit
  full-text status search to logged-in users, so without a token it can return few statuses or none;
  a hashtag timeline is the dependable choice.

Polling: the first poll reads one page, the newest `PAGE_LIMIT` statuses. Later polls ask for
``min_id=<cursor>``: the statuses just after the newest one seen, and follow the Link header's
``rel="prev"`` (newer) while pages come back full, at most `MAX_PAGES` pages. Reading forward in time
means that a burst larger than the bound is finished on the next poll, never skipped. The cursor is
the newest timeline id seen (for a boost, the boost's own id: that is what the timeline pages by).

Mapping (`parse_statuses`, `status_item`: pure, no I/O): a boost (``reblog`` set) becomes the boosted
status itself, so a status boosted by many accounts is one post: guid = the original's ActivityPub
``uri`` (the same on every instance), url = its web ``url``, author and date its own. The content
warning (``spoiler_text``) is the title; the HTML content becomes text, followed by the poll's options
and the media descriptions (alt text).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monitor.collectors.htmltext import html_to_text, tidy_text
from monitor.collectors.jsonapi import describe, load_json, text_or_none
from monitor.collectors.links import same_origin
from monitor.collectors.paging import Pages
from monitor.config import SourceBase, SourceURL
from monitor.dates import parse_date
from monitor.exceptions import ParseError
from monitor.types import Collected, RawItem, SourceState

if TYPE_CHECKING:  # httpx is loaded to poll, not to read the config
    from monitor.collectors.fetch import Session

__all__ = [
    "MAX_PAGES",
    "PAGE_LIMIT",
    "MastodonSource",
    "StatusPage",
    "api_url",
    "collect",
    "parse_statuses",
    "read_page",
    "status_item",
    "statuses_of",
]


class MastodonSource(SourceBase, frozen=True, kw_only=True):
    """`type: mastodon`: a hashtag timeline, an account's statuses or /api/v2/search, on any instance."""

    crawls_pages: ClassVar[bool] = False
    url: SourceURL


PAGE_LIMIT = 40  # the API's maximum page size for statuses
MAX_PAGES = 5  # pages read per poll once a cursor exists (the first poll reads one)
HEADERS = {"Accept": "application/json"}
_PAGING_PARAMS = frozenset({"min_id", "since_id", "max_id", "limit"})
_ID = re.compile(r"[0-9A-Za-z]{1,64}")
_TAG_PAGE = re.compile(r"^/tags/([^/]+)/?$")
_LINK = re.compile(r"<([^>]*)>([^,<]*)")
_REL = re.compile(r"""rel\s*=\s*"?([^";,]+)"?""", re.IGNORECASE)


# ---------------------------------------------------------------- parsing (pure)


def statuses_of(data: object) -> list[dict[str, Any]]:
    """The status objects in a decoded API response, in the order given.

    Accepts a list of statuses (timelines), a v2 search result (``statuses``), a status context
    (``ancestors`` + ``descendants``) or one status. Raises ParseError naming what was expected.
    """
    if isinstance(data, list):
        candidates = data
    elif isinstance(data, dict) and isinstance(data.get("statuses"), list):
        candidates = data["statuses"]
    elif isinstance(data, dict) and isinstance(data.get("ancestors"), list):
        candidates = [*data["ancestors"], *(data.get("descendants") or [])]
    elif isinstance(data, dict) and "content" in data and "id" in data:
        candidates = [data]
    else:
        raise ParseError(f"expected Mastodon statuses (a JSON list of statuses), got {describe(data)}")
    statuses = [s for s in candidates if _is_status(s)]
    if candidates and not statuses:
        raise ParseError(
            f"expected Mastodon statuses (objects with id, uri and content), got {describe(candidates[0])}"
        )
    return statuses


def parse_statuses(data: object) -> list[RawItem]:
    """RawItems for every status in a decoded API response (see `statuses_of`, `status_item`)."""
    return [item for status in statuses_of(data) if (item := status_item(status)) is not None]


def status_item(status: dict[str, Any]) -> RawItem | None:
    """One status as a RawItem; a boost becomes the status it boosts. None when it has no identity."""
    booster = None
    reblog = status.get("reblog")
    if isinstance(reblog, dict) and _is_status(reblog):
        booster = _acct(status.get("account"))
        status = reblog
    guid = text_or_none(status.get("uri")) or text_or_none(status.get("url"))
    if guid is None:
        return None
    extra = [("status_id", str(status["id"]))]
    if booster:
        extra.append(("boosted_by", booster))
    for key in ("language", "in_reply_to_id"):
        if text_or_none(status.get(key)):
            extra.append((key, str(status[key])))
    card = status.get("card")
    if isinstance(card, dict) and text_or_none(card.get("url")):
        extra.append(("card_url", str(card["url"])))
    return RawItem(
        guid=guid,
        url=text_or_none(status.get("url")) or guid,
        title=tidy_text(text_or_none(status.get("spoiler_text")) or "").replace("\n", " "),
        text=_status_text(status),
        author=_author(status.get("account")),
        published=parse_date(text_or_none(status.get("created_at")) or ""),
        extra=tuple(extra),
    )


def _status_text(status: dict[str, Any]) -> str:
    parts = [html_to_text(text_or_none(status.get("content")) or "")]
    poll = status.get("poll")
    if isinstance(poll, dict) and isinstance(poll.get("options"), list):
        options = [
            tidy_text(o["title"]) for o in poll["options"] if isinstance(o, dict) and text_or_none(o.get("title"))
        ]
        if options:
            parts.append("Poll: " + " / ".join(options))
    media = status.get("media_attachments")
    for attachment in media if isinstance(media, list) else []:
        if isinstance(attachment, dict) and text_or_none(attachment.get("description")):
            kind = text_or_none(attachment.get("type")) or "media"
            parts.append(f"[{kind}: {tidy_text(attachment['description'])}]")
    return "\n".join(p for p in parts if p)


def _author(account: object) -> str | None:
    acct = _acct(account)
    if acct is None or not isinstance(account, dict):
        return None
    name = " ".join((text_or_none(account.get("display_name")) or "").split())
    return f"{name} (@{acct})" if name else f"@{acct}"


def _acct(account: object) -> str | None:
    """user@host: a local account's acct has no host, so it is taken from the account's url."""
    if not isinstance(account, dict):
        return None
    acct = text_or_none(account.get("acct")) or text_or_none(account.get("username"))
    if acct is None:
        return None
    if "@" not in acct:
        host = urlsplit(text_or_none(account.get("url")) or "").hostname
        if host:
            acct = f"{acct}@{host}"
    return acct


def _is_status(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("id"), str | int) and "content" in value


def id_key(status_id: str) -> tuple[int, str]:
    """Sort key for status ids: numeric snowflakes (Mastodon) and fixed-width flake ids (Pleroma) alike."""
    return (len(status_id), status_id)


# ---------------------------------------------------------------- addresses (pure)


def api_url(url: str) -> str:
    """The API address to poll for a configured `url` (a web /tags/<tag> page becomes its timeline)."""
    parts = urlsplit(url)
    tag = _TAG_PAGE.match(parts.path)
    if tag:
        return urlunsplit((parts.scheme, parts.netloc, f"/api/v1/timelines/tag/{tag.group(1)}", "", ""))
    return url


def page_url(base: str, *, min_id: str | None, limit: int = PAGE_LIMIT) -> str:
    """`base` with its own paging parameters replaced: limit, and min_id when there is a cursor."""
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in _PAGING_PARAMS]
    if parts.path.rstrip("/").endswith("/api/v2/search") and not any(k == "type" for k, _ in query):
        query.append(("type", "statuses"))
    query.append(("limit", str(limit)))
    if min_id is not None:
        query.append(("min_id", min_id))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def link_rel(header: str | None, rel: str) -> str | None:
    """The target of `rel` in an HTTP Link header, if any."""
    for link in _LINK.finditer(header or ""):
        match = _REL.search(link.group(2))
        if match and rel in match.group(1).split():
            return link.group(1).strip()
    return None


# ---------------------------------------------------------------- the collector


@dataclass(frozen=True)
class StatusPage:
    """One API page: its posts, and the timeline id of every status on it (paging counts and follows these)."""

    items: tuple[RawItem, ...]
    ids: tuple[str, ...]


def read_page(body: bytes, *, content_type: str | None) -> StatusPage:
    """One response body -> its statuses as RawItems (pure; runs in a worker process)."""
    statuses = statuses_of(load_json(body, content_type, "the Mastodon API"))
    items = tuple(item for status in statuses if (item := status_item(status)) is not None)
    return StatusPage(items, tuple(str(status["id"]) for status in statuses))


async def collect(source: MastodonSource, session: Session, state: SourceState, now: datetime) -> Collected:
    base = api_url(source.url)
    cursor = state.cursor if state.cursor and _ID.fullmatch(state.cursor) else None
    pages = Pages(session, now)
    newest = cursor
    url = page_url(base, min_id=cursor)
    limit = MAX_PAGES if cursor else 1
    for page in range(limit):
        resp = await pages.first(url, headers=HEADERS) if page == 0 else await pages.get(url, headers=HEADERS)
        read = await pages.parse(resp, read_page, content_type=resp.content_type) if resp is not None else None
        if read is None:
            break
        session.note_items(len(read.ids))
        pages.items.extend(read.items)
        newest = _newest(newest, read.ids)
        if pages.stopped or len(read.ids) < PAGE_LIMIT:
            break
        if page == limit - 1:
            pages.capped(f"more than {limit * PAGE_LIMIT} new statuses: the rest on the next poll")
            break
        prev = link_rel(resp.headers.get("link"), "prev") if resp is not None else None
        url = prev if prev and same_origin(prev, url) else page_url(base, min_id=newest)
    return pages.collected(cursor=newest)


def _newest(newest: str | None, ids: Sequence[str]) -> str | None:
    for status_id in ids:
        if _ID.fullmatch(status_id) and (newest is None or id_key(status_id) > id_key(newest)):
            newest = status_id
    return newest
