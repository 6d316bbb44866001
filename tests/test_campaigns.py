"""Campaign alerts: the pure rule (monitor.campaigns), the store's cluster queries, the outbox and the message."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import campaign_message, dedupe
from monitor.campaigns import STALE_AFTER, CampaignRule, campaign_alerts, crossing_of, voice_of
from monitor.config import Config
from monitor.normalize import content_hash
from monitor.outbox import Outbox
from monitor.store import Store
from monitor.types import (
    AlertKind,
    AlertRow,
    AlertStatus,
    CampaignDetails,
    ClusterPost,
    Match,
    MatchedPost,
    NewAlert,
    Post,
    SourceState,
)
from tests.conftest import NOW, HookServer, SmtpServer, body_of, make_config

RULE = CampaignRule(min_voices=3, within=timedelta(minutes=30), topics_only=True)
TEXT = (
    "Citizens of the region, the People's Council declares that the separatist referendum will be held on "
    "Sunday and every patriot must come to the square at noon to vote."
)


def member(
    index: int,
    minutes: float,
    source: str,
    author: str | None = None,
    *,
    topics: tuple[str, ...] = ("separatism",),
    hash_: str = "h",
) -> ClusterPost:
    when = NOW - timedelta(minutes=60) + timedelta(minutes=minutes)
    return ClusterPost(
        id=index,
        cluster_id=7,
        source=source,
        author=author,
        published_at=when,
        first_seen_at=when,
        url=f"https://example.org/{index}",
        title="",
        text=TEXT,
        content_hash=hash_,
        topics=topics,
    )


# ------------------------------------------------------------------------------------------ the pure rule
def test_the_third_voice_within_the_window_is_the_crossing() -> None:
    posts = [member(1, 0, "tg-a"), member(2, 4, "tg-b"), member(3, 9, "vk", "Ivan"), member(4, 12, "tg-c")]
    crossing = crossing_of(posts, RULE)
    assert crossing is not None
    assert (crossing.first.id, crossing.crossing.id, [p.id for p in crossing.voices]) == (1, 3, [1, 2, 3])


def test_voices_are_source_and_author_and_a_post_without_author_is_its_source() -> None:
    # one source, three accounts: three voices (comments under one article, a VK wall)
    assert crossing_of([member(1, 0, "vk", "a"), member(2, 1, "vk", "b"), member(3, 2, "vk", "c")], RULE)
    # the same account three times, spelled differently: one voice
    same = [member(1, 0, "vk", "Ivan"), member(2, 1, "vk", "@ivan"), member(3, 2, "vk", " IVAN ")]
    assert len({voice_of(p) for p in same}) == 1 and crossing_of(same, RULE) is None
    # no author: the source is the voice, so a channel reposting itself is one voice
    assert crossing_of([member(1, 0, "tg-a"), member(2, 1, "tg-a"), member(3, 2, "tg-b")], RULE) is None


def test_sources_of_one_group_are_one_voice() -> None:
    """An outlet cross-posting its own post to its regional channels within a minute is one voice however many
    channels it has; another outlet, or a named account on one of its walls, is a voice of its own."""
    network = [member(1, 0, "outlet"), member(2, 0.2, "outlet-west"), member(3, 0.4, "outlet-east")]
    assert crossing_of(network, RULE) is not None  # three sources, three voices
    grouped = CampaignRule(
        min_voices=3,
        within=timedelta(minutes=30),
        groups={"outlet": "outlet", "outlet-west": "outlet", "outlet-east": "outlet"},
    )
    assert crossing_of(network, grouped) is None
    assert len({voice_of(p, grouped.groups) for p in network}) == 1
    # a group may be named after its main source, which then needs no group of its own
    by_main = CampaignRule(min_voices=3, within=timedelta(minutes=30), groups={"outlet-west": "outlet"})
    assert len({voice_of(p, by_main.groups) for p in network}) == 2  # outlet-east is still a voice of its own
    assert crossing_of(network, by_main) is None
    # other voices still count: the network and two others make three
    crossing = crossing_of([*network, member(4, 2, "tg-b"), member(5, 3, "outlet-east", "Ivan")], grouped)
    assert crossing is not None and [p.id for p in crossing.voices] == [1, 4, 5]


def test_the_timeline_marks_a_grouped_source_as_the_same_voice_again() -> None:
    posts = [member(1, 0, "outlet"), member(2, 0.5, "outlet-mirror"), member(3, 1, "b"), member(4, 2, "c")]
    rule = CampaignRule(min_voices=3, within=timedelta(minutes=30), groups={"outlet-mirror": "outlet"})
    (new,) = campaign_alerts({7: posts}, set(), rule, NOW)
    assert new.count == 3 and new.details is not None
    report = campaign_message.campaign_report(
        _row(new), posts, zone=ZoneInfo("UTC"), zone_name="UTC", groups=rule.groups
    )
    assert [(e.voice, e.new_voice) for e in report.entries] == [
        ("outlet", True),
        ("outlet-mirror", False),
        ("b", True),
        ("c", True),
    ]
    assert report.total_voices == 3


def test_voices_later_than_within_of_the_first_post_do_not_count() -> None:
    posts = [member(1, 0, "a"), member(2, 20, "b"), member(3, 31, "c"), member(4, 32, "d")]
    assert crossing_of(posts, RULE) is None
    assert crossing_of([*posts[:2], member(3, 30, "c")], RULE) is not None  # `within` is inclusive


def test_topics_only_needs_one_matching_post_anywhere_in_the_cluster() -> None:
    posts = [member(1, 0, "a", topics=()), member(2, 1, "b", topics=()), member(3, 2, "c", topics=())]
    assert crossing_of(posts, RULE) is None
    assert crossing_of(posts, CampaignRule(3, timedelta(minutes=30), topics_only=False)) is not None
    assert crossing_of([*posts[:2], member(3, 2, "c")], RULE) is not None


def test_one_alert_per_cluster_and_only_while_fresh() -> None:
    posts = [member(1, 0, "a"), member(2, 1, "b"), member(3, 2, "c")]
    (alert,) = campaign_alerts({7: posts}, set(), RULE, NOW)
    assert alert.kind is AlertKind.CAMPAIGN and alert.cluster_id == 7 and alert.count == 3
    assert alert.topic == "separatism" and alert.window_start == posts[0].published_at
    assert alert.window_end == posts[2].published_at
    assert alert.details == CampaignDetails(first_post=1, crossing_post=3, voices=3, posts=(1, 2, 3))
    assert campaign_alerts({7: posts}, {7}, RULE, NOW) == []
    late = posts[2].published_at + STALE_AFTER + timedelta(seconds=1)
    assert campaign_alerts({7: posts}, set(), RULE, late) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 90), st.sampled_from("abcde")), min_size=1, max_size=12), st.randoms())
def test_the_crossing_does_not_depend_on_the_order_the_store_returns(
    shape: list[tuple[int, str]], shuffle: random.Random
) -> None:
    posts = [member(i, minutes, source) for i, (minutes, source) in enumerate(shape)]
    mixed = list(posts)
    shuffle.shuffle(mixed)
    assert crossing_of(posts, RULE) == crossing_of(mixed, RULE)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.sampled_from("abcdef")), min_size=1, max_size=10),
    st.lists(st.tuples(st.integers(1, 120), st.sampled_from("abcdefgh")), max_size=5),
    st.integers(2, 5),
)
def test_later_posts_never_move_a_crossing_and_more_voices_never_cross_earlier(
    shape: list[tuple[int, str]], later: list[tuple[int, str]], voices: int
) -> None:
    rule = CampaignRule(min_voices=voices, within=timedelta(minutes=30), topics_only=True)
    posts = [member(i, minutes, source) for i, (minutes, source) in enumerate(shape)]
    crossing = crossing_of(posts, rule)
    if crossing is not None:  # what comes after the crossing post cannot undo or move it (once, causal)
        end = crossing.crossing.published_at - posts[0].published_at + timedelta(minutes=60)
        after = [
            member(100 + i, end.total_seconds() / 60 + minutes, source) for i, (minutes, source) in enumerate(later)
        ]
        assert crossing_of([*posts, *after], rule) == crossing
    stricter = crossing_of(posts, CampaignRule(min_voices=voices + 1, within=rule.within))
    if stricter is not None:
        assert crossing is not None and stricter.crossing.published_at >= crossing.crossing.published_at


# ------------------------------------------------------------------------------------------ store and outbox
THREE_IN_30M = "\n  campaign: {min_voices: 3, within: 30m}"


def config(tmp_path: Path, smtp_port: int | None = None, campaign: str = THREE_IN_30M, extra: str = "") -> Config:
    email = (
        f"""
  email: {{host: 127.0.0.1, port: {smtp_port}, tls: none, sender: m@example.org, to: [a@example.org], timeout: 5s}}"""
        if smtp_port
        else ""
    )
    return make_config(
        tmp_path,
        f"""
store: store.db
topics:
  separatism: [separatist*]
sources:
  - {{name: tg-a, type: feed, url: "http://127.0.0.1:9/a"}}
alerts:
  min_count: 50                  # no spike alerts here: only campaigns
  timezone: UTC{campaign}{email}{extra}
""",
    )


def save(
    store: Store, source: str, minutes: float, *, author: str | None = None, text: str = TEXT, key: str = ""
) -> None:
    when = NOW - timedelta(minutes=60) + timedelta(minutes=minutes)
    post = Post(
        source=source,
        key=key or f"{source}-{minutes}-{author}",
        url=f"https://{source}.example.org/{minutes:g}",
        title="",
        text=text,
        author=author,
        published_at=when,
        first_seen_at=when,
        content_hash=content_hash("", text),
    )
    matches = (Match("separatism", "separatist*"),) if "separatist" in text else ()
    store.save_poll(
        state=SourceState(name=source),
        source_type="telegram",
        source_url=None,
        posts=[MatchedPost(post, matches, dedupe.signature("", text))],
        fetches=(),
        now=when,
    )


def test_fresh_clusters_reads_clusters_with_enough_voices_only(any_store: Store) -> None:
    store = any_store  # both backends
    save(store, "tg-a", 0)
    save(store, "tg-b", 2)
    assert store.fresh_clusters(NOW - timedelta(hours=3), min_voices=3, topics_only=True) == []
    save(store, "vk", 3, author="Ivan", text=TEXT.replace("noon", "midday"))  # a near-duplicate joins
    posts = store.fresh_clusters(NOW - timedelta(hours=3), min_voices=3, topics_only=True)
    assert [(p.source, p.author, p.topics) for p in posts] == [
        ("tg-a", None, ("separatism",)),
        ("tg-b", None, ("separatism",)),
        ("vk", "Ivan", ("separatism",)),
    ]
    assert len({p.cluster_id for p in posts}) == 1 and len({p.content_hash for p in posts}) == 2
    # a cluster whose first post is older than `since` is not fresh
    assert store.fresh_clusters(NOW - timedelta(minutes=59), min_voices=3, topics_only=True) == []
    assert store.cluster_posts(posts[0].cluster_id) == posts


def test_topics_only_in_the_store_query(any_store: Store) -> None:
    store = any_store
    plain = "A recipe for bread with flour water salt yeast and patience, baked for forty minutes in a hot oven."
    for index, source in enumerate(["a", "b", "c"]):
        save(store, source, index, text=plain)
    since = NOW - timedelta(hours=3)
    assert store.fresh_clusters(since, min_voices=3, topics_only=True) == []
    assert len(store.fresh_clusters(since, min_voices=3, topics_only=False)) == 3


def test_the_outbox_raises_one_campaign_alert_and_mails_the_timeline(
    tmp_path: Path, any_store: Store, smtp: SmtpServer
) -> None:
    store = any_store
    save(store, "tg-a", 0)
    save(store, "tg-b", 1.5)
    outbox = Outbox(config(tmp_path, smtp.port), store)
    assert [a.kind for a in outbox.evaluate(NOW - timedelta(minutes=58))] == []
    save(store, "vk", 4, author="Ivan <b>", text=TEXT.replace("noon", "midday"))
    save(store, "tg-c", 6)
    (alert,) = outbox.evaluate(NOW - timedelta(minutes=54))
    assert alert.kind is AlertKind.CAMPAIGN and alert.count == 3 and alert.topic == "separatism"
    assert outbox.evaluate(NOW) == []  # once per cluster
    assert [d.status for d in outbox.deliver(NOW)] == ["sent"]
    message = smtp.sink.parsed()[0]
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "[monitor] separatism: campaign, same text from 3 voices in 4 min"
    text = body_of(message, "plain")
    assert text.count("People's Council declares") == 1  # the text once
    timeline = text.split("TIMELINE", 1)[1]
    order = [timeline.index(s) for s in ("first    tg-a", "followed tg-b", "followed vk / Ivan <b>", "followed tg-c")]
    assert order == sorted(order)
    assert "+1m30s" in timeline and "+4m00s" in timeline and "https://vk.example.org/4" in timeline
    assert 'wording changed: "noon" -> "midday"' in timeline
    assert timeline.index("threshold reached here") < timeline.index("tg-c")
    assert "Wording: changed along the way in 1 of 4 posts" in text
    html = body_of(message, "html")
    assert "Ivan &lt;b&gt;" in html and "Ivan <b>" not in html


def test_campaign_null_turns_it_off(tmp_path: Path, store: Store) -> None:
    for index, source in enumerate(["a", "b", "c", "d"]):
        save(store, source, index)
    assert Outbox(config(tmp_path, campaign="\n  campaign: null"), store).evaluate(NOW - timedelta(minutes=50)) == []
    custom = "\n  campaign: {min_voices: 5, within: 10m}"
    assert Outbox(config(tmp_path, campaign=custom), store).evaluate(NOW - timedelta(minutes=50)) == []
    raised = Outbox(config(tmp_path, campaign=""), store).evaluate(NOW - timedelta(minutes=50))
    assert [(a.kind, a.count) for a in raised] == [(AlertKind.CAMPAIGN, 4)]  # the defaults: 4 voices within 10m


def _row(new: NewAlert) -> AlertRow:
    """The outbox's row for a campaign alert just raised on cluster 7."""
    return AlertRow(
        id=1,
        kind=new.kind,
        topic=new.topic,
        source=None,
        window_start=new.window_start,
        window_end=new.window_end,
        count=new.count,
        expected=None,
        score=None,
        created_at=NOW,
        status=AlertStatus.PENDING,
        attempts=0,
        sent_at=None,
        error=None,
        next_attempt_at=None,
        message_id=None,
        details=new.details,
        cluster_id=7,
    )


def test_the_message_says_when_the_wording_never_changed() -> None:
    posts = [member(1, 0, "a"), member(2, 1, "b"), member(3, 2, "c")]
    (new,) = campaign_alerts({7: posts}, set(), RULE, NOW)
    report = campaign_message.campaign_report(_row(new), posts, zone=ZoneInfo("Asia/Almaty"), zone_name="Asia/Almaty")
    text = campaign_message.campaign_text(report)
    assert "carries the same text" in text and "wording changed" not in text
    assert "UTC+05" in text and datetime.fromisoformat("2026-03-01T16:00:00+05:00").strftime("%H:%M") in text


def test_a_campaign_goes_to_a_notify_channel_that_takes_campaigns_with_its_link(
    tmp_path: Path, store: Store, hook: HookServer, monkeypatch: Any
) -> None:
    monkeypatch.setenv("HOOK", hook.url("json", "campaigns"))
    monkeypatch.setenv("OTHER", hook.url("json", "spikes-only"))
    extra = """
  link_base: http://monitor.internal:8001
  notify:
    - {name: desk, url_env: HOOK, kinds: [campaign]}
    - {name: spikes, url_env: OTHER, kinds: [spike]}"""
    for index, source in enumerate(["tg-a", "tg-b", "tg-c", "tg-d", "tg-e", "tg-f"]):
        save(store, source, index * 2)
    outbox = Outbox(config(tmp_path, extra=extra), store)
    (alert,) = outbox.evaluate(NOW - timedelta(minutes=48))
    assert [d.channel for d in store.deliveries(alert.id)] == ["desk"]  # routed by kind
    assert [d.status for d in outbox.deliver(NOW - timedelta(minutes=48))] == ["sent"]
    (message,) = hook.messages
    assert message["path"] == "/campaigns"
    assert message["title"] == "[monitor] separatism: campaign, same text from 3 voices in 4 min"
    lines = message["message"].splitlines()
    assert lines[0].startswith("3 voices posted the same text within 4 min") and "6 posts from 6 voices" in lines[0]
    assert lines[1] == f'"{TEXT}"'  # the text once (cut at 200 characters when longer)
    assert lines[2:4] == [
        "+0s first tg-a https://tg-a.example.org/0",
        "+2m00s followed tg-b https://tg-b.example.org/2",
    ]
    assert lines[-2] == "... and 1 more posts"
    cluster = alert.cluster_id
    assert lines[-1] == (
        f"Campaign alert #{alert.id}, all its posts: "
        f"http://monitor.internal:8001/store/posts?cluster_id={cluster}&_sort=published_at"
    )
