"""The fetch log's retention (monitor/fetchlog.py): old rows go in short batches, and other tasks run between them."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from monitor import fetchlog
from monitor.config import HealthConfig
from monitor.daemon import Daemon
from monitor.store import Store
from monitor.store.sqlite import SqliteStore
from monitor.types import FetchRecord, FetchStatus, SourceState
from tests.conftest import NOW, make_config

KEPT = HealthConfig().fetch_log  # the default, 90 days


def log_fetches(store: Store, *ages: timedelta) -> None:
    store.record_failure(
        state=SourceState("feed-a"),
        source_type="feed",
        source_url="https://example.org/rss",
        fetches=[
            FetchRecord("feed-a", "https://example.org/rss", NOW - age, FetchStatus.NOT_MODIFIED, 304) for age in ages
        ],
        now=NOW,
    )


def test_old_rows_go_a_batch_at_a_time_and_other_tasks_run_between_batches(store: SqliteStore) -> None:
    log_fetches(store, *[KEPT + timedelta(hours=h) for h in range(1, 13)], timedelta(minutes=1))
    rows_seen: list[int] = []

    async def another_task() -> None:  # what a poll waiting on the event loop would see
        for _ in range(5):
            rows_seen.append(store.counts()["fetches"])
            await asyncio.sleep(0)

    async def both() -> int:
        pruned, _ = await asyncio.gather(fetchlog.prune(store, NOW, kept=KEPT, batch=5), another_task())
        return pruned

    assert asyncio.run(both()) == 12
    assert rows_seen[:2] == [8, 3]  # 13 rows, then 5 gone, then 10: the task ran between the batches
    assert store.counts()["fetches"] == 1  # the recent row stays


def test_a_log_with_nothing_old_is_left_alone_in_one_statement(store: SqliteStore) -> None:
    log_fetches(store, timedelta(days=1), timedelta(days=89))
    assert asyncio.run(fetchlog.prune(store, NOW, kept=KEPT)) == 0
    assert store.counts()["fetches"] == 2


def test_the_daemons_heartbeat_prunes_to_the_configured_retention(
    tmp_path: Path, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path, "topics: {t: [x]}\nsources: []\nhealth: {fetch_log: 7d}\n")
    log_fetches(store, timedelta(days=8), timedelta(days=30), timedelta(days=6))
    daemon = Daemon(config, store, clock=lambda: NOW)
    with caplog.at_level(logging.INFO, logger="monitor.daemon"):
        asyncio.run(daemon._heartbeat())  # the hourly job
    daemon.workers.close()
    assert store.counts()["fetches"] == 1  # the 6-day-old row stays
    assert "posts=0 fetch_log_pruned=2" in caplog.text
