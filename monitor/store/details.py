"""`alerts.details` as stored: the typed details of each alert kind, to and from JSON, in this one place.

The JSON keys are the analyst's contract (README, "The store"): health alerts `state`, `type`, `failures`,
`error`, `since`; digests `day`; campaigns `first_post`, `crossing_post`, `voices`, `posts` (posts.id values).
Rows written before the details were typed (`broken_since`) still read.
"""

from __future__ import annotations

import json
from typing import Any

from monitor.types import AlertDetails, AlertKind, CampaignDetails, DigestDetails, HealthDetails, HealthState
from monitor.units import from_iso, iso


def encode_details(details: AlertDetails) -> str | None:
    """`alerts.details` as stored (JSON text), or None for an alert without details."""
    if isinstance(details, HealthDetails):
        return json.dumps(
            {
                "state": details.state.value,
                "type": details.source_type,
                "failures": details.failures,
                "error": details.error,
                "since": iso(details.since.replace(microsecond=0)) if details.since else None,
            },
            ensure_ascii=False,
        )
    if isinstance(details, DigestDetails):
        return json.dumps({"day": details.day})
    if isinstance(details, CampaignDetails):
        return json.dumps(
            {
                "first_post": details.first_post,
                "crossing_post": details.crossing_post,
                "voices": details.voices,
                "posts": list(details.posts),
            }
        )
    return None


def decode_details(kind: AlertKind, text: str | None) -> AlertDetails:
    """The typed details of a stored alert (text that is not a JSON object reads as no details)."""
    try:
        data: dict[str, Any] = json.loads(text) if text else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if kind is AlertKind.HEALTH:
        try:
            since = data.get("since") or data.get("broken_since")
            return HealthDetails(
                state=HealthState(data.get("state", "broken")),
                source_type=str(data.get("type") or ""),
                failures=int(data.get("failures") or 0),
                error=data.get("error"),
                since=from_iso(since) if since else None,
            )
        except (ValueError, TypeError):  # edited by hand: keep what the alert still says
            return HealthDetails(state=HealthState.BROKEN, source_type="", failures=0)
    if kind is AlertKind.DIGEST and data.get("day"):
        return DigestDetails(day=str(data["day"]))
    if kind is AlertKind.CAMPAIGN:
        try:
            return CampaignDetails(
                first_post=int(data["first_post"]),
                crossing_post=int(data["crossing_post"]),
                voices=int(data["voices"]),
                posts=tuple(int(p) for p in data.get("posts") or ()),
            )
        except (KeyError, ValueError, TypeError):  # edited by hand: the alert still names its cluster
            return None
    return None
