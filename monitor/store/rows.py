"""Stored rows to the store's values and back (times as ISO 8601 UTC text): shared by every backend.

Pure: does no I/O. Both backends keep the same columns with the same text, so one set of converters serves both.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from monitor.store.details import decode_details
from monitor.types import AlertKind, AlertRow, AlertStatus, DeliveryRow, SourceState
from monitor.units import from_iso, iso


def ts(when: datetime | None) -> str | None:
    """A time as stored: ISO 8601 UTC text, whole seconds."""
    return iso(when.replace(microsecond=0)) if when is not None else None


def dt(text: str | None) -> datetime | None:
    return from_iso(text) if text else None


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
