"""Collectors: one module per source type, each holding its config model and its `collect`; registered here.

A collector is `async def collect(source, session, state, now) -> Collected`: it fetches through the
session (which logs every request) and parses through `session.parse` (in a worker process, bounded in
time); it raises FetchError or ParseError when nothing could be read.

Adding a source type means one module (a `SourceBase` subclass for its keys and a `collect`) and one entry
in `SOURCE_TYPES`; config loading takes the models from here (`SOURCE_MODELS`), so `monitor check`
validates the new keys with everything else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.collectors import feed, html, mastodon, reddit, telegram, vk
from monitor.config import SourceBase
from monitor.types import Collected, SourceState

if TYPE_CHECKING:  # the registry is read when config is (monitor status): httpx is loaded by polling only
    from monitor.collectors.fetch import Session

__all__ = ["SOURCE_MODELS", "SOURCE_TYPES", "Collector", "SourceType"]

Collector = Callable[[Any, "Session", SourceState, datetime], Awaitable[Collected]]


@dataclass(frozen=True)
class SourceType:
    """One source type: the model of its keys in config.yaml and the collector that polls it."""

    model: type[SourceBase]
    collect: Collector


SOURCE_TYPES: dict[str, SourceType] = {
    "feed": SourceType(feed.FeedSource, feed.collect),
    "html": SourceType(html.HtmlSource, html.collect),
    "telegram": SourceType(telegram.TelegramSource, telegram.collect),
    "mastodon": SourceType(mastodon.MastodonSource, mastodon.collect),
    "reddit": SourceType(reddit.RedditSource, reddit.collect),
    "vk": SourceType(vk.VkSource, vk.collect),
}

SOURCE_MODELS: Mapping[str, type[SourceBase]] = {name: kind.model for name, kind in SOURCE_TYPES.items()}
