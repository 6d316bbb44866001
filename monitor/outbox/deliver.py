"""Deliver: claim each due delivery in the store, decide with `monitor.delivery`, send, write the outcome.

Exactly once per channel. Within a process, delivery is single-flight: a call that arrives while a pass runs asks
for one more pass instead of sending beside it (several polls finishing together do not each send). Within a
pass each channel drains its own deliveries beside the others, so a dead or slow webhook never delays the email
(each delivery has its own attempts and backoff). Across processes the store's claim holds: one owner per
delivery, with a lease, and the message id fixed at the first claim. The one window left: a process killed
after the server accepted a message and before `sent` is committed sends it again when delivery resumes, with
the same Message-ID for an email (README: Alerts, "Delivery").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import msgspec

from monitor import delivery
from monitor.exceptions import MailError, MonitorError, NotifyError
from monitor.outbox.channels import Channel, EmailChannel, NotifyChannel, Sender, Told
from monitor.store import Claim, Store, this_process
from monitor.types import AlertRow, DeliveryUpdate

log = logging.getLogger("monitor.outbox")

MIN_LEASE = timedelta(minutes=10)  # a claim outlives any send: another host takes it over only after this
MAX_PER_PASS = 10_000  # deliveries claimed by one channel in one pass at most (a bound on the loop)
MAIL_OFF = "mail is off (no alerts.email in the config)"
UNCONFIGURED = "not sent: the channel {channel!r} is not in the config (any more); it goes out if it is added back"

__all__ = ["Channel", "Deliverer", "Delivery", "EmailChannel", "NotifyChannel", "Sender"]


class Teller(Protocol):
    """What an alert says (outbox.content.Content): built once per alert, for every channel."""

    def tell(self, alert: AlertRow, now: datetime) -> Told: ...


class Delivery(msgspec.Struct, frozen=True):
    """What one delivery step came to, for the poll summary and the log."""

    alert_id: int
    kind: str
    status: str  # sent | retry | failed | off
    detail: str
    channel: str = delivery.EMAIL

    def line(self) -> str:
        where = "" if self.channel == delivery.EMAIL else f" on {self.channel}"
        return f"alert #{self.alert_id} ({self.kind}){where}: {self.status}{': ' + self.detail if self.detail else ''}"


class Deliverer:
    """Delivers every due alert on each configured channel, single-flight within the process."""

    def __init__(
        self,
        store: Store,
        content: Teller,
        channels: Mapping[str, Channel],
        *,
        max_attempts: int,
        routes: Sequence[delivery.Route] = (),
    ) -> None:
        self.store = store
        self.content = content
        self.channels = dict(channels)
        self.routes = tuple(routes) or tuple(delivery.Route(name) for name in self.channels)
        self.max_attempts = max_attempts
        self.owner = this_process()
        slowest = max((c.timeout_s for c in self.channels.values()), default=0.0)
        self.lease = max(MIN_LEASE, timedelta(seconds=4 * slowest))
        self._lock = asyncio.Lock()
        self._again: datetime | None = None  # a call arrived during a pass: run once more, at this time

    async def deliver(self, now: datetime) -> list[Delivery]:
        """One pass over the due deliveries, or, if a pass is running, ask it for one more pass and return []."""
        if self._lock.locked():
            self._again = max(self._again or now, now)
            return []
        async with self._lock:
            results: list[Delivery] = []
            while True:
                self._again = None
                results += await self._pass(now)
                if self._again is None:
                    return results
                now = max(now, self._again)

    async def _pass(self, now: datetime) -> list[Delivery]:
        if not self.channels:
            waiting = self.store.undelivered()
            if waiting:
                self.store.note_undelivered(MAIL_OFF)
            return [Delivery(a.id, a.kind.value, "off", "mail is off") for a in waiting]
        self._route_waiting()
        self.store.note_unconfigured(list(self.channels), UNCONFIGURED)
        drained = await asyncio.gather(*(self._drain(name, now) for name in self.channels), return_exceptions=True)
        results: list[Delivery] = []
        for outcome in drained:
            if isinstance(outcome, BaseException):
                raise outcome  # a store failure: every channel's own work is already written
            results += outcome
        return results

    def _route_waiting(self) -> None:
        """Alerts recorded while no channel was configured get the channels that take them now."""
        waiting = self.store.undelivered()
        if waiting:
            plan = {a.id: delivery.channels_for(self.routes, a.kind.value, a.topic) for a in waiting}
            self.store.add_deliveries(plan, unrouted=delivery.UNROUTED)

    async def _drain(self, name: str, now: datetime) -> list[Delivery]:
        """Send this channel's due deliveries one after another (its own order and pace)."""
        channel = self.channels[name]
        results = []
        for _ in range(MAX_PER_PASS):
            claim = self.store.claim_delivery(
                channels=[name], owner=self.owner, now=now, lease=self.lease, message_id=channel.new_message_id()
            )
            if claim is None:
                break
            results.append(await self._deliver_one(claim, now))
        return results

    async def _deliver_one(self, claim: Claim, now: datetime) -> Delivery:
        alert, row = claim.alert, claim.delivery
        channel = self.channels[row.channel]
        stale = delivery.before_send(alert, row, now)
        if stale is not None:
            return self._finish(claim, stale, "failed", "stale")
        try:
            assert row.message_id is not None, "a claim assigns the Message-ID"
            told = self.content.tell(alert, now)
            message = channel.compose(told, row.message_id, now, f"{alert.kind.value} #{alert.id}")
        except MonitorError as exc:  # a bad address, an unknown kind: retrying cannot help
            update = delivery.cannot_compose(row, str(exc))
            return self._finish(claim, update, "failed", update.error or "")
        except Exception as exc:  # a bug while composing: give the claim back, try again later
            log.exception("compose_crashed alert=%d", alert.id)
            update = delivery.after_send(
                row, delivery.SendOutcome(error=f"internal error: {exc!r}"), now, max_attempts=self.max_attempts
            )
            return self._finish(claim, update, "retry" if update.status.value == "pending" else "failed", str(exc))
        outcome = await _in_daemon_thread(lambda: _send(channel, message))
        update = delivery.after_send(row, outcome, now, max_attempts=self.max_attempts)
        if outcome.error is None:
            log.info(
                "alert_sent id=%d kind=%s channel=%s attempts=%d",
                alert.id,
                alert.kind.value,
                row.channel,
                update.attempts,
            )
            return self._finish(claim, update, "sent", update.error or "")
        if update.next_attempt_at is None:
            log.error(
                "alert_failed id=%d kind=%s channel=%s attempts=%d error=%r",
                alert.id,
                alert.kind.value,
                row.channel,
                update.attempts,
                outcome.error,
            )
            return self._finish(claim, update, "failed", outcome.error)
        log.warning(
            "alert_send_failed id=%d channel=%s attempts=%d retry_at=%s error=%r",
            alert.id,
            row.channel,
            update.attempts,
            update.next_attempt_at.isoformat(),
            outcome.error,
        )
        return self._finish(claim, update, "retry", f"{outcome.error} (next try {update.next_attempt_at:%H:%M:%SZ})")

    def _finish(self, claim: Claim, update: DeliveryUpdate, status: str, detail: str) -> Delivery:
        if not self.store.finish_delivery(claim, update):
            log.warning(
                "delivery_claim_lost alert=%d channel=%s: another process took it over after the lease",
                claim.alert.id,
                claim.delivery.channel,
            )
        return Delivery(claim.alert.id, claim.alert.kind.value, status, detail, claim.delivery.channel)


def _send(channel: Channel, message: object) -> delivery.SendOutcome:
    try:
        return delivery.SendOutcome(refused=tuple(channel.send(message)))
    except (MailError, NotifyError) as exc:
        return delivery.SendOutcome(error=str(exc))


async def _in_daemon_thread(work: Callable[[], Any]) -> Any:
    """Run blocking work in a daemon thread: a stuck server cannot delay the daemon's shutdown."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def target() -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = work()
        except BaseException as exc:  # handed to the awaiting coroutine
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed while we worked: nobody waits any more
            loop.call_soon_threadsafe(_settle, future, result, error)

    threading.Thread(target=target, name="monitor-send", daemon=True).start()
    return await future


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
