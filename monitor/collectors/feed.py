"""The `feed` source type: RSS 0.9x/1.0/2.0, Atom and JSON Feed, with conditional GET."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from monitor.config import SourceBase, SourceURL
from monitor.types import Collected, SourceState

if TYPE_CHECKING:
    from monitor.collectors.fetch import Session


class FeedSource(SourceBase, frozen=True, kw_only=True):
    """`type: feed`: an RSS, Atom or JSON Feed address."""

    url: SourceURL


ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


async def collect(source: FeedSource, session: Session, state: SourceState, now: datetime) -> Collected:
    resp = await session.get(source.url, etag=state.etag, last_modified=state.last_modified, headers={"Accept": ACCEPT})
    if resp.not_modified:
        return Collected(items=(), etag=state.etag, last_modified=state.last_modified, not_modified=True)
    from monitor.collectors.feedparse import parse_feed  # noqa: PLC0415  # lxml: loaded to poll, not to read config

    # read once the body is here: the posts stored by a poll that ran meanwhile are known too
    known = session.known_raw(known_limit(resp.body)) if session.known_raw is not None else None
    parsed = await session.parse(parse_feed, resp.body, url=resp.url, content_type=resp.content_type, known=known)
    session.note_items(len(parsed.items) + parsed.skipped)
    return Collected(
        items=parsed.items,
        etag=resp.etag,
        last_modified=resp.last_modified,
        warnings=parsed.warnings,
        unchanged=len(parsed.skipped_keys),
    )


MAX_KNOWN = 10_000  # raw digests read for one poll: a feed's items are among its source's newest posts


def known_limit(body: bytes) -> int:
    """How many of the source's newest posts to read raw digests of: twice the items the body seems to hold
    (a rough count of item and entry tags; a miss only means an item is parsed) and 50 more."""
    return min(2 * (body.count(b"<item") + body.count(b"<entry")) + 50, MAX_KNOWN)
