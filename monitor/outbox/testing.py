"""`monitor notify --test`: one test message on each (or the named) channel, through the same channels as alerts.

Nothing is read from or written to the store: a test says whether the channel works now, and leaves no alert.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor import emails, mail, notices
from monitor.config import Config
from monitor.exceptions import MailError, NotifyError
from monitor.outbox.channels import Channel, NotifyChannel, Sender, Told, configured_channels

log = logging.getLogger("monitor.outbox")


@dataclass(frozen=True)
class TestResult:
    """What the test message on one channel came to."""

    __test__ = False  # not a pytest class

    channel: str
    ok: bool
    detail: str  # where it went (recipients, the service), or why it failed

    @property
    def status(self) -> str:
        return "sent" if self.ok else "failed"


def unknown_channels(config: Config, names: Sequence[str]) -> list[str]:
    known = configured_channels(config)
    return [n for n in names if n not in known]


def test_channels(
    config: Config, names: Sequence[str], now: datetime, *, sender: Sender = mail.send
) -> list[TestResult]:
    """Send a test message on each channel of `names` (every configured one when empty), one after another."""
    channels = configured_channels(config, sender)
    chosen = [channels[n] for n in names] if names else list(channels.values())
    path = str(config.path) if config.path else None
    return [_test(channel, now, path) for channel in chosen]


def _test(channel: Channel, now: datetime, path: str | None) -> TestResult:
    told = Told(
        emails.test_email(channel.name, now, path),
        notices.test_notice(channel.name, now, path),
    )
    try:
        where = channel.describe()
        if isinstance(channel, NotifyChannel):
            where = f"{channel.service()}, {where}"
        message = channel.compose(told, channel.new_message_id(), now, "test")
        refused = channel.send(message)
    except (MailError, NotifyError) as exc:
        log.info("notify_test_failed channel=%s error=%r", channel.name, str(exc))
        return TestResult(channel.name, False, str(exc))
    log.info("notify_test_sent channel=%s", channel.name)
    if refused:
        return TestResult(channel.name, True, f"{where}; refused by the server: {'; '.join(refused)}")
    return TestResult(channel.name, True, where)
