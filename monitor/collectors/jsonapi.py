"""Helpers shared by the JSON-API collectors (mastodon, reddit, vk): reading a body as JSON, describing an
unexpected shape in an error message, and taking a string field."""

from __future__ import annotations

import json

from monitor.collectors.decode import decode_body
from monitor.collectors.fetch import Response
from monitor.exceptions import ParseError


def load_json(resp: Response, api: str, html_hint: str = "") -> object:
    """The body as JSON; ParseError naming the API when it is not (an HTML page gets its own message)."""
    text = decode_body(resp.body, resp.content_type)
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
