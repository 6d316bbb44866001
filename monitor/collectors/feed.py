"""The `feed` source type: RSS 0.9x/1.0/2.0, Atom and JSON Feed, with conditional GET."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from monitor.config import SourceBase
from monitor.types import Collected, SourceState

if TYPE_CHECKING:
    from monitor.collectors.fetch import Session


class FeedSource(SourceBase):
    """`type: feed`: an RSS, Atom or JSON Feed address."""

    url: str


ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


async def collect(source: FeedSource, session: Session, state: SourceState, now: datetime) -> Collected:
    resp = await session.get(source.url, etag=state.etag, last_modified=state.last_modified, headers={"Accept": ACCEPT})
    if resp.not_modified:
        return Collected(items=(), etag=state.etag, last_modified=state.last_modified, not_modified=True)
    from monitor.collectors.feedparse import parse_feed  # noqa: PLC0415  # lxml: loaded to poll, not to read config

    parsed = await session.parse(parse_feed, resp.body, url=resp.url, content_type=resp.content_type)
    session.note_items(len(parsed.items))
    return Collected(items=parsed.items, etag=resp.etag, last_modified=resp.last_modified, warnings=parsed.warnings)
