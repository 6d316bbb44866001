"""Campaign alerts: a near-duplicate cluster pushed by many voices within minutes of its first post.

Pure: does no I/O; takes a cluster's posts (as the store read them), the rule and `now`, returns decisions.

The rule (config `alerts.campaign`; README, "Campaign alerts"):
- A voice is a (source, author) pair; a post without an author is its source's voice. Authors are compared
  case-folded, with spaces collapsed and a leading `@` dropped (`@Ivan` and `ivan` are one voice). Sources
  configured with one `group` (a channel and its mirrors) are one source here: an outlet cross-posting its own
  post to its five regional channels is one voice, not five.
- Velocity: the cluster's posts are taken in published order from its first post; the cluster is a campaign
  at the post by which `min_voices` distinct voices have posted, if that post was published no later than
  `within` after the first. The window is anchored at the first post (the contract), so a story that
  trickles out over hours never qualifies, however many outlets reprint it in the end.
- Once per cluster (the outbox is asked which clusters already have a campaign alert).
- `topics_only`: only clusters with at least one post matching a topic.
- Fresh only: a crossing published more than `STALE_AFTER` before the evaluation is history (the first poll of
  a source that brings a week of posts raises no campaign alert about last Tuesday).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta

import msgspec

from monitor.config import Config
from monitor.types import AlertKind, CampaignDetails, ClusterPost, NewAlert

STALE_AFTER = timedelta(hours=2)  # a crossing older than this at evaluation time raises nothing


class CampaignRule(msgspec.Struct, frozen=True):
    """The campaign rule's parameters (config `alerts.campaign`)."""

    min_voices: int  # distinct voices that make a campaign
    within: timedelta  # ... published within this long of the cluster's first post
    topics_only: bool = True  # only clusters with a post matching a topic
    groups: Mapping[str, str] = msgspec.field(default_factory=dict)  # source -> its `group`, for those with one


class Crossing(msgspec.Struct, frozen=True):
    """The moment a cluster became a campaign."""

    cluster_id: int
    first: ClusterPost  # the cluster's first post (published order)
    crossing: ClusterPost  # the post by which `min_voices` voices had posted
    voices: tuple[ClusterPost, ...]  # each voice's first post, in order, ending with `crossing`


def rule_of(config: Config) -> CampaignRule | None:
    """The rule from the config, or None when campaign alerts are off (`alerts.campaign: null`)."""
    campaign = config.alerts.campaign
    if campaign is None:
        return None
    return CampaignRule(
        min_voices=campaign.min_voices,
        within=campaign.within,
        topics_only=campaign.topics_only,
        groups=source_groups(config),
    )


def source_groups(config: Config) -> dict[str, str]:
    """source -> its `group`, for the sources that have one."""
    return {s.name: s.group for s in config.sources if s.group is not None}


def voice_of(post: ClusterPost, groups: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(source, or its group; normalised author); the author part is empty for a post without an author."""
    author = " ".join((post.author or "").casefold().split()).lstrip("@")
    source = groups.get(post.source, post.source) if groups else post.source
    return (source, author)


def in_order(posts: Sequence[ClusterPost]) -> list[ClusterPost]:
    """Published order; ties by posts.id (the order the store first saw them)."""
    return sorted(posts, key=lambda p: (p.published_at, p.id))


def crossing_of(posts: Sequence[ClusterPost], rule: CampaignRule) -> Crossing | None:
    """Where the cluster made of `posts` reached `min_voices` voices within `within` of its first post, if it did."""
    if not posts:
        return None
    if rule.topics_only and not any(p.topics for p in posts):
        return None
    ordered = in_order(posts)
    first = ordered[0]
    voices: dict[tuple[str, str], ClusterPost] = {}
    for post in ordered:
        if post.published_at - first.published_at > rule.within:
            break
        voices.setdefault(voice_of(post, rule.groups), post)
        if len(voices) >= rule.min_voices:
            return Crossing(cluster_id=first.cluster_id, first=first, crossing=post, voices=tuple(voices.values()))
    return None


def campaign_topic(posts: Sequence[ClusterPost]) -> str | None:
    """The topic an alert is filed under: the first matching post's first topic (routing by `topics` uses it)."""
    for post in in_order(posts):
        if post.topics:
            return post.topics[0]
    return None


def candidates_since(now: datetime, rule: CampaignRule) -> datetime:
    """Clusters whose first post is older than this cannot cross freshly now: the store reads only younger ones."""
    return now - STALE_AFTER - rule.within


def campaign_alerts(
    clusters: Mapping[int, Sequence[ClusterPost]],
    alerted: Collection[int],
    rule: CampaignRule,
    now: datetime,
) -> list[NewAlert]:
    """One alert per cluster that crossed the rule freshly and has no campaign alert yet (`alerted`)."""
    found = []
    for cluster_id, posts in sorted(clusters.items()):
        if cluster_id in alerted:
            continue
        crossing = crossing_of(posts, rule)
        if crossing is None or now - crossing.crossing.published_at > STALE_AFTER:
            continue
        found.append(
            NewAlert(
                kind=AlertKind.CAMPAIGN,
                topic=campaign_topic(posts),
                cluster_id=cluster_id,
                window_start=crossing.first.published_at,
                window_end=crossing.crossing.published_at,
                count=len(crossing.voices),
                details=CampaignDetails(
                    first_post=crossing.first.id,
                    crossing_post=crossing.crossing.id,
                    voices=len(crossing.voices),
                    posts=tuple(p.id for p in crossing.voices),
                ),
            )
        )
    return found
