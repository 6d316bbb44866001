"""The outbox: alerts are written to the store first, then delivered on each channel, exactly once.

Split by job: `evaluate` (which alerts are due: reads, asks `monitor.alerts`, inserts one delivery per channel
that takes the alert), `deliver` (claims, asks `monitor.delivery`, sends, writes the outcome), `content` (what a
message says: reads, builds with `monitor.reports`, `monitor.emails` and `monitor.notices`), `channels` (email
and the Apprise channels) and `testing` (`monitor notify --test`). `Outbox` wires them for one config and store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.alerts import detector_params
from monitor.config import Config
from monitor.outbox.channels import (
    Channel,
    EmailChannel,
    NotifyChannel,
    Sender,
    Told,
    configured_channels,
    mail_settings,
    smtp_send,
)
from monitor.outbox.channels import routes as channel_routes
from monitor.outbox.deliver import Deliverer, Delivery
from monitor.outbox.evaluate import Evaluator
from monitor.store import Store
from monitor.types import AlertRow

if TYPE_CHECKING:
    from monitor.outbox.content import Content
    from monitor.outbox.testing import TestResult, test_channels

log = logging.getLogger("monitor.outbox")

__all__ = [
    "Channel",
    "Delivery",
    "EmailChannel",
    "NotifyChannel",
    "Outbox",
    "TestResult",
    "detector_params",
    "mail_settings",
    "test_channels",
]


def __getattr__(name: str) -> Any:
    """`monitor notify --test`'s names, imported when asked for (its test message is built from emails' templates)."""
    if name in ("TestResult", "test_channels"):
        from monitor.outbox import testing  # noqa: PLC0415

        return getattr(testing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Outbox:
    """Evaluates and delivers alerts for one config and store (one per process: delivery is single-flight)."""

    def __init__(self, config: Config, store: Store, *, sender: Sender = smtp_send) -> None:
        self.config = config
        self.store = store
        self.settings = mail_settings(config)
        channels = configured_channels(config, sender)
        if not channels:
            log.info("mail_off reason='no alerts.email in the config': alerts are recorded, not mailed")
        elif self.settings is None:
            log.info("mail_off reason='no alerts.email in the config': alerts go to the notify channels only")
        self.channels = tuple(channels)
        self.routes = channel_routes(config)
        self.content = _Content(config, store)
        self.evaluator = Evaluator(config, store, self.routes)
        self.deliverer = Deliverer(
            store, self.content, channels, max_attempts=config.alerts.max_attempts, routes=self.routes
        )

    def evaluate(self, now: datetime, *, topics: Sequence[str] | None = None) -> list[AlertRow]:
        """Add the spike, health and digest alerts due now; returns the new rows."""
        return self.evaluator.evaluate(now, topics=topics)

    async def deliver_async(self, now: datetime) -> list[Delivery]:
        """Try every due delivery once (single-flight: a call during a running pass makes it run again)."""
        return await self.deliverer.deliver(now)

    def deliver(self, now: datetime) -> list[Delivery]:
        """`deliver_async` for callers outside an event loop."""
        return asyncio.run(self.deliver_async(now))


class _Content:
    """outbox.content.Content, imported and built when the first alert is told: the words, charts' data and
    templates of every kind of message are a tenth of a poll's start-up, and a poll with nothing to send (a
    re-poll of unchanged feeds) never needs them."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self._built: Content | None = None

    def tell(self, alert: AlertRow, now: datetime) -> Told:
        if self._built is None:
            from monitor.outbox.content import Content  # noqa: PLC0415  # see the class's docstring

            self._built = Content(self.config, self.store)
        return self._built.tell(alert, now)
