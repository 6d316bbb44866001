"""Durations (`30s`, `10m`, `1h`, `7d`, `1h30m`), sizes (`10MB`) and time arguments (`30d` or an ISO date).

Pure: does no I/O; takes text (and `now` where a relative time is meant), returns values.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_DURATION_FULL = re.compile(r"^\s*(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w)\s*)+$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_DURATION = timedelta(days=36_500)  # every duration is subtracted from now somewhere (a baseline, --since)

# SI units are powers of 1000, IEC units powers of 1024; a bare number is bytes.
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


class DurationTooLongError(ValueError):
    """A well-formed duration past MAX_DURATION (kept apart so that `parse_when` does not try it as a date)."""


def parse_duration(value: object) -> timedelta:
    """`30s`, `10m`, `1h`, `7d`, `2w`, `1h30m`; a bare number is seconds. Raises ValueError."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 30s, 10m, 1h or 7d, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION_FULL.match(value):
        seconds = sum(float(n) * _DURATION_UNITS[u.lower()] for n, u in _DURATION_PART.findall(value))
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
        seconds = float(value)
    else:
        raise ValueError(f"expected a duration like 30s, 10m, 1h or 7d, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    if seconds > MAX_DURATION.total_seconds():  # `now - 99999999d` is before year 1: OverflowError far from here
        raise DurationTooLongError(f"a duration must be at most {MAX_DURATION.days}d (100 years), got {value!r}")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest exact spelling: 3600 s -> `1h`, 5400 s -> `1h30m`, 0.5 s -> `500ms`."""
    total_ms = round(delta.total_seconds() * 1000)
    if total_ms % 1000:
        return f"{total_ms}ms"
    seconds = total_ms // 1000
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_size(value: object) -> int:
    """`10MB` (10,000,000), `512KiB` (524,288), `2000` (bytes). Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 10MB, got {value!r}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"expected a size like 512KB, 10MB or 1GiB, got {value!r}")
        size = int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    if size <= 0:
        raise ValueError(f"a size must be positive, got {value!r}")
    return size


def parse_when(value: str, now: datetime) -> datetime:
    """A `--since`/`--until` argument: a duration back from `now` (`30d`) or an ISO date or time.

    Naive ISO times are UTC. Returns an aware UTC datetime. Raises ValueError.
    """
    text = value.strip()
    try:
        return now - parse_duration(text)
    except DurationTooLongError:
        raise
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"expected a duration back from now (30d, 12h) or an ISO date/time, got {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def iso(when: datetime) -> str:
    """ISO 8601 UTC text as stored: `2024-03-01T12:00:00Z` (microseconds kept when present)."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def from_iso(text: str) -> datetime:
    """The inverse of `iso` (also reads `+00:00` and naive text as UTC)."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
