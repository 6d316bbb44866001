"""Stored rows to the store's values and back (times as ISO 8601 UTC text): shared by every backend.

Pure: does no I/O. Both backends keep the same columns with the same text, so one set of converters serves both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.store.api import SourceRow
from monitor.store.details import decode_details
from monitor.types import (
    AlertKind,
    AlertRow,
    AlertStatus,
    ClusterPost,
    DeliveryRow,
    RobotsRecord,
    SourceState,
    StuckDelivery,
    WindowPost,
)
from monitor.units import from_iso, iso


def ts(when: datetime | None) -> str | None:
    """A time as stored: ISO 8601 UTC text, whole seconds."""
    return iso(when.replace(microsecond=0)) if when is not None else None


def dt(text: str | None) -> datetime | None:
    return from_iso(text) if text else None


def robots_of(row: Any) -> RobotsRecord | None:
    """A `robots` row, or None for one that does not read (edited by hand, say): a cache row is only a request
    saved, so the poll asks the site instead of failing."""
    body, origin = row["body"], row["origin"]
    try:
        fetched_at = from_iso(str(row["fetched_at"]))
    except ValueError:
        return None
    if isinstance(body, str):  # SQLite keeps what it is given: text written into the column by hand
        body = body.encode("utf-8")
    if not isinstance(origin, str) or not (body is None or isinstance(body, bytes | memoryview)):
        return None
    return RobotsRecord(origin, bytes(body) if body is not None else None, fetched_at)


def alert_of(row: dict[str, Any]) -> AlertRow:
    kind = AlertKind(row["kind"])
    return AlertRow(
        id=row["id"],
        kind=kind,
        topic=row["topic"],
        source=row["source"],
        window_start=dt(row["window_start"]),
        window_end=dt(row["window_end"]),
        count=row["count"],
        expected=row["expected"],
        score=row["score"],
        created_at=from_iso(row["created_at"]),
        status=AlertStatus(row["status"]),
        attempts=row["attempts"],
        sent_at=dt(row["sent_at"]),
        error=row["error"],
        next_attempt_at=dt(row["next_attempt_at"]),
        message_id=row["message_id"],
        details=decode_details(kind, row["details"]),
        cluster_id=row["cluster_id"],
    )


def delivery_of(row: dict[str, Any]) -> DeliveryRow:
    return DeliveryRow(
        id=row["id"],
        alert_id=row["alert_id"],
        channel=row["channel"],
        status=AlertStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=dt(row["next_attempt_at"]),
        sent_at=dt(row["sent_at"]),
        error=row["error"],
        message_id=row["message_id"],
        claimed_by=row["claimed_by"],
        claim_until=dt(row["claim_until"]),
    )


def state_of(name: str, row: dict[str, Any] | None) -> SourceState:
    if row is None:
        return SourceState(name=name)
    return SourceState(
        name=name,
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_ok_at=dt(row["last_ok_at"]),
        last_error=row["last_error"],
        last_error_at=dt(row["last_error_at"]),
        failures=row["failures"] or 0,
        next_poll_at=dt(row["next_poll_at"]),
        retry_at=dt(row["retry_at"]),
        cursor=row["cursor"],
        last_post_at=dt(row["last_post_at"]),
        health=row["health"],
        warnings=tuple(json.loads(row["warnings"])) if row["warnings"] else (),
    )


def source_row_of(row: dict[str, Any]) -> SourceRow:
    """A `sources` row with the `posts` count and `last_fetch_at` each backend's source_rows adds."""
    return SourceRow(
        state=state_of(row["name"], row),
        type=row["type"] or "",
        url=row["url"],
        posts=row["posts"],
        last_fetch_at=dt(row["last_fetch_at"]),
    )


def stuck_delivery_of(row: dict[str, Any]) -> StuckDelivery:
    """A delivery joined with its alert's kind and created_at (both backends' stuck_deliveries)."""
    return StuckDelivery(
        alert_id=row["alert_id"],
        channel=row["channel"],
        kind=row["kind"],
        created_at=from_iso(row["created_at"]),
        attempts=row["attempts"],
        error=row["error"],
    )


# The columns each backend selects for window_post_of / cluster_post_of, in this order.
WINDOW_POST_COLUMNS = "p.id, p.source, p.url, p.title, p.text, p.published_at, p.cluster_id, m.term"
CLUSTER_POST_COLUMNS = (
    "p.id, p.cluster_id, p.source, p.author, p.published_at, p.first_seen_at, p.url, p.title, p.text, p.content_hash"
)
TOPIC_SEPARATOR = "\x1f"  # joins a post's topics in one column (unit separator: never in a topic name)


def window_post_of(r: Sequence[Any]) -> WindowPost:
    return WindowPost(
        id=r[0],
        source=r[1],
        url=r[2],
        title=r[3] or "",
        text=r[4] or "",
        published_at=from_iso(r[5]),
        cluster_id=r[6],
        term=r[7],
    )


def cluster_post_of(r: Sequence[Any]) -> ClusterPost:
    """A row of CLUSTER_POST_COLUMNS followed by the post's topics joined by TOPIC_SEPARATOR (or NULL)."""
    return ClusterPost(
        id=r[0],
        cluster_id=r[1],
        source=r[2],
        author=r[3],
        published_at=from_iso(r[4]),
        first_seen_at=from_iso(r[5]),
        url=r[6],
        title=r[7] or "",
        text=r[8] or "",
        content_hash=r[9],
        topics=tuple(sorted(r[10].split(TOPIC_SEPARATOR))) if r[10] else (),
    )
