"""Delivery rules: which channels an alert goes to, whether a claimed delivery is still worth sending, what a
send's outcome writes, when a failed one is tried again, and how an alert's status sums up its deliveries.

Pure: does no I/O; takes rows, outcomes and `now`, returns what to write. The outbox claims a delivery in the
store, asks here, writes the answer and sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from monitor.types import AlertRow, AlertStatus, DeliveryRow, DeliveryUpdate

RETRY_FIRST = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=1)
# A pending alert older than this when it could first be sent is not sent any more: it is stale news.
STALE_AFTER = timedelta(hours=24)
EMAIL = "email"  # the channel name of `alerts.email`
UNROUTED = "routed to no channel: no channel's topics and kinds take this alert (alerts.email, alerts.notify)"


class Route(msgspec.Struct, frozen=True):
    """Which alerts one channel takes (`topics`/`kinds` of its config block; None takes every one)."""

    channel: str  # `email` or a notify channel's name
    topics: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None


def takes(route: Route, kind: str, topic: str | None) -> bool:
    """The routing rule. `kinds` applies to every alert. `topics` applies to alerts that have a topic (spike,
    campaign alerts about a topic); alerts without one (health, digest) are governed by `kinds` alone."""
    if route.kinds is not None and kind not in route.kinds:
        return False
    return route.topics is None or topic is None or topic in route.topics


def channels_for(routes: Sequence[Route], kind: str, topic: str | None) -> tuple[str, ...]:
    """The channels an alert of this kind and topic goes to, in the routes' order."""
    return tuple(r.channel for r in routes if takes(r, kind, topic))


class SendOutcome(msgspec.Struct, frozen=True):
    """What one send attempt came to: accepted (perhaps with some recipients refused), or an error."""

    error: str | None = None  # the send failed: nothing was accepted
    refused: tuple[str, ...] = ()  # accepted for the others; these recipients were refused


class AlertSummary(msgspec.Struct, frozen=True):
    """The alert's summary columns, from its deliveries."""

    status: AlertStatus
    attempts: int
    sent_at: datetime | None
    error: str | None
    next_attempt_at: datetime | None
    message_id: str | None


def next_attempt(attempts: int, now: datetime) -> datetime:
    """When to try a failed delivery again: 1 min, 2, 4, ... capped at an hour."""
    delay: timedelta = RETRY_FIRST * (2 ** max(0, min(attempts - 1, 16)))
    return now + min(delay, RETRY_CAP)


def before_send(alert: AlertRow, row: DeliveryRow, now: datetime) -> DeliveryUpdate | None:
    """None when the claimed delivery should be sent now; else what to write instead (it is stale)."""
    if row.attempts == 0 and now - alert.created_at > STALE_AFTER:
        return DeliveryUpdate(
            status=AlertStatus.FAILED,
            attempts=0,
            error="not sent: stale (over 24 h old before it could be sent)",
        )
    return None


def cannot_compose(row: DeliveryRow, error: str) -> DeliveryUpdate:
    """The message cannot be built (a bad address, an unknown kind): retrying would not help."""
    return DeliveryUpdate(status=AlertStatus.FAILED, attempts=row.attempts, error=f"cannot compose: {error}")


def after_send(row: DeliveryRow, outcome: SendOutcome, now: datetime, *, max_attempts: int) -> DeliveryUpdate:
    """Accepted: sent (refused recipients noted). Failed: retried with backoff, or failed after max_attempts."""
    attempts = row.attempts + 1
    if outcome.error is None:
        note = f"refused by the server: {'; '.join(outcome.refused)}" if outcome.refused else None
        return DeliveryUpdate(status=AlertStatus.SENT, attempts=attempts, sent_at=now, error=note)
    if attempts >= max_attempts:
        return DeliveryUpdate(status=AlertStatus.FAILED, attempts=attempts, error=outcome.error)
    return DeliveryUpdate(
        status=AlertStatus.PENDING,
        attempts=attempts,
        next_attempt_at=next_attempt(attempts, now),
        error=outcome.error,
    )


def summarise(rows: Sequence[DeliveryRow]) -> AlertSummary:
    """`sent` when every delivery is sent, `failed` when one gave up, else `pending`; attempts are the most any
    channel made; the error is each channel's last error (named when there are several channels)."""
    statuses = {r.status for r in rows}
    if rows and statuses == {AlertStatus.SENT}:
        status = AlertStatus.SENT
    elif AlertStatus.FAILED in statuses:
        status = AlertStatus.FAILED
    else:
        status = AlertStatus.PENDING
    errors = [(r.channel, r.error) for r in rows if r.error]
    error = errors[0][1] if len(rows) == 1 and errors else "; ".join(f"{c}: {e}" for c, e in errors) or None
    waiting = [r.next_attempt_at for r in rows if r.status is AlertStatus.PENDING and r.next_attempt_at]
    emailed = [r.message_id for r in rows if r.channel == EMAIL and r.message_id]
    return AlertSummary(
        status=status,
        attempts=max((r.attempts for r in rows), default=0),
        sent_at=max((r.sent_at for r in rows if r.sent_at), default=None) if status is AlertStatus.SENT else None,
        error=error,
        next_attempt_at=min(waiting, default=None),
        message_id=emailed[0] if emailed else next((r.message_id for r in rows if r.message_id), None),
    )
