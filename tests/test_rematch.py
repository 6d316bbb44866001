"""`monitor rematch`: a new topic finds its history, a removed term's matches go, batches, the freshness rule,
and the daemon's notice of a changed topic set (real store, real processes)."""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path

import pytest

from monitor import dedupe
from monitor.config import Config
from monitor.normalize import content_hash
from monitor.outbox import Outbox
from monitor.rematch import rematch, topic_changes
from monitor.store import Store, StoreURL, open_store
from monitor.store.sqlite import open_sqlite
from monitor.types import AlertKind, MatchedPost, Post, SourceState
from tests.conftest import NOW, RawServer, make_config, respond, run_monitor, sql, start_daemon, wait_for, write_config
from tests.test_daemon import FEED

OLD_TOPICS = """
topics:
  separatism: [separatist*, secession]
"""
NEW_TOPICS = """
topics:
  separatism: [separatist*]
  council: ["People's Council"]
"""


def config_with(tmp_path: Path, topics: str) -> Config:
    return make_config(tmp_path, "store: store.db\n" + topics + "sources: []\n")


def store_posts(store: Store, config: Config, texts: list[str], *, hours_ago: float = 1.0) -> None:
    """Posts stored as a poll stores them: matched with `config`'s topics."""
    from monitor.match import Matcher

    matcher = Matcher(config.topics)
    posts = []
    for index, text in enumerate(texts):
        when = NOW - timedelta(hours=hours_ago, minutes=index)
        post = Post(
            source="news",
            key=f"k{hours_ago}-{index}",
            url=f"https://example.org/{hours_ago}/{index}",
            title=f"Story {index}",
            text=text,
            author=None,
            published_at=when,
            first_seen_at=when,
            content_hash=content_hash("t", text + str(index)),
        )
        posts.append(MatchedPost(post, matcher.match(post.title, post.text), dedupe.signature(post.title, text)))
    store.save_poll(
        state=SourceState(name="news"), source_type="feed", source_url=None, posts=posts, fetches=(), now=NOW
    )


def matches(store: Store) -> set[tuple[int, str]]:
    return {(int(post_id), topic) for post_id, topic in sql(store, "SELECT post_id, topic FROM matches")}


TEXTS = [
    "A separatist rally in the square.",
    "The People's Council met on Monday.",
    "Talk of secession grows.",
    "Weather: rain all week.",
    "Separatists and the People’s Council argue.",
]


def test_a_new_topic_finds_its_history_and_a_removed_terms_matches_go(tmp_path: Path, backend: Path | StoreURL) -> None:
    old, new = config_with(tmp_path, OLD_TOPICS), config_with(tmp_path, NEW_TOPICS)
    with open_store(backend) as store:
        store_posts(store, old, TEXTS)
        assert {t for _, t in matches(store)} == {"separatism"}
        assert len(matches(store)) == 3  # separatist, secession, separatists
        summary = rematch(new, store, now=NOW)
        assert summary.posts == 5
        assert summary.added == {"council": 2}
        assert summary.removed == {"separatism": 1}  # "secession" is no longer a term
        found = {
            (topic, sql(store, "SELECT text FROM posts WHERE id = ?", (pid,))[0][0]) for pid, topic in matches(store)
        }
        assert found == {
            ("separatism", TEXTS[0]),
            ("separatism", TEXTS[4]),
            ("council", TEXTS[1]),
            ("council", TEXTS[4]),
        }
        assert store.match_counts() == {"separatism": 2, "council": 2}  # what the metrics gauge reads
        again = rematch(new, store, now=NOW)  # nothing left to change
        assert (again.added, again.removed) == ({}, {})


def test_batches_give_the_same_matches_and_report_progress(tmp_path: Path) -> None:
    old, new = config_with(tmp_path, OLD_TOPICS), config_with(tmp_path, NEW_TOPICS)
    with open_sqlite(tmp_path / "one.db") as one, open_sqlite(tmp_path / "many.db") as many:
        for store in (one, many):
            store_posts(store, old, TEXTS * 3)
        rematch(new, one, now=NOW)
        seen: list[int] = []
        rematch(new, many, now=NOW, batch=4, on_batch=lambda read, added, removed: seen.append(read))
        assert seen == [4, 8, 12, 15]
        assert matches(one) == matches(many)


def test_a_topic_removed_from_the_config_loses_its_matches_only_in_a_full_rematch(
    tmp_path: Path, backend: Path | StoreURL
) -> None:
    both = config_with(tmp_path, NEW_TOPICS)
    only_council = config_with(tmp_path, 'topics:\n  council: ["People\'s Council"]\n')
    with open_store(backend) as store:
        store_posts(store, both, TEXTS)
        rematch(only_council, store, now=NOW, topics=["council"])
        assert "separatism" in {t for _, t in matches(store)}  # --topic leaves other topics alone
        summary = rematch(only_council, store, now=NOW)
        assert summary.dropped == {"separatism": 2}
        assert {t for _, t in matches(store)} == {"council"}
        assert set(store.topic_fingerprints()) == {"council"}


def test_since_rematches_only_recent_posts_and_records_no_fingerprint(tmp_path: Path, backend: Path | StoreURL) -> None:
    old, new = config_with(tmp_path, OLD_TOPICS), config_with(tmp_path, NEW_TOPICS)
    with open_store(backend) as store:
        topic_changes(old, store, NOW)  # records the old topics' fingerprints
        store_posts(store, old, TEXTS[:2], hours_ago=48)
        store_posts(store, old, TEXTS[:2], hours_ago=1)
        summary = rematch(new, store, now=NOW, since=NOW - timedelta(hours=24))
        assert summary.added == {"council": 1} and not summary.recorded
        assert topic_changes(new, store, NOW).added == ("council",)  # the daemon still says so


def test_a_rematch_never_raises_alerts_about_old_windows(tmp_path: Path, backend: Path | StoreURL) -> None:
    """History gains a new topic's matches, with a burst three days ago: nothing alerts now, though the detector
    run at the burst's own time would have alerted (so the data does hold a spike)."""
    old = config_with(tmp_path, "topics:\n  weather: [rain]\n")
    body = 'topics:\n  weather: [rain]\n  council: ["People\'s Council"]\nalerts: {min_count: 3}\n'
    new = make_config(tmp_path, "store: store.db\n" + body + "sources: []\n")
    with open_store(backend) as store:
        for day in range(1, 8):  # a week of ordinary news, one council story a day
            store_posts(store, old, ["The People's Council met."], hours_ago=24 * day + 5)
        store_posts(store, old, [f"People's Council session {i}." for i in range(12)], hours_ago=72)
        assert store.topic_count("council", NOW - timedelta(days=8), NOW) == (0, 0)
        rematch(new, store, now=NOW)
        assert store.topic_count("council", NOW - timedelta(days=8), NOW)[0] == 19
        assert Outbox(new, store).evaluate(NOW) == []
        burst_end = NOW - timedelta(hours=72) + timedelta(minutes=1)
        assert [a.kind for a in Outbox(new, store).evaluate(burst_end)] == [AlertKind.SPIKE]


@pytest.mark.slow
def test_the_daemon_says_the_topics_changed_and_rematch_runs_beside_it(
    tmp_path: Path, backend: Path | StoreURL
) -> None:
    old = write_config(tmp_path, f'store: "{backend}"\n' + OLD_TOPICS + "sources: []\n")
    with open_store(backend) as store:
        store_posts(store, config_with(tmp_path, OLD_TOPICS), TEXTS)
        topic_changes(config_with(tmp_path, OLD_TOPICS), store, NOW)
    new = write_config(tmp_path, f'store: "{backend}"\n' + NEW_TOPICS + "sources: []\n")
    assert old == new
    log = tmp_path / "run.log"
    proc = start_daemon(new, log)
    try:
        wait_for(lambda: "daemon_started" in log.read_text(), "the daemon to start")
        text = log.read_text()
        assert "topics_changed added=council changed=separatism" in text and "monitor rematch" in text
        done = run_monitor(new, "rematch")  # while the daemon holds the store
        assert done.returncode == 0, done.stderr
        assert "council: +2 matches, -0 matches" in done.stdout
        assert "separatism: +0 matches, -1 matches" in done.stdout
        assert "5 posts re-matched for 2 topic(s)" in done.stdout
        assert "rematch: 5 posts read (100% of the store)" in done.stderr
        assert "reload it (kill -HUP" in done.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    searched = run_monitor(new, "search", "--topic", "council", "--format", "json")
    assert searched.returncode == 0 and searched.stdout.count('"id"') == 2
    second = start_daemon(new, tmp_path / "second.log")
    try:
        wait_for(lambda: "daemon_started" in (tmp_path / "second.log").read_text(), "the daemon to start again")
        assert "topics_changed" not in (tmp_path / "second.log").read_text()
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(15) == 0


def test_a_store_made_by_poll_remembers_its_topics_and_the_next_poll_names_the_change(
    tmp_path: Path, raw_server: RawServer
) -> None:
    raw_server.routes["/feed"] = respond(200, FEED, {"Content-Type": "application/rss+xml"})
    source = f'sources:\n  - {{name: news, type: feed, url: "{raw_server.url("/feed")}", robots: false}}\n'
    config = write_config(tmp_path, "store: store.db\n" + OLD_TOPICS + source)
    first = run_monitor(config, "poll")
    assert first.returncode == 0 and "topics_changed" not in first.stderr
    write_config(tmp_path, "store: store.db\n" + NEW_TOPICS + source)
    second = run_monitor(config, "poll")
    assert second.returncode == 0
    assert "topics_changed added=council changed=separatism" in second.stderr
    assert "run `monitor rematch`" in second.stderr


def test_rematch_refuses_an_unknown_topic(tmp_path: Path) -> None:
    config = write_config(tmp_path, "store: store.db\n" + NEW_TOPICS + "sources: []\n")
    done = run_monitor(config, "rematch", "--topic", "nope")
    assert done.returncode == 2
    assert "no topic named nope in the config (configured: separatism, council)" in done.stderr
