"""Operations: what `monitor health`, `monitor rematch` and the daemon's metrics read and write (as the SQLite
store's `ops.py` does, with the same meaning).

A rematch batch is one short transaction; its writes wait for a daemon's poll on the same posts at most the lock
timeout, and a post edited meanwhile is matched after its edit (the rows are read FOR UPDATE).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from monitor.store.api import DaemonRow, RematchBatch
from monitor.store.postgres.base import StoreBase
from monitor.store.postgres.errors import wrapped
from monitor.store.rows import stuck_delivery_of, ts
from monitor.types import Match, StuckDelivery
from monitor.units import from_iso


class OpsMixin(StoreBase):
    @wrapped("read the daemon's heartbeat")
    def daemon_row(self) -> DaemonRow | None:
        with self.read("read the daemon's heartbeat") as conn:
            row = self.one(conn, "SELECT holder, started_at, heartbeat_at FROM daemon WHERE id = 1")
        if row is None:
            return None
        return DaemonRow(
            holder=row["holder"], started_at=from_iso(row["started_at"]), heartbeat_at=from_iso(row["heartbeat_at"])
        )

    @wrapped("read the undelivered alerts")
    def stuck_deliveries(self, created_before: datetime) -> list[StuckDelivery]:
        """Deliveries not yet done (pending, retrying) of alerts created before `created_before`, oldest first."""
        with self.read("read the undelivered alerts") as conn:
            rows = self.all(
                conn,
                """SELECT d.alert_id, d.channel, d.attempts, d.error, a.kind, a.created_at
                   FROM deliveries d JOIN alerts a ON a.id = d.alert_id
                   WHERE d.status = 'pending' AND a.created_at < %s ORDER BY a.created_at, d.alert_id, d.channel""",
                (ts(created_before),),
            )
        return [stuck_delivery_of(r) for r in rows]

    @wrapped("count matches per topic")
    def match_counts(self) -> dict[str, int]:
        with self.read("count matches per topic") as conn:
            return {r[0]: int(r[1]) for r in conn.execute("SELECT topic, count(*) FROM matches GROUP BY topic")}

    @wrapped("read the topic fingerprints")
    def topic_fingerprints(self) -> dict[str, str]:
        """Topic -> fingerprint of the definition its stored matches were last fully applied with."""
        with self.read("read the topic fingerprints") as conn:
            return {r[0]: r[1] for r in conn.execute("SELECT topic, fingerprint FROM topic_fingerprints")}

    def record_topic_fingerprints(
        self, fingerprints: Mapping[str, str], now: datetime, *, forget: Sequence[str] = ()
    ) -> None:
        """The stored matches of these topics now follow these definitions; `forget` drops topics' rows."""
        with self.transaction("record the topic fingerprints") as conn, conn.cursor() as cursor:
            if fingerprints:
                cursor.executemany(
                    """INSERT INTO topic_fingerprints (topic, fingerprint, applied_at) VALUES (%s, %s, %s)
                       ON CONFLICT (topic) DO UPDATE SET fingerprint = excluded.fingerprint,
                                                         applied_at = excluded.applied_at""",
                    [(topic, value, ts(now)) for topic, value in sorted(fingerprints.items())],
                )
            if forget:
                cursor.execute("DELETE FROM topic_fingerprints WHERE topic = ANY(%s)", (list(forget),))

    def rematch_batch(
        self,
        *,
        after_id: int,
        limit: int,
        topics: Sequence[str],
        since: datetime | None,
        match: Callable[[str, str], tuple[Match, ...]],
    ) -> RematchBatch:
        """Re-match up to `limit` posts with id > `after_id` (published at or after `since`) for `topics`, in one
        short transaction: read, match, write only what changed."""
        wanted = sorted(set(topics))
        with self.transaction("re-match stored posts") as conn, conn.cursor() as cursor:
            params: list[Any] = [after_id]
            where = "id > %s"
            if since is not None:
                where += " AND published_at >= %s"
                params.append(ts(since))
            posts = cursor.execute(
                f"SELECT id, title, text FROM posts WHERE {where} ORDER BY id LIMIT %s FOR UPDATE",
                (*params, limit),
            ).fetchall()
            if not posts:
                return RematchBatch(last_id=after_id, posts=0, added={}, removed={})
            ids = [int(p[0]) for p in posts]
            old: dict[tuple[int, str], str] = {
                (int(r[0]), r[1]): r[2]
                for r in cursor.execute(
                    "SELECT post_id, topic, term FROM matches WHERE post_id = ANY(%s) AND topic = ANY(%s)",
                    (ids, wanted),
                )
            }
            new: dict[tuple[int, str], str] = {}
            for post_id, title, text in posts:
                for m in match(title or "", text or ""):
                    if m.topic in wanted:
                        new[(int(post_id), m.topic)] = m.term
            gone = [key for key in old if key not in new]
            written = [(*key, term) for key, term in new.items() if old.get(key) != term]
            if gone:
                cursor.executemany("DELETE FROM matches WHERE post_id = %s AND topic = %s", gone)
            if written:
                cursor.executemany(
                    """INSERT INTO matches (post_id, topic, term) VALUES (%s, %s, %s)
                       ON CONFLICT (post_id, topic) DO UPDATE SET term = excluded.term""",
                    written,
                )
        added: dict[str, int] = {}
        for post_id, topic, _ in written:
            if (post_id, topic) not in old:
                added[topic] = added.get(topic, 0) + 1
        removed: dict[str, int] = {}
        for _, topic in gone:
            removed[topic] = removed.get(topic, 0) + 1
        return RematchBatch(last_id=ids[-1], posts=len(ids), added=added, removed=removed)

    def drop_topic_matches(self, topics: Sequence[str]) -> dict[str, int]:
        """Delete every stored match of these topics (no longer configured); returns the count per topic."""
        counts: dict[str, int] = {}
        with self.transaction("delete the matches of removed topics") as conn, conn.cursor() as cursor:
            for topic in topics:
                counts[topic] = cursor.execute("DELETE FROM matches WHERE topic = %s", (topic,)).rowcount
        return counts
