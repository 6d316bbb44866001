"""Helpers shared by the JSON-API collectors (mastodon, reddit, vk): a body read as JSON, an unexpected shape
described in an error message, and typed values taken from decoded JSON. Pure: no I/O."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from monitor.collectors.decode import decode_body
from monitor.exceptions import ParseError

__all__ = ["describe", "epoch_time", "integer", "load_json", "number", "text_or_none"]


def load_json(body: bytes, content_type: str | None, api: str, html_hint: str = "") -> object:
    """The body as JSON; ParseError naming the API when it is not (an HTML page gets its own message)."""
    text = decode_body(body, content_type)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        if text.lstrip()[:1] == "<":
            raise ParseError(f"expected JSON from {api}, got an HTML page{html_hint}") from exc
        raise ParseError(f"invalid JSON from {api}: {' '.join(str(exc).split())[:200]}") from exc


def describe(value: object) -> str:
    """A short description of a JSON value for an error message: what came instead of what was expected."""
    if isinstance(value, dict):
        keys = ", ".join(list(map(str, value))[:6])
        return f"an object with keys {keys}" if keys else "an empty object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return type(value).__name__


def text_or_none(value: object) -> str | None:
    """A non-blank string field, else None."""
    return value if isinstance(value, str) and value.strip() else None


def number(value: object) -> float | None:
    """A JSON number (not a boolean, not NaN or infinite), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def number_text(value: str | None) -> float | None:
    """A number written as text (an HTTP header's value), finite, else None."""
    try:
        parsed = float(value) if value is not None else None
    except ValueError:
        return None
    return parsed if parsed is not None and math.isfinite(parsed) else None


def integer(value: object) -> int | None:
    """A JSON integer, or a string of decimal digits (VK sends some ids as strings), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def epoch_time(value: object) -> datetime | None:
    """Unix seconds (Reddit's created_utc, VK's date) as an aware UTC datetime; None when not a usable time."""
    seconds = number(value)
    if seconds is None or seconds <= 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
