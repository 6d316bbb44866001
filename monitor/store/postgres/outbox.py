"""The outbox: alerts, and their deliveries (one per alert and channel), each claimed before it is sent.

The SQLite store's rules (sqlite/outbox.py): a claim is one conditional UPDATE ... RETURNING that takes a due
delivery nobody holds (or whose holder's lease ran out, or whose holder is a dead process of this host) for
one owner, assigning its Message-ID if it has none. Here the candidate row is locked FOR UPDATE SKIP LOCKED,
so claimers on any number of machines never take the same delivery; the dead holders of this host are found
in Python (/proc) and passed in, since the server cannot see this host's processes. Finishing is conditional
on still holding the claim; `alerts` summary columns are rewritten from the deliveries in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from monitor import delivery
from monitor.exceptions import StoreError
from monitor.store.api import Claim
from monitor.store.details import encode_details
from monitor.store.owner import gone
from monitor.store.postgres.base import StoreBase
from monitor.store.postgres.errors import wrapped
from monitor.store.rows import alert_of, delivery_of, ts
from monitor.types import AlertKind, AlertRow, AlertStatus, DeliveryRow, DeliveryUpdate, Holder, NewAlert


def _rows(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


class OutboxMixin(StoreBase):
    # ------------------------------------------------------------------ alerts
    def insert_alert(
        self, alert: NewAlert, *, created_at: datetime, channels: Sequence[str], unrouted: str | None = None
    ) -> AlertRow:
        """Add an alert and one pending delivery per channel, in one transaction; returns the row as stored.
        With no channel and an `unrouted` note, the alert is recorded as done (`sent`, no delivery) with the note."""
        with self.transaction("record the alert") as conn:
            (row,) = _rows(
                conn,
                """INSERT INTO alerts (kind, topic, source, cluster_id, window_start, window_end, count, expected,
                                       score, created_at, status, attempts, details)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', 0, %s) RETURNING *""",
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
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO deliveries (alert_id, channel) VALUES (%s, %s)", [(row["id"], c) for c in channels]
                )
            if not channels and unrouted:
                (row,) = _rows(conn, _UNROUTED_SQL + " RETURNING *", (unrouted, row["id"]))
        return alert_of(row)

    @wrapped("read the alerts")
    def alerts(
        self, *, status: AlertStatus | None = None, kind: AlertKind | None = None, limit: int = 1000
    ) -> list[AlertRow]:
        with self.read("read the alerts") as conn:
            rows = _rows(
                conn,
                """SELECT * FROM alerts WHERE (%(status)s::text IS NULL OR status = %(status)s)
                   AND (%(kind)s::text IS NULL OR kind = %(kind)s) ORDER BY id DESC LIMIT %(limit)s""",
                {"status": status.value if status else None, "kind": kind.value if kind else None, "limit": limit},
            )
        return [alert_of(r) for r in rows]

    @wrapped("read the alert")
    def alert(self, alert_id: int) -> AlertRow:
        with self.read("read the alert") as conn:
            rows = _rows(conn, "SELECT * FROM alerts WHERE id = %s", (alert_id,))
        if not rows:
            raise StoreError(f"no alert #{alert_id}")
        return alert_of(rows[0])

    @wrapped("read the alerts")
    def last_alert(self, kind: AlertKind, *, topic: str | None = None, source: str | None = None) -> AlertRow | None:
        with self.read("read the alerts") as conn:
            rows = _rows(
                conn,
                """SELECT * FROM alerts WHERE kind = %(kind)s AND (%(topic)s::text IS NULL OR topic = %(topic)s)
                   AND (%(source)s::text IS NULL OR source = %(source)s) ORDER BY id DESC LIMIT 1""",
                {"kind": kind.value, "topic": topic, "source": source},
            )
        return alert_of(rows[0]) if rows else None

    @wrapped("read the alerts")
    def spike_alerts_between(self, topics: Sequence[str], start: datetime, end: datetime) -> list[AlertRow]:
        if not topics:
            return []
        with self.read("read the alerts") as conn:
            rows = _rows(
                conn,
                """SELECT * FROM alerts WHERE kind = 'spike' AND topic = ANY(%s)
                   AND coalesce(window_end, created_at) >= %s AND coalesce(window_end, created_at) <= %s
                   ORDER BY coalesce(window_end, created_at), id""",
                (list(topics), ts(start), ts(end)),
            )
        return [alert_of(r) for r in rows]

    @wrapped("read the alerts")
    def campaign_clusters(self, cluster_ids: Sequence[int]) -> set[int]:
        """Those of `cluster_ids` that already have a campaign alert (one alert per cluster, ever)."""
        if not cluster_ids:
            return set()
        with self.read("read the alerts") as conn:
            rows = conn.execute(
                "SELECT DISTINCT cluster_id FROM alerts WHERE kind = 'campaign' AND cluster_id = ANY(%s)",
                (list(set(cluster_ids)),),
            ).fetchall()
        return {r[0] for r in rows}

    # ------------------------------------------------------------------ deliveries
    @wrapped("read the deliveries")
    def deliveries(self, alert_id: int) -> list[DeliveryRow]:
        with self.read("read the deliveries") as conn:
            rows = _rows(conn, "SELECT * FROM deliveries WHERE alert_id = %s ORDER BY id", (alert_id,))
        return [delivery_of(r) for r in rows]

    @wrapped("read the deliveries")
    def deliveries_of(self, alert_ids: Sequence[int]) -> dict[int, list[DeliveryRow]]:
        """Each alert's deliveries (in channel order of creation); an alert without any maps to []."""
        found: dict[int, list[DeliveryRow]] = {i: [] for i in alert_ids}
        with self.read("read the deliveries") as conn:
            rows = _rows(conn, "SELECT * FROM deliveries WHERE alert_id = ANY(%s) ORDER BY id", (list(found),))
        for row in rows:
            found[row["alert_id"]].append(delivery_of(row))
        return found

    @wrapped("read the alerts")
    def undelivered(self) -> list[AlertRow]:
        with self.read("read the alerts") as conn:
            rows = _rows(
                conn,
                """SELECT * FROM alerts a WHERE status = 'pending'
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id) ORDER BY id""",
            )
        return [alert_of(r) for r in rows]

    def add_deliveries(self, plan: Mapping[int, Sequence[str]], *, unrouted: str) -> int:
        """Give pending alerts recorded while there was no channel the channels `plan` routes them to; one routed to
        none is recorded as done with the `unrouted` note. Returns the alerts given."""
        if not plan:
            return 0
        with self.transaction("add deliveries") as conn:
            waiting = {
                r[0]
                for r in conn.execute(
                    """SELECT id FROM alerts a WHERE status = 'pending'
                       AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id) FOR UPDATE"""
                )
            }
            ids = [i for i in plan if i in waiting]  # another process may have given them their channels
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO deliveries (alert_id, channel) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    [(i, c) for i in ids for c in plan[i]],
                )
            for alert_id in ids:
                if plan[alert_id]:
                    _summarise(conn, alert_id)
                else:
                    conn.execute(_UNROUTED_SQL, (unrouted, alert_id))
        return len(ids)

    def note_undelivered(self, error: str) -> int:
        with self.transaction("note the alerts") as conn:
            return conn.execute(
                """UPDATE alerts SET error = %s WHERE status = 'pending' AND error IS NULL
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = alerts.id)""",
                (error,),
            ).rowcount

    def note_unconfigured(self, channels: Sequence[str], note: str) -> int:
        """Say why pending deliveries on a channel that is not configured (any more) are not sent: `note` with
        `{channel}` filled in, once per delivery. They stay pending: the channel configured again sends them."""
        with self.transaction("note the deliveries") as conn:
            rows = conn.execute(
                """SELECT id, alert_id, channel FROM deliveries WHERE status = 'pending' AND error IS NULL
                   AND NOT (channel = ANY(%s)) FOR UPDATE""",
                (list(channels),),
            ).fetchall()
            with conn.cursor() as cursor:
                cursor.executemany(
                    "UPDATE deliveries SET error = %s WHERE id = %s",
                    [(note.format(channel=channel), delivery_id) for delivery_id, _, channel in rows],
                )
            for alert_id in sorted({r[1] for r in rows}):
                _summarise(conn, alert_id)
        return len(rows)

    def claim_delivery(
        self, *, channels: Sequence[str], owner: Holder, now: datetime, lease: timedelta, message_id: str
    ) -> Claim | None:
        """Take the oldest due delivery on one of `channels` for `owner` until now + lease, or None."""
        if not channels:
            return None
        until = now + lease
        with self.transaction("claim a delivery") as conn:
            dead = _gone_holders(conn, now)
            rows = _rows(
                conn,
                """UPDATE deliveries SET claimed_by = %(owner)s, claim_until = %(until)s,
                                         message_id = coalesce(message_id, %(message_id)s)
                   WHERE id = (
                     SELECT id FROM deliveries
                     WHERE status = 'pending' AND channel = ANY(%(channels)s)
                       AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)
                       AND (claimed_by IS NULL OR claim_until <= %(now)s OR claimed_by = ANY(%(gone)s))
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                   RETURNING *""",
                {
                    "owner": str(owner),
                    "until": ts(until),
                    "message_id": message_id,
                    "channels": list(channels),
                    "now": ts(now),
                    "gone": dead,
                },
            )
            if not rows:
                return None
            claimed = delivery_of(rows[0])
            _summarise(conn, claimed.alert_id)  # alerts.message_id is recorded before the first send
            (alert,) = _rows(conn, "SELECT * FROM alerts WHERE id = %s", (claimed.alert_id,))
        return Claim(delivery=claimed, alert=alert_of(alert), owner=owner, until=until)

    def finish_delivery(self, claim: Claim, update: DeliveryUpdate) -> bool:
        with self.transaction("record the delivery") as conn:
            done = conn.execute(
                """UPDATE deliveries SET status = %s, attempts = %s, sent_at = %s, next_attempt_at = %s, error = %s,
                                         claimed_by = NULL, claim_until = NULL
                   WHERE id = %s AND claimed_by = %s""",
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
_UNROUTED_SQL = "UPDATE alerts SET status = 'sent', attempts = 0, sent_at = NULL, error = %s WHERE id = %s"


def _gone_holders(conn: psycopg.Connection[Any], now: datetime) -> list[str]:
    """Holders of unexpired claims that are processes of this host which have exited."""
    held = conn.execute(
        "SELECT DISTINCT claimed_by FROM deliveries WHERE status = 'pending' AND claim_until > %s", (ts(now),)
    ).fetchall()
    return [r[0] for r in held if gone(r[0])]


def _summarise(conn: psycopg.Connection[Any], alert_id: int) -> None:
    """Rewrite the alert's summary columns from its deliveries (the rule is `delivery.summarise`)."""
    rows = [delivery_of(r) for r in _rows(conn, "SELECT * FROM deliveries WHERE alert_id = %s", (alert_id,))]
    summary = delivery.summarise(rows)
    conn.execute(
        """UPDATE alerts SET status = %s, attempts = %s, sent_at = %s, error = %s, next_attempt_at = %s,
                             message_id = coalesce(%s, message_id) WHERE id = %s""",
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
