"""The ways out for alerts: `alerts.email` over SMTP (`monitor.mail`) and each `alerts.notify` channel through
Apprise (`monitor.notify`). Each composes one message from what the alert says (`Told`) and sends it, blocking
(the deliverer runs sends in a thread).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from monitor import delivery
from monitor.config import Config
from monitor.exceptions import NotifyError
from monitor.types import EmailBody

if TYPE_CHECKING:
    from monitor.mail import MailSettings  # smtplib and the email headers load where a config has alerts.email
    from monitor.notices import Notice  # its templates (monitor.emails') load with the first notice composed

Sender = Callable[[EmailMessage, "MailSettings"], list[str]]
NOTIFY_TIMEOUT_S = 30.0  # one Apprise send at most (the whole call: connect, request, any retries it makes)


class Told(msgspec.Struct, frozen=True):
    """What one alert (or test) says, in each channel's form: built once, sent on every channel."""

    email: EmailBody
    notice: Notice


class Channel(Protocol):
    """A way out for alerts: composes a message for one alert and sends it (blocking; run in a thread)."""

    name: str
    timeout_s: float

    def describe(self) -> str: ...
    def new_message_id(self) -> str: ...
    def compose(self, told: Told, message_id: str, now: datetime, label: str) -> object: ...
    def send(self, message: Any) -> list[str]: ...


def smtp_send(message: EmailMessage, settings: MailSettings) -> list[str]:
    """`mail.send`, imported at the first send (a poll of a config without alerts.email never loads it)."""
    from monitor import mail  # noqa: PLC0415

    return mail.send(message, settings)


class EmailChannel:
    """`alerts.email`: SMTP through `mail`; returns the recipients the server refused while accepting the rest."""

    name = delivery.EMAIL

    def __init__(self, settings: MailSettings, sender: Sender = smtp_send) -> None:
        self.settings = settings
        self.sender = sender
        self.timeout_s = settings.timeout_s

    def describe(self) -> str:
        return f"to {', '.join(self.settings.to)} via {self.settings.host}:{self.settings.port}"

    def new_message_id(self) -> str:
        from monitor import mail  # noqa: PLC0415

        return mail.new_message_id(self.settings.sender)

    def compose(self, told: Told, message_id: str, now: datetime, label: str) -> EmailMessage:
        from monitor import mail  # noqa: PLC0415

        return mail.compose(
            told.email, self.settings, message_id=message_id, now=now, headers=[("X-Monitor-Alert", label)]
        )

    def send(self, message: Any) -> list[str]:
        assert isinstance(message, EmailMessage)
        return self.sender(message, self.settings)


class NotifyChannel:
    """One `alerts.notify` channel: its Apprise URL is read from `url_env` at each send, and kept nowhere."""

    def __init__(self, name: str, url_env: str, *, timeout_s: float = NOTIFY_TIMEOUT_S) -> None:
        self.name = name
        self.url_env = url_env
        self.timeout_s = timeout_s

    def describe(self) -> str:
        return f"Apprise URL from ${self.url_env}"

    def new_message_id(self) -> str:
        return f"<{uuid.uuid4().hex}@{self.name}.notify.monitor>"  # recorded per delivery, as emails' are

    def compose(self, told: Told, message_id: str, now: datetime, label: str) -> Notice:
        return told.notice

    def url(self) -> str:
        value = os.environ.get(self.url_env, "").strip()
        if not value:
            raise NotifyError(f"{self.url_env} is not set in the environment (it holds this channel's Apprise URL)")
        return value

    def service(self) -> str:
        """The service the URL is for (checks that the variable is set and Apprise can use the URL)."""
        from monitor import notify  # noqa: PLC0415  # apprise (~130 ms to import) only where a channel is used

        return notify.service_name(self.url())

    def send(self, message: Any) -> list[str]:
        from monitor import notify  # noqa: PLC0415
        from monitor.notices import Notice  # noqa: PLC0415

        assert isinstance(message, Notice)
        notify.send(self.url(), message, timeout_s=self.timeout_s)
        return []


def configured_channels(config: Config, sender: Sender = smtp_send) -> dict[str, Channel]:
    """Every channel of the config, `email` first, in the config's order."""
    channels: dict[str, Channel] = {}
    settings = mail_settings(config)
    if settings is not None:
        channels[delivery.EMAIL] = EmailChannel(settings, sender)
    for channel in config.alerts.notify:
        channels[channel.name] = NotifyChannel(channel.name, channel.url_env)
    return channels


def routes(config: Config) -> tuple[delivery.Route, ...]:
    """Which alerts each configured channel takes (its `topics` and `kinds`)."""
    found = []
    email = config.alerts.email
    if email is not None:
        found.append(delivery.Route(delivery.EMAIL, email.topics, email.kinds))
    found += [delivery.Route(c.name, c.topics, c.kinds) for c in config.alerts.notify]
    return tuple(found)


def mail_settings(config: Config) -> MailSettings | None:
    email = config.alerts.email
    if email is None:
        return None
    from monitor import mail  # noqa: PLC0415  # only a config with alerts.email needs the SMTP side

    return mail.MailSettings(
        host=email.host,
        port=email.effective_port,
        tls=email.tls,
        sender=email.sender,
        to=tuple(email.to),
        username=email.username,
        password_env=email.password_env,
        timeout_s=email.timeout.total_seconds(),
    )
