"""Collectors: one module per source type, registered here by type name.

A collector is `async def collect(source, session, state, now) -> Collected`: it fetches through the
session (which logs every request) and parses; it raises FetchError or ParseError when nothing could be
read. Adding a source type means one module and one entry in `COLLECTORS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from monitor.collectors import feed, html, mastodon, reddit, telegram, vk
from monitor.collectors.fetch import Session
from monitor.types import Collected, SourceState

Collector = Callable[[Any, Session, SourceState, datetime], Awaitable[Collected]]

COLLECTORS: dict[str, Collector] = {
    "feed": feed.collect,
    "html": html.collect,
    "telegram": telegram.collect,
    "mastodon": mastodon.collect,
    "reddit": reddit.collect,
    "vk": vk.collect,
}
