"""`monitor rematch`: apply the configured topics to the posts already stored, and the daemon's start-up notice.

Posts are read, matched and rewritten in short transactions of `BATCH` posts (keyset order by id), so a daemon
writing beside it waits a moment at most; only matches that changed are written. No alert is evaluated here:
the detector only ever judges the window ending now, so history that gains matches never raises an alert
about an old window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec

from monitor.config import Config
from monitor.match import Matcher
from monitor.store import Store
from monitor.topicset import TopicChanges, changes, fingerprints

log = logging.getLogger("monitor.rematch")

BATCH = 500  # posts per transaction: the longest a poll beside it waits is one batch


class RematchSummary(msgspec.Struct, frozen=True):
    posts: int  # posts read
    added: dict[str, int] = msgspec.field(default_factory=dict)  # topic -> matches added
    removed: dict[str, int] = msgspec.field(
        default_factory=dict
    )  # topic -> matches removed (a term gone, a veto added)
    dropped: dict[str, int] = msgspec.field(default_factory=dict)  # topic no longer configured -> matches deleted
    recorded: bool = False  # the topics' fingerprints were recorded (the whole history was re-matched)

    def lines(self, topics: Sequence[str]) -> list[str]:
        rows = [
            f"{topic}: +{self.added.get(topic, 0)} matches, -{self.removed.get(topic, 0)} matches" for topic in topics
        ]
        rows += [f"{topic}: not in the config any more, {n} matches deleted" for topic, n in self.dropped.items()]
        return rows


Progress = Callable[[int, dict[str, int], dict[str, int]], None]


def rematch(
    config: Config,
    store: Store,
    *,
    now: datetime,
    topics: Sequence[str] | None = None,
    since: datetime | None = None,
    batch: int = BATCH,
    on_batch: Progress | None = None,
) -> RematchSummary:
    """Re-match the stored posts (published since `since`) for `topics` (default: all configured ones).

    With every topic and no `since`, the matches of topics no longer configured are deleted too. The topics'
    fingerprints are recorded when their whole history was re-matched (no `since`)."""
    chosen = [t.name for t in config.topics] if topics is None else list(topics)
    matcher = Matcher([t for t in config.topics if t.name in set(chosen)])
    added: dict[str, int] = {}
    removed: dict[str, int] = {}
    after, read = 0, 0
    while True:
        step = store.rematch_batch(after_id=after, limit=batch, topics=chosen, since=since, match=matcher.match)
        if step.posts == 0:
            break
        after, read = step.last_id, read + step.posts
        for topic, n in step.added.items():
            added[topic] = added.get(topic, 0) + n
        for topic, n in step.removed.items():
            removed[topic] = removed.get(topic, 0) + n
        if on_batch is not None:
            on_batch(read, added, removed)
    dropped: dict[str, int] = {}
    if topics is None and since is None:
        configured = {t.name for t in config.topics}
        gone = sorted((store.topic_names() | set(store.topic_fingerprints())) - configured)
        dropped = store.drop_topic_matches(gone) if gone else {}
    recorded = since is None
    if recorded:
        current = fingerprints(config.topics)
        store.record_topic_fingerprints({t: current[t] for t in chosen}, now, forget=sorted(dropped))
    return RematchSummary(posts=read, added=added, removed=removed, dropped=dropped, recorded=recorded)


def topic_changes(config: Config, store: Store, now: datetime) -> TopicChanges:
    """How the configured topics differ from those the stored matches follow, logged for the operator.

    A store without fingerprints (new, or made by an older version) records the current ones and reports none."""
    stored = store.topic_fingerprints()
    current = fingerprints(config.topics)
    if not stored:
        store.record_topic_fingerprints(current, now)
        return TopicChanges()
    found = changes(stored, current)
    if found and store.post_count() == 0:  # nothing stored to re-match
        store.record_topic_fingerprints(current, now, forget=found.removed)
        return TopicChanges()
    if found:
        log.warning(
            "topics_changed %s: stored posts were matched with the previous topics; "
            "run `monitor rematch` to apply the new ones to them",
            found.describe(),
        )
    return found
