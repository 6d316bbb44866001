"""Sources and the fetch log: each source's state between polls, its runs of failures, the request log."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from monitor.store.api import FailureRun, SourceRow
from monitor.store.postgres.base import StoreBase
from monitor.store.postgres.errors import wrapped
from monitor.store.rows import dt, robots_of, source_row_of, state_of, ts
from monitor.types import FetchRecord, RobotsRecord, SourceState

# The oldest rows first, through fetches_started_at: a batch reads only the rows it deletes, however long the log.
_PRUNE_FETCHES = (
    "DELETE FROM fetches WHERE id IN (SELECT id FROM fetches WHERE started_at < %s ORDER BY started_at LIMIT %s)"
)


class SourcesMixin(StoreBase):
    @wrapped("read the robots.txt cache")
    def robots_since(self, since: datetime) -> list[RobotsRecord]:
        with self.read("read the robots.txt cache") as conn:
            rows = self.all(conn, "SELECT origin, body, fetched_at FROM robots WHERE fetched_at >= %s", (ts(since),))
        return [record for record in map(robots_of, rows) if record is not None]

    def save_robots(self, records: Sequence[RobotsRecord]) -> None:
        if not records:
            return
        with self.transaction("keep robots.txt") as conn, conn.cursor() as cursor:
            cursor.executemany(
                """INSERT INTO robots (origin, body, fetched_at) VALUES (%s, %s, %s)
                   ON CONFLICT (origin) DO UPDATE SET body = excluded.body, fetched_at = excluded.fetched_at
                   WHERE excluded.fetched_at > robots.fetched_at""",  # two processes: the newer read stays
                [(r.origin, r.body, ts(r.fetched_at)) for r in records],
            )

    @wrapped("read the source's state")
    def source_state(self, name: str) -> SourceState:
        with self.read("read the source's state") as conn:
            return state_of(name, self.one(conn, "SELECT * FROM sources WHERE name = %s", (name,)))

    @wrapped("read the sources")
    def source_states(self) -> list[SourceState]:
        with self.read("read the sources") as conn:
            return [state_of(row["name"], row) for row in self.all(conn, "SELECT * FROM sources ORDER BY name")]

    @wrapped("read the sources")
    def source_types(self) -> dict[str, str]:
        with self.read("read the sources") as conn:
            return {row["name"]: row["type"] or "" for row in self.all(conn, "SELECT name, type FROM sources")}

    @wrapped("read the sources")
    def failure_runs(self) -> dict[str, FailureRun]:
        with self.read("read the sources") as conn:
            rows = self.all(conn, "SELECT name, failures, last_run_failures, failing_since FROM sources")
        return {
            r["name"]: FailureRun(failures=r["failures"] or r["last_run_failures"] or 0, since=dt(r["failing_since"]))
            for r in rows
        }

    @wrapped("read the sources")
    def source_rows(self) -> list[SourceRow]:
        with self.read("read the sources") as conn:
            rows = self.all(
                conn,
                """SELECT s.*,
                          (SELECT count(*) FROM posts p WHERE p.source = s.name) AS posts,
                          (SELECT max(f.started_at) FROM fetches f WHERE f.source = s.name) AS last_fetch_at
                   FROM sources s ORDER BY s.name""",
            )
        return [source_row_of(r) for r in rows]

    def prune_fetches(self, before: datetime, limit: int) -> int:
        with self.transaction("prune the fetch log") as conn:
            return conn.execute(_PRUNE_FETCHES, (ts(before), limit)).rowcount

    def record_failure(
        self,
        *,
        state: SourceState,
        source_type: str,
        source_url: str | None,
        fetches: Sequence[FetchRecord],
        now: datetime,
    ) -> None:
        with self.transaction(f"record the poll of {state.name}") as conn:
            write_fetches(conn, fetches)
            write_source(conn, state, source_type, source_url, now)


def write_fetches(conn: psycopg.Connection[Any], fetches: Sequence[FetchRecord]) -> None:
    if not fetches:
        return
    with conn.cursor() as cursor:
        cursor.executemany(
            """INSERT INTO fetches (source, url, started_at, status, http_status, bytes, duration_ms,
                                    items, new_posts, error, warning)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            [
                (
                    f.source,
                    f.url,
                    ts(f.started_at),
                    f.status.value,
                    f.http_status,
                    f.bytes,
                    f.duration_ms,
                    f.items,
                    f.new_posts,
                    f.error,
                    f.warning,
                )
                for f in fetches
            ],
        )


def write_source(conn: psycopg.Connection[Any], state: SourceState, kind: str, url: str | None, now: datetime) -> None:
    """Upsert the source row, keeping its run of failures as the SQLite store does (sqlite/sources.py)."""
    conn.execute(
        """INSERT INTO sources (name, type, url, etag, last_modified, last_ok_at, last_error, last_error_at,
                                failures, next_poll_at, retry_at, cursor, last_post_at, health, warnings,
                                updated_at, failing_since, last_run_failures)
           VALUES (%(name)s, %(type)s, %(url)s, %(etag)s, %(last_modified)s, %(last_ok_at)s, %(last_error)s,
                   %(last_error_at)s, %(failures)s, %(next_poll_at)s, %(retry_at)s, %(cursor)s, %(last_post_at)s,
                   %(health)s, %(warnings)s, %(now)s,
                   CASE WHEN %(failures)s > 0 THEN %(last_error_at)s END, 0)
           ON CONFLICT (name) DO UPDATE SET
             type = excluded.type, url = excluded.url, etag = excluded.etag,
             last_modified = excluded.last_modified, last_ok_at = excluded.last_ok_at,
             last_error = excluded.last_error, last_error_at = excluded.last_error_at,
             failures = excluded.failures, next_poll_at = excluded.next_poll_at,
             retry_at = excluded.retry_at, cursor = excluded.cursor,
             last_post_at = excluded.last_post_at, health = excluded.health, warnings = excluded.warnings,
             updated_at = excluded.updated_at,
             failing_since = CASE WHEN excluded.failures > 0 AND sources.failures = 0
                                  THEN coalesce(excluded.last_error_at, excluded.updated_at)
                                  ELSE sources.failing_since END,
             last_run_failures = CASE WHEN excluded.failures = 0 AND sources.failures > 0 THEN sources.failures
                                      ELSE sources.last_run_failures END""",
        {
            "name": state.name,
            "type": kind,
            "url": url,
            "etag": state.etag,
            "last_modified": state.last_modified,
            "last_ok_at": ts(state.last_ok_at),
            "last_error": state.last_error,
            "last_error_at": ts(state.last_error_at),
            "failures": state.failures,
            "next_poll_at": ts(state.next_poll_at),
            "retry_at": ts(state.retry_at),
            "cursor": state.cursor,
            "last_post_at": ts(state.last_post_at),
            "health": state.health,
            "warnings": json.dumps(list(state.warnings), ensure_ascii=False) if state.warnings else None,
            "now": ts(now),
        },
    )
