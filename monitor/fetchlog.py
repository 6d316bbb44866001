"""The fetch log's retention: every request has a row in `fetches`; those older than `health.fetch_log` go, in
short batches.

The daemon (and a cluster's scheduler) prunes every hour. At 1,000 sources polled a minute apart the log takes
1.4 million rows a day, and a store not pruned for a while (stopped, or run by an older version) has a backlog.
Each batch is one short write transaction through the index on `started_at` (it reads only the rows it deletes),
and the event loop serves the polls between batches, so no save waits for more than one batch.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Protocol

BATCH = 1_000  # rows a transaction (the first of a prune, reading 90-day-old pages, holds the lock longest)


class PrunesFetches(Protocol):
    def prune_fetches(self, before: datetime, limit: int) -> int: ...


async def prune(store: PrunesFetches, now: datetime, *, kept: timedelta, batch: int = BATCH) -> int:
    """Delete the fetch-log rows started before `now - kept`, `batch` at a time, letting other tasks run between
    batches; returns how many went. Ends: each full batch deletes rows that no new request can replace (a new
    request starts after `now - kept`)."""
    before = now - kept
    total = 0
    while True:
        deleted = store.prune_fetches(before, batch)
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(0)
