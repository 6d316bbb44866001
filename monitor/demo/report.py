"""What the demo tells the newcomer: facts read from the store after the polls, and the lines printed.

`read_facts` reads the store (and asks the detector for each topic's verdict on the last window);
`summary_lines` is pure: facts in, text lines out.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from monitor.alerts import detector_params
from monitor.config import Config
from monitor.spikes import judge
from monitor.store import Store
from monitor.types import RunResult


@dataclass(frozen=True)
class SourceFacts:
    """One source's first poll and what the store holds from it."""

    name: str
    type: str
    items: int  # items read by the first poll
    new: int  # posts it added
    matches: int  # topic matches among them
    comments: int  # stored posts with a parent_id (comments linked to their article)


@dataclass(frozen=True)
class TopicFacts:
    """One topic in the last window, as the detector judged it."""

    topic: str
    total: int  # matching posts in the store
    count: int  # in the last window
    stories: int  # distinct near-duplicate clusters among them
    expected: float
    score: float
    alert: bool
    min_count: int
    busiest_past: int  # the highest count of any earlier window of the baseline
    busiest_hours_ago: float  # how long before now that window ended


@dataclass(frozen=True)
class MailFacts:
    """The alert email as the local SMTP server received it, and where it was saved."""

    alert_id: int
    subject: str
    recipients: tuple[str, ...]
    smtp: str  # host:port
    eml: Path
    png: Path | None


@dataclass(frozen=True)
class StoreFacts:
    """What the store holds after the first poll."""

    sources: tuple[SourceFacts, ...]
    posts: int
    days: float  # published span of the stored posts
    topics: tuple[TopicFacts, ...]


@dataclass(frozen=True)
class Facts:
    """Everything the summary says."""

    site: str  # the local site's address
    stored: StoreFacts
    store: Path
    config: Path
    mail: MailFacts
    second_poll_new: int  # posts added by polling everything again at once
    seconds: float  # the demo's duration


def read_facts(store: Store, config: Config, results: Sequence[RunResult], now: datetime) -> StoreFacts:
    """The store's side of the facts: per source, the span of the posts, per topic the detector's verdict."""
    held = store.summary()
    sources = tuple(
        SourceFacts(
            r.source, config.source(r.source).type, r.items, r.new_posts, r.matches, held.comments.get(r.source, 0)
        )
        for r in results
    )
    days = (held.newest - held.oldest).total_seconds() / 86400 if held.oldest and held.newest else 0.0
    topics = tuple(_topic(store, config, t.name, held.matches.get(t.name, 0), now) for t in config.topics)
    return StoreFacts(sources=sources, posts=held.posts, days=days, topics=topics)


def _topic(store: Store, config: Config, topic: str, total: int, now: datetime) -> TopicFacts:
    params = detector_params(config).at_scale(config.alerts.window)  # the configured window, as the daemon judges it
    series = store.topic_counts(topic, now, params.step, params.buckets)  # step = window: one bucket per window
    count, history = series.counts[-1], list(series.counts[:-1])
    verdict = judge(count, history, params)
    _, stories = store.topic_count(topic, now - params.window, now)
    busiest = max(range(len(history)), key=lambda i: (history[i], i)) if history else 0
    windows_back = len(history) - busiest
    return TopicFacts(
        topic=topic,
        total=total,
        count=count,
        stories=stories,
        expected=verdict.expected,
        score=verdict.score,
        alert=verdict.alert,
        min_count=params.min_count,
        busiest_past=history[busiest] if history else 0,
        busiest_hours_ago=windows_back * params.window.total_seconds() / 3600,
    )


# --------------------------------------------------------------------------------------------- lines
def shown(path: Path, cwd: Path) -> str:
    """A path as the user would type it: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(cwd.resolve()))
    except ValueError:
        return str(path.resolve())


def summary_lines(facts: Facts, cwd: Path) -> list[str]:
    """The few lines that tell a newcomer what just happened and what to try next."""
    config = shlex.quote(shown(facts.config, cwd))
    stored = facts.stored
    lines = [
        "monitor demo: a fictional week of regional media on a local site, polled by monitor's own code, offline.",
        "",
        f"1. Polled {len(stored.sources)} sources on {facts.site} (the code `monitor poll` runs):",
    ]
    width = max(len(s.name) for s in stored.sources)
    for s in stored.sources:
        linked = f"  ({s.new - s.comments} articles + {s.comments} comments linked to them)" if s.comments else ""
        counts = f"{s.items:>3} items, {s.new:>3} new, {s.matches:>2} matching"
        lines.append(f"     {s.name:<{width}}  {s.type:<8}  {counts}{linked}")
    lines += [
        f"2. Stored {stored.posts} posts, published over {stored.days:.1f} days, in {shown(facts.store, cwd)}.",
        f"   Polling everything again added {facts.second_poll_new}: every post is stored once.",
        "3. Matching posts per topic; the last hour is judged against the same hour of the 7 days before:",
    ]
    width = max(len(t.topic) for t in stored.topics)
    for t in stored.topics:
        lines.append(
            f"     {t.topic:<{width}}  {t.total:>3} this week, {t.count:>2} in the last hour = {_stories(t.stories)}; "
            f"expected {t.expected:.1f}, score {t.score:.1f} -> {_verdict(t)}"
        )
    lines += _history_notes(stored.topics)
    mail = facts.mail
    lines += [
        f"4. Alert #{mail.alert_id} was mailed to {', '.join(mail.recipients)} via the local SMTP server {mail.smtp}:",
        f"     Subject: {mail.subject}",
        f"   Saved as {shown(mail.eml, cwd)} (open it with any mail program)",
    ]
    if mail.png is not None:
        lines.append(f"   and its chart as {shown(mail.png, cwd)}.")
    lines += [
        "",
        f"Done in {facts.seconds:.1f} s. Now query what was stored:",
        f"  monitor --config {config} search 'сепаратист*'     # full-text search, newest first",
        f"  monitor --config {config} search 'совет*' --topic peoples-council",
        f"  monitor --config {config} stats --by day           # matching posts and stories per day",
        f"  monitor --config {config} alerts                   # the alert and its delivery",
        f"  monitor --config {config} status                   # per-source health",
    ]
    return lines


def _stories(count: int) -> str:
    return f"{count:>2} {'story' if count == 1 else 'stories'}"


def _verdict(t: TopicFacts) -> str:
    if t.alert:
        return "ALERT"
    if t.count < t.min_count:
        return f"no alert: below min_count {t.min_count}"
    return "no alert: not improbable enough"


def _history_notes(topics: Sequence[TopicFacts]) -> list[str]:
    """Old bursts that came in with the first poll: they show that only fresh activity alerts."""
    return [
        f"   {t.topic}'s busiest hour this week ({t.busiest_past} posts, {t.busiest_hours_ago / 24:.1f} days ago) came "
        "with the first poll: old news never alerts."
        for t in topics
        if not t.alert and t.busiest_past >= t.min_count
    ]
