"""Operations: what `monitor health`, `monitor rematch` and the daemon's metrics read and write.

The daemon's heartbeat row and stuck deliveries (health); the topic definitions the stored matches follow
(`topic_fingerprints`) and re-matching stored posts in short batches (rematch); match counts per topic (metrics).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from monitor.store.api import DaemonRow, RematchBatch
from monitor.store.rows import stuck_delivery_of, ts
from monitor.store.sqlite.base import StoreBase
from monitor.store.sqlite.errors import wrapped
from monitor.types import Match, StuckDelivery
from monitor.units import from_iso


class OpsMixin(StoreBase):
    @wrapped("read the daemon's heartbeat")
    def daemon_row(self) -> DaemonRow | None:
        row = self.one("SELECT holder, started_at, heartbeat_at FROM daemon WHERE id = 1")
        if row is None:
            return None
        return DaemonRow(
            holder=row["holder"], started_at=from_iso(row["started_at"]), heartbeat_at=from_iso(row["heartbeat_at"])
        )

    @wrapped("read the undelivered alerts")
    def stuck_deliveries(self, created_before: datetime) -> list[StuckDelivery]:
        """Deliveries not yet done (pending, retrying) of alerts created before `created_before`, oldest first."""
        rows = self.all(
            """SELECT d.alert_id, d.channel, d.attempts, d.error, a.kind, a.created_at
               FROM deliveries d JOIN alerts a ON a.id = d.alert_id
               WHERE d.status = 'pending' AND a.created_at < ? ORDER BY a.created_at, d.alert_id, d.channel""",
            (ts(created_before),),
        )
        return [stuck_delivery_of(r) for r in rows]

    @wrapped("count matches per topic")
    def match_counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT topic, count(*) FROM matches GROUP BY topic").fetchall())

    @wrapped("read the topic fingerprints")
    def topic_fingerprints(self) -> dict[str, str]:
        """Topic -> fingerprint of the definition its stored matches were last fully applied with."""
        return dict(self.conn.execute("SELECT topic, fingerprint FROM topic_fingerprints").fetchall())

    def record_topic_fingerprints(
        self, fingerprints: Mapping[str, str], now: datetime, *, forget: Sequence[str] = ()
    ) -> None:
        """The stored matches of these topics now follow these definitions; `forget` drops topics' rows."""
        with self.transaction("record the topic fingerprints") as conn:
            conn.executemany(
                """INSERT INTO topic_fingerprints (topic, fingerprint, applied_at) VALUES (?, ?, ?)
                   ON CONFLICT (topic) DO UPDATE SET fingerprint = excluded.fingerprint,
                                                     applied_at = excluded.applied_at""",
                [(topic, value, ts(now)) for topic, value in sorted(fingerprints.items())],
            )
            conn.executemany("DELETE FROM topic_fingerprints WHERE topic = ?", [(t,) for t in forget])

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
        short transaction: read, match, write only what changed. A daemon writing beside it waits at most this
        long (the busy timeout covers it), and a post it edits meanwhile is matched after its edit."""
        wanted = set(topics)
        with self.transaction("re-match stored posts") as conn:
            params: list[object] = [after_id]
            where = "id > ?"
            if since is not None:
                where += " AND published_at >= ?"
                params.append(ts(since))
            posts = conn.execute(
                f"SELECT id, title, text FROM posts WHERE {where} ORDER BY id LIMIT ?", (*params, limit)
            ).fetchall()
            if not posts:
                return RematchBatch(last_id=after_id, posts=0, added={}, removed={})
            ids = [p[0] for p in posts]
            marks = ",".join("?" * len(ids))
            topic_marks = ",".join("?" * len(wanted))
            old: dict[tuple[int, str], str] = {
                (r[0], r[1]): r[2]
                for r in conn.execute(
                    f"SELECT post_id, topic, term FROM matches WHERE post_id IN ({marks}) AND topic IN ({topic_marks})",
                    (*ids, *sorted(wanted)),
                )
            }
            new: dict[tuple[int, str], str] = {}
            for post_id, title, text in posts:
                for m in match(title or "", text or ""):
                    if m.topic in wanted:
                        new[(post_id, m.topic)] = m.term
            gone = [key for key in old if key not in new]
            written = [(*key, term) for key, term in new.items() if old.get(key) != term]
            conn.executemany("DELETE FROM matches WHERE post_id = ? AND topic = ?", gone)
            conn.executemany("INSERT OR REPLACE INTO matches (post_id, topic, term) VALUES (?, ?, ?)", written)
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
        with self.transaction("delete the matches of removed topics") as conn:
            for topic in topics:
                counts[topic] = conn.execute("DELETE FROM matches WHERE topic = ?", (topic,)).rowcount
        return counts
