"""The `vk` source type: public community and user walls through VK's official API (``wall.get``).

The source names its wall by ``domain`` (vk.com/<domain>) or ``owner_id`` (negative for communities)
and the environment variable holding a VK service token (``token_env``, default VK_SERVICE_TOKEN).
Without that variable the source fails with a clear error before any request; the rest runs.

The token never leaves in a URL: it is sent in the ``Authorization: Bearer`` header, which VK's API
accepts (dev.vk.com, "Формат запросов"), so the fetches table, logs and errors never see it; an API
error message that quotes it anyway has it masked.

VK answers errors with HTTP 200 and ``{"error": {"error_code", "error_msg"}}``: they become FetchError
"VK API error <code>: <message>"; the rate limits (6: too many requests per second, 9: flood control,
29: the method's daily quota) carry a retry_after.

Polling: the first poll reads one page of ``count`` posts (newest first, a pinned post may lead).
Later polls read from the top and go one page further (``offset``) only while a whole page is newer
than the cursor, at most `MAX_PAGES` pages. The cursor is the highest post id seen on this wall.

Mapping (`parse_wall`, `wall_item`: pure): guid ``wall<owner_id>_<id>``, url
``https://vk.com/wall<owner_id>_<id>``, date (unix), author from the response's profiles/groups;
the text is the post's own, VK mention markup ``[club1|Name]`` read as "Name", then one line per
attachment (link titles, photo captions, video titles, poll questions, documents), then a repost's
original (``copy_history``) quoted with its own attachments, so its words can match topics.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec

from monitor.collectors.htmltext import tidy_text
from monitor.collectors.jsonapi import describe, epoch_time, integer, load_json
from monitor.collectors.paging import Pages
from monitor.config import SourceBase
from monitor.exceptions import APIError, FetchError, ParseError
from monitor.types import Collected, RawItem, SourceState

if TYPE_CHECKING:  # httpx is loaded to poll, not to read the config
    from monitor.collectors.fetch import Session

__all__ = [
    "API_URL",
    "MAX_PAGES",
    "VkSource",
    "WallPage",
    "api_error",
    "collect",
    "parse_wall",
    "read_wall",
    "request_url",
    "wall_item",
]


class VkSource(SourceBase, frozen=True, kw_only=True):
    """`type: vk`: a community or user wall by `domain` or `owner_id`, with a service token from `token_env`."""

    crawls_pages: ClassVar[bool] = False
    domain: str | None = None  # the community's short name (vk.com/<domain>) ...
    owner_id: int | None = None  # ... or its numeric id (negative for communities)
    token_env: str = "VK_SERVICE_TOKEN"  # name of the environment variable holding the service token
    count: Annotated[int, msgspec.Meta(ge=1, le=100)] = 50
    api_version: str = "5.199"

    def __post_init__(self) -> None:
        if (self.domain is None) == (self.owner_id is None):
            raise ValueError("give exactly one of `domain` or `owner_id`")


API_URL = "https://api.vk.com/method/wall.get"
SITE = "https://vk.com"
MAX_PAGES = 3  # wall pages per poll
MAX_REPOST_DEPTH = 3  # copy_history entries quoted per post
# VK error codes that mean "slow down", with the wait before asking again (seconds)
RATE_LIMITS = {6: 5.0, 9: 600.0, 29: 3600.0}
_MENTION = re.compile(r"\[(?:id|club|public|event)\d+\|([^\]\[]{1,200})\]")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);")


# ---------------------------------------------------------------- parsing (pure)


def api_error(data: object) -> APIError | None:
    """The APIError for a decoded VK error answer (``{"error": {...}}``), else None."""
    if not (isinstance(data, dict) and isinstance(data.get("error"), dict)):
        return None
    error = data["error"]
    code = error.get("error_code")
    message = " ".join(str(error.get("error_msg") or "unknown error").split())[:300]
    retry = RATE_LIMITS.get(code) if isinstance(code, int) else None
    return APIError(f"VK API error {code}: {message}", code=code if isinstance(code, int) else None, retry_after=retry)


def parse_wall(data: object) -> list[RawItem]:
    """RawItems for the posts of a decoded ``wall.get`` / ``wall.getById`` response.

    Raises ParseError naming what was expected; does not look for ``error`` (see `api_error`).
    """
    items, names = _wall_items(data)
    return [item for post in items if (item := wall_item(post, names)) is not None]


def wall_item(post: dict[str, Any], names: dict[int, str] | None = None) -> RawItem | None:
    """One wall post; `names` maps owner/author ids (negative for communities) to display names."""
    owner, post_id = integer(post.get("owner_id")), integer(post.get("id"))
    if owner is None or post_id is None:
        return None
    names = names or {}
    parts = [_clean(post.get("text")), *_attachment_lines(post)]
    history = post.get("copy_history")
    for original in (history if isinstance(history, list) else [])[:MAX_REPOST_DEPTH]:
        if isinstance(original, dict):
            parts.append(_repost_text(original, names))
    extra = [("owner_id", str(owner))]
    if post.get("is_pinned"):
        extra.append(("pinned", "1"))
    return RawItem(
        guid=f"wall{owner}_{post_id}",
        url=f"{SITE}/wall{owner}_{post_id}",
        title="",
        text="\n".join(p for p in parts if p),
        author=names.get(integer(post.get("from_id")) or owner) or names.get(owner),
        published=epoch_time(post.get("date")),
        extra=tuple(extra),
    )


def _wall_items(data: object) -> tuple[list[dict[str, Any]], dict[int, str]]:
    response = data.get("response") if isinstance(data, dict) else None
    if isinstance(response, list):  # wall.getById before API 5.131: a bare list of posts
        response = {"items": response}
    if not (isinstance(response, dict) and isinstance(response.get("items"), list)):
        raise ParseError(f"expected a VK wall.get response ({{'response': {{'items': [...]}}}}), got {describe(data)}")
    posts = [p for p in response["items"] if isinstance(p, dict)]
    if posts and not any("owner_id" in p and "id" in p for p in posts):
        raise ParseError("expected VK wall posts (objects with owner_id and id), got objects without owner_id")
    return posts, _names(response)


def _names(response: dict[str, Any]) -> dict[int, str]:
    """Display names by id: users positive, communities negative (as from_id/owner_id use them)."""
    names: dict[int, str] = {}
    for profile in response.get("profiles") or []:
        if isinstance(profile, dict) and (pid := integer(profile.get("id"))) is not None:
            name = " ".join(str(profile.get(k) or "") for k in ("first_name", "last_name")).strip()
            if name:
                names[pid] = name
    for group in response.get("groups") or []:
        if isinstance(group, dict) and (gid := integer(group.get("id"))) is not None:
            name = str(group.get("name") or group.get("screen_name") or "").strip()
            if name:
                names[-abs(gid)] = name
    return names


def _repost_text(original: dict[str, Any], names: dict[int, str]) -> str:
    owner, post_id = integer(original.get("owner_id")), integer(original.get("id"))
    who = names.get(integer(original.get("from_id")) or owner or 0) or names.get(owner or 0)
    where = f"{SITE}/wall{owner}_{post_id}" if owner is not None and post_id is not None else ""
    head = "Repost" + (f" from {who}" if who else "") + (f" ({where})" if where else "") + ":"
    body = [_clean(original.get("text")), *_attachment_lines(original)]
    return "\n".join([head, *(b for b in body if b)])


def _attachment_lines(post: dict[str, Any]) -> list[str]:
    lines = []
    attachments = post.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        if isinstance(attachment, dict) and isinstance(attachment.get(str(attachment.get("type"))), dict):
            line = _attachment_line(str(attachment["type"]), attachment[str(attachment["type"])])
            if line:
                lines.append(line)
    geo = post.get("geo")
    place = geo.get("place") if isinstance(geo, dict) else None
    if isinstance(place, dict) and _clean(place.get("title")):
        lines.append(f"Place: {_clean(place.get('title'))}")
    return lines


def _attachment_line(kind: str, body: dict[str, Any]) -> str | None:
    """One line of text for an attachment that carries words; None for those that carry none."""
    if kind == "link":
        title, url = _clean(body.get("title")), _clean(body.get("url"))
        return "Link: " + " ".join(p for p in (title, url) if p) if title or url else None
    if kind == "photo":
        caption = _clean(body.get("text"))
        return f"Photo: {caption}" if caption else None
    if kind == "video":
        words = [p for p in (_clean(body.get("title")), _clean(body.get("description"))) if p]
        return "Video: " + ". ".join(words) if words else None
    if kind == "poll":
        question = _clean(body.get("question"))
        answers = [_clean(a.get("text")) for a in body.get("answers") or [] if isinstance(a, dict)]
        answers = [a for a in answers if a]
        if not question and not answers:
            return None
        return f"Poll: {question}" + (f" — {' / '.join(answers)}" if answers else "")
    if kind in ("doc", "article", "note", "page"):
        title = _clean(body.get("title"))
        return f"{kind.capitalize()}: {title}" if title else None
    if kind == "audio":
        words = [p for p in (_clean(body.get("artist")), _clean(body.get("title"))) if p]
        return "Audio: " + " — ".join(words) if words else None
    return None


def _clean(value: object) -> str:
    """VK text as plain text: <br> line breaks, entities decoded, [club1|Name] mentions as Name."""
    if not isinstance(value, str) or not value.strip():
        return ""
    text = _BR.sub("\n", value)
    if _ENTITY.search(text):
        text = html.unescape(text)
    return tidy_text(_MENTION.sub(r"\1", text))


# ---------------------------------------------------------------- the request (pure)


def request_url(source: VkSource, *, offset: int = 0) -> str:
    """The wall.get address for one page: no token in it (the token goes in a header)."""
    base = urlsplit(source.url or API_URL)
    params: list[tuple[str, str]] = [("domain", source.domain)] if source.domain else []
    if source.owner_id is not None:
        params.append(("owner_id", str(source.owner_id)))
    params += [("count", str(source.count)), ("extended", "1"), ("v", source.api_version)]
    if offset:
        params.append(("offset", str(offset)))
    return urlunsplit((base.scheme, base.netloc, base.path, urlencode(params), ""))


# ---------------------------------------------------------------- the collector


@dataclass(frozen=True)
class WallPage:
    """One wall.get answer: its posts, the ids of those not pinned, how many posts it held; or VK's error."""

    items: tuple[RawItem, ...] = ()
    ids: tuple[int, ...] = ()
    posts: int = 0
    error: APIError | None = None


def read_wall(body: bytes, *, content_type: str | None) -> WallPage:
    """One response body -> its posts, or the API error VK answered with HTTP 200 (pure; in a worker)."""
    data = load_json(body, content_type, "the VK API")
    error = api_error(data)
    if error is not None:
        return WallPage(error=error)
    posts, names = _wall_items(data)
    ids = tuple(i for p in posts if not p.get("is_pinned") and (i := integer(p.get("id"))) is not None)
    items = tuple(item for p in posts if (item := wall_item(p, names)) is not None)
    return WallPage(items, ids, len(posts))


async def collect(source: VkSource, session: Session, state: SourceState, now: datetime) -> Collected:
    token = os.environ.get(source.token_env, "").strip()
    if not token:
        raise FetchError(
            f"environment variable {source.token_env} is not set: put the service token "
            "of a VK app (its settings page, 'Service token') in it"
        )
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    cursor = int(state.cursor) if state.cursor and state.cursor.isdigit() else None
    newest = cursor
    pages = Pages(session, now)
    limit = MAX_PAGES if cursor is not None else 1
    for page in range(limit):
        url = request_url(source, offset=page * source.count)
        resp = await pages.first(url, headers=headers) if page == 0 else await pages.get(url, headers=headers)
        wall = await pages.parse(resp, read_wall, content_type=resp.content_type) if resp is not None else None
        if wall is None:
            break
        if wall.error is not None:  # the token is masked should VK quote it
            error = APIError(
                str(wall.error).replace(token, "***"), code=wall.error.code, retry_after=wall.error.retry_after
            )
            if page == 0:
                raise error
            pages.failed("page", url, error)
            break
        session.note_items(wall.posts)
        pages.items.extend(wall.items)
        newest = max([*wall.ids, *([newest] if newest is not None else [])], default=None)
        if cursor is None or wall.posts < source.count or not wall.ids or min(wall.ids) <= cursor:
            break
        if page == limit - 1:
            pages.capped(f"more than {limit * source.count} new posts since the last poll: older ones skipped")
    return pages.collected(cursor=str(newest) if newest is not None else None)
