"""The time buckets of `stats` as ranges of stored time text, for counting a bucket at a time (pure: no I/O).

Stored times are ISO 8601 UTC text (`2026-12-04T18:14:13Z`), so a bucket is a range of text: a time is in the
bucket labelled `label` (`2026-12-04T18:00:00Z` by hour, `2026-12-04` by day, the Monday by week) when
`label <= time < following`, `following` being the next bucket's label. Both stores count each bucket from the index
matches_topic_published (topic, published_at, cluster_id): one range read per topic and bucket, in order,
instead of grouping every match of the period by a computed bucket (a sort of all of them).
"""

from __future__ import annotations

from datetime import datetime, timedelta

# Past this many buckets (a year by hour, with no --since), probing empty buckets costs more than reading every
# match: the stores group the matches instead.
MAX_BUCKETS = 2_000

_STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}


def _floor(time: str, by: str) -> datetime:
    """The start of the bucket holding a stored time (weeks start on Monday, as both stores' `week` buckets)."""
    if by == "hour":
        return datetime.fromisoformat(time[:13])
    day = datetime.fromisoformat(time[:10])
    return day - timedelta(days=day.weekday()) if by == "week" else day


def _label(start: datetime, by: str) -> str:
    return start.strftime("%Y-%m-%dT%H:00:00Z") if by == "hour" else start.strftime("%Y-%m-%d")


def stat_buckets(by: str, first: str, last: str) -> list[tuple[str, str]] | None:
    """(label, following) of every `by` bucket from the one holding stored time `first` to the one holding
    `last`, oldest first; None past MAX_BUCKETS (or for an unknown `by`, or times that are not ISO 8601)."""
    if by not in _STEP:
        return None
    try:
        start, end = _floor(first, by), _floor(last, by)
    except ValueError:
        return None
    if start > end:
        return []
    if (end - start) // _STEP[by] >= MAX_BUCKETS:
        return None
    out = []
    while start <= end:
        following = start + _STEP[by]
        out.append((_label(start, by), _label(following, by)))
        start = following
    return out


def period_buckets(
    by: str, first: str | None, last: str | None, since: str | None, until: str | None
) -> list[tuple[str, str]] | None:
    """The buckets `stats` counts: from the store's first stored time (or `since`, if later) to its last (or
    `until`, if earlier); [] for an empty store; None as `stat_buckets`."""
    if first is None or last is None:
        return []
    return stat_buckets(by, max(first, since or first), min(last, until or last))
