"""What each alert email reports, built from typed rows: the spike's window, a source's health, the digest.

Pure: does no I/O; takes the rows the outbox read from the store and returns the report values that
`emails.py` renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta, tzinfo

from monitor import emails
from monitor.types import AlertRow, HealthDetails, HealthState, SourceState, WindowPost

TOP_POSTS = 8  # stories listed in a spike email
DIGEST_TOP = 5  # stories per topic in the digest


def stories_of(posts: Sequence[WindowPost]) -> list[emails.AlertPost]:
    """One AlertPost per cluster (its first post), with the number of copies and their other sources."""
    clusters: dict[int | str, list[WindowPost]] = {}
    for post in posts:
        clusters.setdefault(post.cluster_id or f"post{post.id}", []).append(post)
    stories = []
    for members in clusters.values():
        first = members[0]
        others = tuple(sorted({m.source for m in members[1:]} - {first.source}))
        stories.append(
            emails.AlertPost(
                source=first.source,
                published_at=first.published_at,
                title=first.title,
                text=first.text,
                url=first.url,
                term=first.term,
                copies=len(members),
                copy_sources=others,
            )
        )
    return stories


def spike_report(
    alert: AlertRow,
    posts: Sequence[WindowPost],
    *,
    baseline: timedelta,
    zone: tzinfo,
    zone_name: str,
    has_chart: bool,
) -> emails.SpikeReport:
    """The spike email's facts: the window's count against the expected, its stories and sources."""
    assert alert.topic and alert.window_start and alert.window_end, "a spike alert has a topic and a window"
    sources: dict[str, int] = {}
    for post in posts:
        sources[post.source] = sources.get(post.source, 0) + 1
    return emails.SpikeReport(
        alert_id=alert.id,
        topic=alert.topic,
        count=alert.count or len(posts),
        expected=alert.expected or 0.0,
        score=alert.score or 0.0,
        window_start=alert.window_start,
        window_end=alert.window_end,
        baseline=baseline,
        mentions=len(posts),
        stories=len({p.cluster_id for p in posts}),
        sources=tuple(sorted(sources.items(), key=lambda kv: (-kv[1], kv[0]))),
        posts=emails.top_stories(stories_of(posts), TOP_POSTS),
        zone=zone,
        zone_name=zone_name,
        has_chart=has_chart,
    )


def health_report(alert: AlertRow, state: SourceState, *, url: str | None, zone: tzinfo) -> emails.HealthReport:
    """A source broke (how many polls failed, the last error) or works again (after how many failed polls)."""
    assert alert.source, "a health alert names its source"
    details = alert.details if isinstance(alert.details, HealthDetails) else None
    return emails.HealthReport(
        alert_id=alert.id,
        source=alert.source,
        source_type=details.source_type if details else "",
        state=(details.state if details else HealthState.BROKEN).value,
        failures=details.failures if details else alert.count or 0,
        last_error=(details.error if details else None) or state.last_error,
        last_ok_at=state.last_ok_at,
        since=details.since if details else None,
        url=url,
        zone=zone,
    )


@dataclass(frozen=True)
class TopicDay:
    """One topic's last day and week, as the digest shows it."""

    topic: str
    day: tuple[int, int]  # (mentions, stories) in the last 24 hours
    week: tuple[int, int]  # (mentions, stories) in the last 7 days
    posts: tuple[WindowPost, ...]  # its posts of the last 24 hours


def digest_report(
    day: str,
    topics: Sequence[TopicDay],
    raised: Sequence[AlertRow],
    failing: Sequence[SourceState],
    *,
    zone: tzinfo,
    zone_name: str,
) -> emails.DigestReport:
    """The daily digest: each topic's day against its week, the spike alerts raised, the sources failing."""
    return emails.DigestReport(
        day=day,
        topics=tuple(
            emails.DigestTopic(
                t.topic,
                t.day[0],
                t.day[1],
                t.week[0] / 7,
                t.week[1] / 7,
                emails.top_stories(stories_of(t.posts), DIGEST_TOP),
            )
            for t in topics
        ),
        alerts=tuple(
            f"{emails.local_time(a.created_at, zone)} {a.topic}: {a.count} posts "
            f"(expected {a.expected or 0:.1f}), {a.status.value}"
            for a in sorted(raised, key=lambda a: a.id)
        ),
        failing=tuple((s.name, s.failures, s.last_error or "") for s in failing if s.failures),
        zone=zone,
        zone_name=zone_name,
    )
