"""Links from an alert's messages into Datasette as `monitor serve` runs it (`alerts.link_base`).

Pure: does no I/O; takes the base address, the store's database name and the alert, returns URLs. The URL
scheme is Datasette's: `/<database>/<table>/<rowid>` for a row, `/<database>/<canned query>?param=value` for a
canned query (`monitor.serve.QUERIES`: `alert_posts`, `fetch_errors`, `latest_matches`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from urllib.parse import quote, urlencode

from monitor.types import AlertKind, AlertRow

ALERT_POSTS = "alert_posts"  # the canned query listing a spike alert's posts (monitor.serve.QUERIES)


def database_name(store: PurePath) -> str:
    """The name Datasette gives the store (the file's stem): its URL path and its key in the metadata."""
    return store.stem


@dataclass(frozen=True)
class AlertLinks:
    """Where an alert's message points: the alert's row, and what it is about (its posts, the failing requests)."""

    alert: str  # the alert's row in the alerts table
    posts: str  # a spike's posts in its window; a health alert's failed requests; a digest's latest matches;
    # a campaign's cluster


def alert_links(base: str | None, database: str, alert: AlertRow) -> AlertLinks | None:
    """None without a `link_base`: the messages then say which command shows the posts."""
    if not base:
        return None
    root = f"{base.rstrip('/')}/{quote(database, safe='')}"
    if alert.kind is AlertKind.HEALTH and alert.source:
        posts = f"{root}/fetch_errors?{urlencode({'source': alert.source})}"
    elif alert.kind is AlertKind.DIGEST:
        posts = f"{root}/latest_matches?topic="
    elif alert.kind is AlertKind.CAMPAIGN and alert.cluster_id is not None:  # the cluster's posts, oldest first
        posts = f"{root}/posts?{urlencode({'cluster_id': alert.cluster_id, '_sort': 'published_at'})}"
    else:
        posts = f"{root}/{ALERT_POSTS}?{urlencode({'alert_id': alert.id})}"
    return AlertLinks(alert=f"{root}/alerts/{alert.id}", posts=posts)
