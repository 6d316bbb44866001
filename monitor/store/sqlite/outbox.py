"""The outbox: alerts, and their deliveries (one per alert and channel), each claimed before it is sent.

A claim is one conditional UPDATE inside BEGIN IMMEDIATE: a due delivery that nobody holds (or whose
holder's lease ran out, or whose holder is a process of this host that no longer exists) is taken by one
owner, and its Message-ID is assigned then if it has none, so every resend carries the same one.
Finishing is conditional on still holding the claim. `alerts.status` and the other summary columns are
rewritten from the alert's deliveries in the same transaction (the rule is `delivery.summarise`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from monitor import delivery
from monitor.exceptions import StoreError
from monitor.store.api import Claim
from monitor.store.details import encode_details
from monitor.store.rows import alert_of, delivery_of, ts
from monitor.store.sqlite.base import StoreBase
from monitor.store.sqlite.errors import wrapped
from monitor.types import AlertKind, AlertRow, AlertStatus, DeliveryRow, DeliveryUpdate, Holder, NewAlert

GONE_FUNCTION = "monitor_holder_gone"  # SQL function: is this claim's owner a dead process of this host?


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class OutboxMixin(StoreBase):
    # ------------------------------------------------------------------ alerts
    def insert_alert(
        self, alert: NewAlert, *, created_at: datetime, channels: Sequence[str], unrouted: str | None = None
    ) -> AlertRow:
        """Add an alert and one pending delivery per channel, in one transaction; returns the row as stored.
        With no channel and an `unrouted` note, the alert is recorded as done (`sent`, no delivery) with the note:
        channels are configured but none takes it. With no channel and no note it waits for one (`pending`)."""
        with self.transaction("record the alert") as conn:
            (row,) = _rows(
                conn.execute(
                    """INSERT INTO alerts (kind, topic, source, cluster_id, window_start, window_end, count, expected,
                                           score, created_at, status, attempts, details)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?) RETURNING *""",
                    (
                        alert.kind.value,
                        alert.topic,
                        alert.source,
                        alert.cluster_id,
                        ts(alert.window_start),
                        ts(alert.window_end),
                        alert.count,
                        alert.expected,
                        alert.score,
                        ts(created_at),
                        encode_details(alert.details),
                    ),
                )
            )
            conn.executemany(
                "INSERT INTO deliveries (alert_id, channel) VALUES (?, ?)", [(row["id"], c) for c in channels]
            )
            if not channels and unrouted:
                (row,) = _rows(conn.execute(_UNROUTED_SQL + " RETURNING *", (unrouted, row["id"])))
        return alert_of(row)

    @wrapped("read the alerts")
    def alerts(
        self, *, status: AlertStatus | None = None, kind: AlertKind | None = None, limit: int = 1000
    ) -> list[AlertRow]:
        """Newest first."""
        rows = self.all(
            """SELECT * FROM alerts WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR kind = ?2)
               ORDER BY id DESC LIMIT ?3""",
            (status.value if status else None, kind.value if kind else None, limit),
        )
        return [alert_of(r) for r in rows]

    @wrapped("read the alert")
    def alert(self, alert_id: int) -> AlertRow:
        row = self.one("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        if row is None:
            raise StoreError(f"no alert #{alert_id}")
        return alert_of(row)

    @wrapped("read the alerts")
    def last_alert(self, kind: AlertKind, *, topic: str | None = None, source: str | None = None) -> AlertRow | None:
        row = self.one(
            """SELECT * FROM alerts WHERE kind = ?1 AND (?2 IS NULL OR topic = ?2) AND (?3 IS NULL OR source = ?3)
               ORDER BY id DESC LIMIT 1""",
            (kind.value, topic, source),
        )
        return alert_of(row) if row else None

    @wrapped("read the alerts")
    def spike_alerts_between(self, topics: Sequence[str], start: datetime, end: datetime) -> list[AlertRow]:
        """Spike alerts of these topics that fired (window_end) in [start, end], oldest first."""
        if not topics:
            return []
        rows = self.all(
            f"""SELECT * FROM alerts WHERE kind = 'spike' AND topic IN ({",".join("?" * len(topics))})
                AND coalesce(window_end, created_at) >= ? AND coalesce(window_end, created_at) <= ?
                ORDER BY coalesce(window_end, created_at), id""",
            (*topics, ts(start), ts(end)),
        )
        return [alert_of(r) for r in rows]

    @wrapped("read the alerts")
    def campaign_clusters(self, cluster_ids: Sequence[int]) -> set[int]:
        """Those of `cluster_ids` that already have a campaign alert (one alert per cluster, ever)."""
        found: set[int] = set()
        ids = list(dict.fromkeys(cluster_ids))
        for start in range(0, len(ids), 500):  # SQLite caps bound parameters per statement
            chunk = ids[start : start + 500]
            found.update(
                r[0]
                for r in self.conn.execute(
                    f"SELECT DISTINCT cluster_id FROM alerts WHERE kind = 'campaign' "
                    f"AND cluster_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
            )
        return found

    # ------------------------------------------------------------------ deliveries
    @wrapped("read the deliveries")
    def deliveries(self, alert_id: int) -> list[DeliveryRow]:
        return [
            delivery_of(r) for r in self.all("SELECT * FROM deliveries WHERE alert_id = ? ORDER BY id", (alert_id,))
        ]

    @wrapped("read the deliveries")
    def deliveries_of(self, alert_ids: Sequence[int]) -> dict[int, list[DeliveryRow]]:
        """Each alert's deliveries (in channel order of creation); an alert without any maps to []."""
        found: dict[int, list[DeliveryRow]] = {i: [] for i in alert_ids}
        ids = list(found)
        for start in range(0, len(ids), 500):  # SQLite's bound on parameters
            chunk = ids[start : start + 500]
            rows = self.all(
                f"SELECT * FROM deliveries WHERE alert_id IN ({','.join('?' * len(chunk))}) ORDER BY id", tuple(chunk)
            )
            for row in rows:
                found[row["alert_id"]].append(delivery_of(row))
        return found

    @wrapped("read the alerts")
    def undelivered(self) -> list[AlertRow]:
        """Pending alerts that have no delivery at all (recorded while no channel was configured), oldest first."""
        rows = self.all(
            """SELECT * FROM alerts a WHERE status = 'pending'
               AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id) ORDER BY id"""
        )
        return [alert_of(r) for r in rows]

    def add_deliveries(self, plan: Mapping[int, Sequence[str]], *, unrouted: str) -> int:
        """Give pending alerts recorded while there was no channel (mail configured later) the channels `plan`
        routes them to; one routed to none is recorded as done with the `unrouted` note. Returns the alerts given."""
        if not plan:
            return 0
        with self.transaction("add deliveries") as conn:
            waiting = {
                r[0]
                for r in conn.execute(
                    """SELECT id FROM alerts a WHERE status = 'pending'
                       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id)"""
                )
            }
            ids = [i for i in plan if i in waiting]  # another process may have given them their channels
            conn.executemany(
                "INSERT INTO deliveries (alert_id, channel) VALUES (?, ?)", [(i, c) for i in ids for c in plan[i]]
            )
            for alert_id in ids:
                if plan[alert_id]:
                    _summarise(conn, alert_id)
                else:
                    conn.execute(_UNROUTED_SQL, (unrouted, alert_id))
        return len(ids)

    def note_undelivered(self, error: str) -> int:
        """Say why pending alerts without deliveries are not sent (e.g. mail is off); once per alert."""
        with self.transaction("note the alerts") as conn:
            return conn.execute(
                """UPDATE alerts SET error = ? WHERE status = 'pending' AND error IS NULL
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = alerts.id)""",
                (error,),
            ).rowcount

    def note_unconfigured(self, channels: Sequence[str], note: str) -> int:
        """Say why pending deliveries on a channel that is not configured (any more) are not sent: `note` with
        `{channel}` filled in, once per delivery. They stay pending: the channel configured again sends them."""
        marks = ",".join("?" * len(channels))
        with self.transaction("note the deliveries") as conn:
            rows = conn.execute(
                f"""SELECT id, alert_id, channel FROM deliveries WHERE status = 'pending' AND error IS NULL
                    AND channel NOT IN ({marks})""",
                tuple(channels),
            ).fetchall()
            for delivery_id, _, channel in rows:
                conn.execute(
                    "UPDATE deliveries SET error = ? WHERE id = ?", (note.format(channel=channel), delivery_id)
                )
            for alert_id in {r[1] for r in rows}:
                _summarise(conn, alert_id)
        return len(rows)

    def claim_delivery(
        self, *, channels: Sequence[str], owner: Holder, now: datetime, lease: timedelta, message_id: str
    ) -> Claim | None:
        """Take the oldest due delivery on one of `channels` for `owner` until now + lease, or None."""
        if not channels:
            return None
        marks = ",".join("?" * len(channels))
        until = now + lease
        with self.transaction("claim a delivery") as conn:
            rows = _rows(
                conn.execute(
                    f"""UPDATE deliveries SET claimed_by = ?, claim_until = ?, message_id = coalesce(message_id, ?)
                        WHERE id = (
                          SELECT id FROM deliveries
                          WHERE status = 'pending' AND channel IN ({marks})
                            AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
                            AND (claimed_by IS NULL OR claim_until <= ? OR {GONE_FUNCTION}(claimed_by))
                          ORDER BY id LIMIT 1)
                        RETURNING *""",
                    (str(owner), ts(until), message_id, *channels, ts(now), ts(now)),
                )
            )
            if not rows:
                return None
            claimed = delivery_of(rows[0])
            _summarise(conn, claimed.alert_id)  # alerts.message_id is recorded before the first send
            (alert,) = _rows(conn.execute("SELECT * FROM alerts WHERE id = ?", (claimed.alert_id,)))
        return Claim(delivery=claimed, alert=alert_of(alert), owner=owner, until=until)

    def finish_delivery(self, claim: Claim, update: DeliveryUpdate) -> bool:
        """Write the outcome of a claimed delivery and the alert's summary; False if the claim was lost (another
        owner took it after the lease ran out), in which case nothing is written."""
        with self.transaction("record the delivery") as conn:
            done = conn.execute(
                """UPDATE deliveries SET status = ?, attempts = ?, sent_at = ?, next_attempt_at = ?, error = ?,
                                         claimed_by = NULL, claim_until = NULL
                   WHERE id = ? AND claimed_by = ?""",
                (
                    update.status.value,
                    update.attempts,
                    ts(update.sent_at),
                    ts(update.next_attempt_at),
                    update.error,
                    claim.delivery.id,
                    str(claim.owner),
                ),
            ).rowcount
            if done:
                _summarise(conn, claim.delivery.alert_id)
        return bool(done)


# An alert that no configured channel takes: done, with the note saying why nobody received it.
_UNROUTED_SQL = "UPDATE alerts SET status = 'sent', attempts = 0, sent_at = NULL, error = ? WHERE id = ?"


def _summarise(conn: sqlite3.Connection, alert_id: int) -> None:
    """Rewrite the alert's summary columns from its deliveries."""
    rows = [delivery_of(r) for r in _rows(conn.execute("SELECT * FROM deliveries WHERE alert_id = ?", (alert_id,)))]
    summary = delivery.summarise(rows)
    conn.execute(
        """UPDATE alerts SET status = ?, attempts = ?, sent_at = ?, error = ?, next_attempt_at = ?,
                             message_id = coalesce(?, message_id) WHERE id = ?""",
        (
            summary.status.value,
            summary.attempts,
            ts(summary.sent_at),
            summary.error,
            ts(summary.next_attempt_at),
            summary.message_id,
            alert_id,
        ),
    )
