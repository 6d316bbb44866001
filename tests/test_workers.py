"""The worker process: the same posts as inline preparation, and a lost worker loses no poll."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from monitor.collectors.feedparse import parse_feed
from monitor.prepare import prepare, unique_items
from monitor.types import TopicSpec
from monitor.workers import MIN_BYTES, MIN_ITEMS, Workers
from tests.conftest import NOW

TOPICS = (TopicSpec("world", ("world", "мир*")), TopicSpec("war", ("war", "войн*")))


@pytest.fixture
def items(corpus: Path) -> list:  # type: ignore[type-arg]
    feed = parse_feed((corpus / "rss/en_nytimes-world.xml").read_bytes(), url="https://www.nytimes.com/")
    unique, _ = unique_items(feed.items)
    assert len(unique) >= MIN_ITEMS
    return unique


def test_the_worker_prepares_exactly_what_inline_preparation_does(items: list) -> None:  # type: ignore[type-arg]
    workers = Workers(TOPICS, processes=1)
    try:
        remote = asyncio.run(workers.prepare(items, "nyt", {}, NOW))
        assert workers._pool is not None  # the batch really went to the worker
    finally:
        workers.close()
    inline = prepare(items, "nyt", {}, NOW, workers.matcher)
    assert remote == inline and any(p.matches for p in remote)


def test_large_bodies_are_parsed_in_the_worker(corpus: Path) -> None:
    body = (corpus / "rss/en_dawn-pk_escaped-html.xml").read_bytes()
    assert len(body) >= MIN_BYTES
    workers = Workers(TOPICS, processes=1)
    try:
        parsed = asyncio.run(workers.parse(len(body), parse_feed, body, url="https://www.dawn.com/"))
        assert workers._pool is not None
    finally:
        workers.close()
    assert parsed == parse_feed(body, url="https://www.dawn.com/")


def test_a_killed_worker_is_replaced_and_the_job_runs_inline(
    items: list,  # type: ignore[type-arg]
    caplog: pytest.LogCaptureFixture,
) -> None:
    workers = Workers(TOPICS, processes=1)

    async def go() -> tuple[list, list]:  # type: ignore[type-arg]
        first = await workers.prepare(items, "nyt", {}, NOW)
        pool = workers._pool
        assert pool is not None
        for pid in list(pool._processes):
            os.kill(pid, signal.SIGKILL)
        for _ in range(300):  # until the pool has noticed (at most 30 s): the next job meets a broken pool
            if pool._broken:
                break
            await asyncio.sleep(0.1)
        assert pool._broken, "the pool never noticed its worker died"
        second = await workers.prepare(items, "nyt", {}, NOW)
        return first, second

    try:
        with caplog.at_level("WARNING"):
            first, second = asyncio.run(go())
    finally:
        workers.close()
    assert first == second
    assert "worker_lost" in caplog.text


def test_no_workers_means_inline(items: list) -> None:  # type: ignore[type-arg]
    workers = Workers(TOPICS, processes=0)
    result = asyncio.run(workers.prepare(items, "nyt", {}, NOW))
    assert workers._pool is None and result == prepare(items, "nyt", {}, NOW, workers.matcher)


def test_known_unchanged_items_are_skipped_and_changed_ones_keep_first_seen(items: list) -> None:  # type: ignore[type-arg]
    workers = Workers(TOPICS, processes=0)
    first = prepare(items, "nyt", {}, NOW, workers.matcher)
    earlier = NOW.replace(year=2025)
    known = {p.post.key: (earlier, p.post.content_hash) for p in first}
    assert prepare(items, "nyt", known, NOW, workers.matcher) == []
    changed_key = first[0].post.key
    known[changed_key] = (earlier, "0" * 32)
    again = prepare(items, "nyt", known, NOW, workers.matcher)
    assert [p.post.key for p in again] == [changed_key] and again[0].post.first_seen_at == earlier
