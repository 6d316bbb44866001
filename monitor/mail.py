"""Compose alert emails (text + HTML + inline chart) and deliver them over SMTP: the one module with smtplib.

Scraped text is untrusted: it is HTML-escaped in the HTML part, and it can never add a header (headers are
built with `email.headerregistry` from text whose CR/LF and other controls are removed first).
"""

from __future__ import annotations

import html
import os
import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid

from monitor.exceptions import MailError
from monitor.types import EmailBody

_CONTROLS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+")
SUBJECT_MAX = 180


@dataclass(frozen=True)
class MailSettings:
    """Where and how to send: `alerts.email` of the config, with the password read from the environment."""

    host: str
    port: int
    tls: str  # none | starttls | ssl
    sender: str
    to: tuple[str, ...]
    username: str | None = None
    password_env: str | None = None
    timeout_s: float = 30.0

    def password(self) -> str | None:
        if not self.username:
            return None
        if not self.password_env or self.password_env not in os.environ:
            raise MailError(
                f"SMTP login as {self.username} needs the password in the environment variable "
                f"{self.password_env or '(alerts.email.password_env is not set)'}"
            )
        return os.environ[self.password_env]


def one_line(value: str, limit: int = SUBJECT_MAX) -> str:
    """Header-safe text: every control character (CR, LF, TAB...) becomes a space; long text is cut."""
    text = " ".join(_CONTROLS.sub(" ", value).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def compose(
    body: EmailBody, settings: MailSettings, *, message_id: str, now: datetime, headers: Sequence[tuple[str, str]] = ()
) -> EmailMessage:
    """A multipart/alternative message (text, then HTML with related inline images); UTF-8 throughout."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["Subject"] = one_line(body.subject)
    message["From"] = _address(settings.sender)
    message["To"] = [_address(a) for a in settings.to]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the daemon
    for name, value in headers:
        message[name] = one_line(value, 900)
    message.set_content(body.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(body.html, subtype="html", charset="utf-8", cte="quoted-printable")
    html_part = message.get_payload()[1]  # type: ignore[index]
    assert isinstance(html_part, EmailMessage)
    for cid, png in body.images:
        html_part.add_related(
            png,
            maintype="image",
            subtype="png",
            cid=f"<{cid}>",
            disposition="inline",
            filename=f"{cid.split('@')[0]}.png",
        )
    return message


def new_message_id(sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1] or "monitor.local"
    return make_msgid(idstring="monitor", domain=domain)


def _address(value: str) -> Address:
    try:
        return Address(addr_spec=one_line(value, 320))
    except (ValueError, IndexError) as exc:
        raise MailError(f"not an email address: {value!r}") from exc


def send(message: EmailMessage, settings: MailSettings) -> list[str]:
    """Deliver one message; returns the recipients the server refused while accepting the others.

    Raises MailError with a one-line reason (connection, TLS, login, every recipient refused).
    """
    password = settings.password()
    context = ssl.create_default_context()
    try:
        if settings.tls == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout_s, context=context
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
        with client:
            client.ehlo_or_helo_if_needed()
            if settings.tls == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if settings.username:
                client.login(settings.username, password or "")
            refused = client.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"every recipient was refused: {_refusals(exc.recipients)}") from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"SMTP login refused for {settings.username}: {exc.smtp_code} {_text(exc.smtp_error)}") from exc
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"SMTP server said {exc.smtp_code} {_text(exc.smtp_error)}") from exc
    except smtplib.SMTPException as exc:
        raise MailError(f"SMTP error with {settings.host}:{settings.port}: {exc}") from exc
    except TimeoutError as exc:
        raise MailError(f"SMTP server {settings.host}:{settings.port} timed out after {settings.timeout_s:g}s") from exc
    except ConnectionRefusedError as exc:
        raise MailError(f"SMTP server {settings.host}:{settings.port} refused the connection") from exc
    except ssl.SSLError as exc:
        raise MailError(f"TLS with {settings.host}:{settings.port} failed: {exc}") from exc
    except OSError as exc:
        raise MailError(f"cannot reach SMTP server {settings.host}:{settings.port}: {exc}") from exc
    # Delivered to the others: the alert is sent; a resend would duplicate it for them.
    return [f"{addr} ({code} {_text(msg)})" for addr, (code, msg) in refused.items()]


def _refusals(recipients: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{addr} ({code} {_text(msg)})" for addr, (code, msg) in recipients.items())


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def local(when: datetime, zone: tzinfo) -> str:
    """A time as an analyst reads it: `2026-03-01 18:05 (+06)`."""
    moment = when.astimezone(zone)
    offset = moment.strftime("%z")
    offset = offset[:3] if offset.endswith("00") else f"{offset[:3]}:{offset[3:]}"
    return f"{moment:%Y-%m-%d %H:%M} ({'UTC' if offset in ('+00', '-00') else offset})"
