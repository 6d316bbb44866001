"""`monitor demo`: the whole pipeline on this machine, with no internet, in a few seconds.

Steps, each named when it fails (exit 1): clear the demo's own files under <dir>/demo/, start the local
site (a fictional week of regional media, the spike in the last hour) and the local SMTP server, write
<dir>/demo/config.yaml, poll every source with `service.poll_once` (the code `monitor poll` runs: fetch,
parse, normalise, match, cluster, store, detect, outbox, mail), check that the spike alert was raised and
mailed, save the received email as alert.eml and its chart as alert-chart.png, poll again (nothing new),
print a summary. Every run starts from a fresh store: the site is dated relative to now, so yesterday's
store would hold yesterday's week, and its alert's cooldown would silence today's.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console

from monitor.collectors import SOURCE_MODELS
from monitor.config import Config, load_config
from monitor.demo.configtext import DB_NAME, config_text
from monitor.demo.mailbox import Mailbox
from monitor.demo.render import Site
from monitor.demo.report import Facts, MailFacts, read_facts, summary_lines
from monitor.demo.server import LocalSite
from monitor.demo.world import build_world
from monitor.exceptions import MonitorError
from monitor.service import PollSummary, poll_once
from monitor.store import Store, open_store
from monitor.types import AlertKind, AlertRow

log = logging.getLogger("monitor.demo")

FOLDER = "demo"  # under the --dir directory
CONFIG = "config.yaml"
EML = "alert.eml"
PNG = "alert-chart.png"
OWN_FILES = (CONFIG, DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", EML, PNG)  # removed before each run
POLL_TIMEOUT_S = 120.0  # a last guard; the sources' own timeout is 10 s
MAIL_WAIT_S = 10.0
ZONE = "Asia/Almaty"  # times in the email as an analyst in Kazakhstan reads them (UTC without a tz database)


class _StepError(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


class _CheckError(Exception):
    """A step's own finding that stops the demo (a source failed, no alert, no email)."""


def run_demo(directory: Path, *, clock: Callable[[], datetime], out: TextIO | None = None) -> int:
    """Run the demo under `directory`/demo/; print the summary to `out` (stdout). Returns the exit status."""
    stream = out or sys.stdout
    started = time.monotonic()
    try:
        with _Progress(enabled=stream.isatty()) as progress, _quiet_logs(), _loopback_without_proxy():
            facts = _run(directory / FOLDER, clock, progress, started)
    except _StepError as exc:
        print(f"monitor demo: failed at step '{exc.step}': {exc.reason}", file=sys.stderr)
        return 1
    for line in summary_lines(facts, Path.cwd()):
        print(line, file=stream)
    return 0


def _run(folder: Path, clock: Callable[[], datetime], progress: _Progress, started: float) -> Facts:
    with contextlib.ExitStack() as stack:
        with _step("clear the previous demo's files", progress):
            _fresh(folder)
        now = clock()
        with _step("start the local site", progress):
            site = LocalSite()
            stack.callback(site.close)
            site.serve(Site(build_world(now), site.base))
        with _step("start the local SMTP server", progress):
            mailbox = Mailbox()
            stack.callback(mailbox.close)
            mailbox.start()
        with _step("write the config", progress):
            config_path = folder / CONFIG
            config_path.write_text(config_text(site.base, mailbox.port, _zone(), now), encoding="utf-8")
            config = load_config(config_path, source_types=SOURCE_MODELS)
        with _step("open the store", progress):
            store = open_store(config.store, create=True)
            stack.callback(store.close)
        with _step(f"poll {len(config.sources)} sources", progress):
            first = _poll(config, store, clock)
        with _step("raise the spike alert", progress):
            alert = _sent_spike(store)
        with _step("receive the email", progress):
            message, raw = _received(mailbox, alert)
        with _step("save the email and its chart", progress):
            eml, png = _save(folder, raw, message)
        with _step("poll again", progress):
            second = _poll(config, store, clock)
        with _step("summarise", progress):
            assert alert.window_end is not None  # a spike alert has its window
            return Facts(
                site=site.base,
                stored=read_facts(store, config, [r.result for r in first.results], alert.window_end),
                store=Path(str(config.store)),  # the demo's own config: always a SQLite file
                config=config_path,
                mail=_mail_facts(alert, message, config, mailbox.port, eml, png),
                second_poll_new=sum(r.result.new_posts for r in second.results),
                seconds=time.monotonic() - started,
            )
    raise AssertionError("unreachable")  # the ExitStack does not swallow exceptions


@contextlib.contextmanager
def _step(name: str, progress: _Progress) -> Iterator[None]:
    """Name the step on the terminal; turn whatever stops it into `_StepError` naming it."""
    progress.update(name)
    try:
        yield
    except _StepError:
        raise
    except (_CheckError, MonitorError, OSError) as exc:
        raise _StepError(name, str(exc) or type(exc).__name__) from exc
    except Exception as exc:  # a bug: still say which step, and keep the traceback for -vv
        log.debug("demo_step_failed step=%r", name, exc_info=True)
        raise _StepError(name, f"internal error: {type(exc).__name__}: {exc}") from exc


def _fresh(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in OWN_FILES:
        (folder / name).unlink(missing_ok=True)


def _zone() -> str:
    try:
        ZoneInfo(ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return ZONE


def _poll(config: Config, store: Store, clock: Callable[[], datetime]) -> PollSummary:
    async def bounded() -> PollSummary:
        return await asyncio.wait_for(poll_once(config, store, config.sources, clock=clock), POLL_TIMEOUT_S)

    summary = asyncio.run(bounded())
    failed = [r.result for r in summary.results if not r.result.ok]
    if failed:
        raise _CheckError("; ".join(f"source {r.source} failed: {r.error}" for r in failed))
    return summary


def _sent_spike(store: Store) -> AlertRow:
    spikes = store.alerts(kind=AlertKind.SPIKE)
    if not spikes:
        raise _CheckError("the detector raised no spike alert (see `monitor stats` with the demo's config)")
    alert = spikes[-1]  # newest first: the first one raised
    if alert.status != "sent":
        raise _CheckError(f"alert #{alert.id} is {alert.status}, not sent: {alert.error or 'no error recorded'}")
    return alert


def _received(mailbox: Mailbox, alert: AlertRow) -> tuple[EmailMessage, bytes]:
    if not mailbox.wait(MAIL_WAIT_S):
        raise _CheckError(f"the local SMTP server received nothing within {MAIL_WAIT_S:g} s")
    for raw in mailbox.messages:
        message = email.message_from_bytes(raw, policy=policy.default)
        if isinstance(message, EmailMessage) and message["X-Monitor-Alert"] == f"spike #{alert.id}":
            return message, raw
    raise _CheckError(f"the local SMTP server received {len(mailbox.messages)} message(s), none for alert #{alert.id}")


def _save(folder: Path, raw: bytes, message: EmailMessage) -> tuple[Path, Path | None]:
    eml = folder / EML
    eml.write_bytes(raw)
    for part in message.walk():
        if part.get_content_type() == "image/png" and isinstance(part, EmailMessage):
            png = folder / PNG
            png.write_bytes(part.get_content())
            return eml, png
    return eml, None


def _mail_facts(
    alert: AlertRow, message: EmailMessage, config: Config, port: int, eml: Path, png: Path | None
) -> MailFacts:
    email_config = config.alerts.email
    return MailFacts(
        alert_id=alert.id,
        subject=str(message["Subject"]),
        recipients=tuple(email_config.to) if email_config else (),
        smtp=f"127.0.0.1:{port}",
        eml=eml,
        png=png,
    )


class _Progress:
    """A spinner naming the current step, on a terminal only (quiet when the output is piped)."""

    def __init__(self, *, enabled: bool) -> None:
        self._status = Console(stderr=True).status("") if enabled else None

    def __enter__(self) -> _Progress:
        if self._status is not None:
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def update(self, step: str) -> None:
        if self._status is not None:
            self._status.update(f"monitor demo: {step} …")


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """The summary tells the story; per-stage log lines only with -vv (debug)."""
    logger = logging.getLogger("monitor")
    previous = logger.level
    if logger.getEffectiveLevel() > logging.DEBUG:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextlib.contextmanager
def _loopback_without_proxy() -> Iterator[None]:
    """The fetcher honours HTTP(S)_PROXY; a proxy cannot reach this machine's 127.0.0.1, so bypass it."""
    names = ("NO_PROXY", "no_proxy")
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ[name] = ",".join(part for part in (saved[name], "127.0.0.1", "localhost") if part)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
