"""Send a notice through Apprise (Telegram, Slack, Matrix, Discord, ntfy, webhooks...): the one module with apprise.

The channel's Apprise URL carries its tokens, so it is read from the environment by the caller at send time and
goes no further than Apprise: it is never logged or stored, and every error text that leaves here has the URL
and its parts masked. Apprise's own log is taken off the root logger for the same reason (it and urllib3 name
request paths at debug level); what it says about a send arrives in the send's result, and any warning or error
there makes the send a failure (`NotifyError`): a notice Apprise trimmed, or whose attachment it dropped, is not
taken as delivered.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise
from apprise.manager_plugins import NotificationManager

from monitor.exceptions import NotifyError
from monitor.notices import Notice

log = logging.getLogger("monitor.notify")

_apprise_log = logging.getLogger("apprise")
_apprise_log.propagate = False  # its records can carry URLs; the send's result carries what matters
_apprise_log.addHandler(logging.NullHandler())
_apprise_log.setLevel(logging.WARNING)
logging.getLogger("urllib3").setLevel(logging.WARNING)  # debug lines name each request's path (with tokens)

_PLUGINS = NotificationManager()  # type: ignore[no-untyped-call]  # the schemes Apprise knows (`scheme in _PLUGINS`)
FAILING_LEVELS = {"WARNING", "ERROR", "CRITICAL"}
MASK = "***"
MIN_SECRET = 4  # URL parts this long or longer are masked in error texts (shorter ones: "/", "en", a port digit)


def service_name(url: str) -> str:
    """The service a URL is for ("JSON", "ntfy", "Telegram"), or raises NotifyError if Apprise cannot use it."""
    return _service(url).service_name or "Apprise"


def send(url: str, notice: Notice, *, timeout_s: float) -> str:
    """Deliver one notice; returns the service's name. Raises NotifyError (URL masked) when it was not delivered:
    an unusable URL, a refused or failed request, a timeout, or any warning from Apprise."""
    service = _service(url)
    app = apprise.Apprise()
    app.add(service)
    with tempfile.TemporaryDirectory(prefix="monitor-notify-") as folder:
        attach = None
        if notice.attachments and getattr(service, "attachment_support", False):
            paths = []
            for name, content in notice.attachments:
                path = Path(folder) / Path(name).name
                path.write_bytes(content)
                paths.append(str(path))
            attach = apprise.AppriseAttachment(paths)
        try:
            result = app.notify(
                body=notice.body,
                title=notice.title,
                body_format=apprise.NotifyFormat.TEXT,
                attach=attach,
                timeout=timeout_s,
            )
        except Exception as exc:  # a plugin's bug or a bad value: one failed send, never a crash
            raise NotifyError(mask(f"Apprise failed: {type(exc).__name__}: {exc}", url)) from None
    problems = [e.message for e in result.logs() if e.level in FAILING_LEVELS]
    if not result or problems:
        reason = "; ".join(dict.fromkeys(problems)) or f"Apprise reported {result.status.name.lower()}"
        raise NotifyError(mask(f"{service.service_name}: {reason}", url))
    return str(service.service_name)


class _Heard(logging.Handler):
    """Apprise's warnings from this thread while it reads a URL (other threads may be sending meanwhile)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


def _service(url: str) -> apprise.NotifyBase:
    heard = _Heard()
    _apprise_log.addHandler(heard)
    try:
        service = apprise.Apprise.instantiate(url)
    except Exception as exc:  # Apprise raises several kinds for a URL it cannot read
        raise NotifyError(mask(f"Apprise cannot read the channel's URL: {type(exc).__name__}: {exc}", url)) from None
    finally:
        _apprise_log.removeHandler(heard)
    said = "; ".join(dict.fromkeys(heard.messages))
    if not isinstance(service, apprise.NotifyBase):
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if said and scheme in _PLUGINS:
            raise NotifyError(mask(f"Apprise cannot use the channel's URL: {said}", url))
        known = f"the scheme {scheme!r} is not one Apprise knows" if scheme not in _PLUGINS else "a part is missing"
        raise NotifyError(
            f"the channel's URL is not one Apprise can use ({known}; see https://github.com/caronc/apprise/wiki)"
        )
    if said:  # it would send, but not as configured: a warning is a failure, so that someone fixes the URL
        raise NotifyError(mask(f"Apprise warned about the channel's URL: {said}", url))
    return service


def mask(text: str, url: str) -> str:
    """`text` with the URL and each of its longer parts (user, password, host path, query values) masked."""
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = re.sub(re.escape(secret), MASK, text, flags=re.IGNORECASE)
    return text


def _secrets(url: str) -> Iterable[str]:
    yield url
    rest = url.split("://", 1)[-1]
    yield rest
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    pieces = [parts.username, parts.password, parts.path, parts.query]
    pieces += re.split(r"[/@:]", rest.split("?", 1)[0])
    pieces += [v for _, v in parse_qsl(parts.query)]
    for piece in pieces:
        if not piece:
            continue
        for form in (piece, unquote(piece)):
            if len(form) >= MIN_SECRET:
                yield form
