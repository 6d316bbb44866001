"""The outbox: evaluate alerts into the `alerts` table first, then mail them, retrying with backoff.

Delivery is at-least-once with one shared Message-ID: the Message-ID is recorded before the SMTP
conversation, and `sent` is committed the moment the server accepts. Only a process killed in the
instant between the server's acceptance and that commit sends a second copy, and the copy carries the
same Message-ID, which most mail systems fold into one (README: Operations, "Alerts and delivery").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from monitor import alerts as decide
from monitor import emails, mail
from monitor.config import Config
from monitor.exceptions import MailError, MonitorError
from monitor.spikes import DetectorParams, series_from_times
from monitor.store import Store
from monitor.types import AlertRow, EmailBody
from monitor.units import from_iso

log = logging.getLogger("monitor.outbox")

TOP_POSTS = 8
CHART_SPAN = timedelta(days=7)

Sender = Callable[[EmailMessage, mail.MailSettings], list[str]]


@dataclass(frozen=True)
class Delivery:
    alert_id: int
    kind: str
    status: str  # sent | retry | failed | off
    detail: str

    def line(self) -> str:
        return f"alert #{self.alert_id} ({self.kind}): {self.status}{': ' + self.detail if self.detail else ''}"


def detector_params(config: Config) -> DetectorParams:
    a = config.alerts
    return DetectorParams(window=a.window, baseline=a.baseline, min_count=a.min_count, cooldown=a.cooldown)


def mail_settings(config: Config) -> mail.MailSettings | None:
    email = config.alerts.email
    if email is None:
        return None
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


class Outbox:
    """Evaluates and delivers alerts for one config and store."""

    def __init__(self, config: Config, store: Store, *, sender: Sender = mail.send) -> None:
        self.config = config
        self.store = store
        self.sender = sender
        self.params = detector_params(config)
        self.zone = ZoneInfo(config.alerts.timezone)
        self.settings = mail_settings(config)
        if self.settings is None:
            log.info("mail_off reason='no alerts.email in the config': alerts are recorded, not mailed")

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, now: datetime, *, topics: Sequence[str] | None = None) -> list[int]:
        """Add spike, health and digest alerts that are due now; returns their ids."""
        created = self._spikes(now, topics) + self._health(now) + self._digest(now)
        for alert_id in created:
            row = self.store.alert(alert_id)
            log.info(
                "alert_raised id=%d kind=%s topic=%s source=%s count=%s expected=%s",
                row.id,
                row.kind,
                row.topic,
                row.source,
                row.count,
                row.expected,
            )
        return created

    def _spikes(self, now: datetime, topics: Sequence[str] | None) -> list[int]:
        names = list(topics) if topics is not None else [t.name for t in self.config.topics]
        step, buckets = self.params.step, self.params.buckets
        since = now - step * buckets
        series = {
            name: series_from_times(self.store.topic_times(name, since, now), now, step, buckets) for name in names
        }
        last = {}
        for name in names:
            previous = self.store.last_alert("spike", topic=name)
            last[name] = previous.created_at if previous else None
        return [self._insert(a, now) for a in decide.spike_alerts(series, last, self.params)]

    def _health(self, now: datetime) -> list[int]:
        configured = {s.name: s.type for s in self.config.sources if s.enabled}
        sources = [
            decide.SourceHealth(
                name=s.name,
                type=configured[s.name],
                failures=s.failures,
                last_error=s.last_error,
                last_ok_at=s.last_ok_at,
                last_error_at=s.last_error_at,
                note=s.health,
            )
            for s in self.store.source_states()
            if s.name in configured
        ]
        last = {}
        for source in sources:
            previous = self.store.last_alert("health", source=source.name)
            if previous is not None:
                last[source.name] = (json.loads(previous.details or "{}").get("state", "broken"), previous.created_at)
        found = decide.health_alerts(
            sources, last, failures=self.config.health.failures, quiet=self.config.alerts.cooldown, now=now
        )
        return [self._insert(a, now) for a in found]

    def _digest(self, now: datetime) -> list[int]:
        previous = self.store.last_alert("digest")
        last_day = json.loads(previous.details or "{}").get("day") if previous else None
        day = decide.digest_due(self.config.alerts.digest, self.zone, now, last_day)
        if day is None:
            return []
        alert = decide.NewAlert(
            kind="digest", window_start=now - timedelta(days=1), window_end=now, details=json.dumps({"day": day})
        )
        return [self._insert(alert, now)]

    def _insert(self, alert: decide.NewAlert, now: datetime) -> int:
        return self.store.insert_alert(
            kind=alert.kind,
            created_at=now,
            topic=alert.topic,
            source=alert.source,
            window_start=alert.window_start,
            window_end=alert.window_end,
            count=alert.count,
            expected=alert.expected,
            score=alert.score,
            details=alert.details,
        )

    # ------------------------------------------------------------------ deliver
    def deliver(self, now: datetime) -> list[Delivery]:
        """`deliver_async` for callers outside an event loop."""
        return asyncio.run(self.deliver_async(now))

    async def deliver_async(self, now: datetime) -> list[Delivery]:
        """Try every due alert once. SMTP runs in a daemon thread so the event loop (and shutdown) never waits on it;
        the store is written only from the caller's thread."""
        results = []
        for alert in self.store.due_alerts(now):
            prepared = self._prepare(alert, now)
            if isinstance(prepared, Delivery):
                results.append(prepared)
                continue
            outcome = await _in_daemon_thread(lambda p=prepared: self._send(p))  # type: ignore[misc]
            results.append(self._record(alert, now, outcome))
        return results

    def _prepare(self, alert: AlertRow, now: datetime) -> EmailMessage | Delivery:
        if self.settings is None:
            if alert.error is None:
                self.store.update_alert(alert.id, error="mail is off (no alerts.email in the config)")
            return Delivery(alert.id, alert.kind, "off", "mail is off")
        if now - alert.created_at > decide.STALE_AFTER and alert.attempts == 0:
            self.store.update_alert(
                alert.id, status="failed", error="not sent: stale (over 24 h old before mail could be attempted)"
            )
            return Delivery(alert.id, alert.kind, "failed", "stale")
        try:
            body = self.body(alert, now)
        except MonitorError as exc:
            self.store.update_alert(alert.id, status="failed", error=f"cannot compose: {exc}")
            return Delivery(alert.id, alert.kind, "failed", f"cannot compose: {exc}")
        message_id = alert.message_id
        if message_id is None:  # recorded before sending: a resend after a crash reuses it
            message_id = mail.new_message_id(self.settings.sender)
            self.store.update_alert(alert.id, message_id=message_id)
        try:
            return mail.compose(
                body,
                self.settings,
                message_id=message_id,
                now=now,
                headers=[("X-Monitor-Alert", f"{alert.kind} #{alert.id}")],
            )
        except MailError as exc:
            self.store.update_alert(alert.id, status="failed", error=str(exc))
            return Delivery(alert.id, alert.kind, "failed", str(exc))

    def _send(self, message: EmailMessage) -> list[str] | MailError:
        assert self.settings is not None
        try:
            return self.sender(message, self.settings)
        except MailError as exc:
            return exc

    def _record(self, alert: AlertRow, now: datetime, outcome: list[str] | MailError) -> Delivery:
        attempts = alert.attempts + 1
        if not isinstance(outcome, MailError):
            note = f"refused by the server: {'; '.join(outcome)}" if outcome else None
            self.store.update_alert(
                alert.id, status="sent", sent_at=now, attempts=attempts, error=note, next_attempt_at=None
            )
            log.info("alert_sent id=%d kind=%s attempts=%d", alert.id, alert.kind, attempts)
            return Delivery(alert.id, alert.kind, "sent", note or "")
        if attempts >= self.config.alerts.max_attempts:
            self.store.update_alert(
                alert.id, status="failed", attempts=attempts, error=str(outcome), next_attempt_at=None
            )
            log.error("alert_failed id=%d kind=%s attempts=%d error=%r", alert.id, alert.kind, attempts, str(outcome))
            return Delivery(alert.id, alert.kind, "failed", str(outcome))
        retry = decide.next_attempt(attempts, now)
        self.store.update_alert(alert.id, attempts=attempts, error=str(outcome), next_attempt_at=retry)
        log.warning(
            "alert_send_failed id=%d attempts=%d retry_at=%s error=%r",
            alert.id,
            attempts,
            retry.isoformat(),
            str(outcome),
        )
        return Delivery(alert.id, alert.kind, "retry", f"{outcome} (next try {retry:%H:%M:%SZ})")

    # ------------------------------------------------------------------ content
    def body(self, alert: AlertRow, now: datetime) -> EmailBody:
        if alert.kind == "spike":
            report, chart = self.spike_report(alert)
            body = emails.spike_email(report)
            images = ((emails.CHART_CID, chart),) if chart else ()
            return EmailBody(body.subject, body.text, body.html, images)
        if alert.kind == "health":
            return emails.health_email(self.health_report(alert))
        if alert.kind == "digest":
            return emails.digest_email(self.digest_report(alert, now))
        raise MonitorError(f"unknown alert kind {alert.kind!r}")

    def spike_report(self, alert: AlertRow) -> tuple[emails.SpikeReport, bytes | None]:
        assert alert.topic and alert.window_start and alert.window_end
        rows = self.store.window_posts(alert.topic, alert.window_start, alert.window_end)
        posts = stories_of(rows)
        sources: dict[str, int] = {}
        for row in rows:
            sources[row["source"]] = sources.get(row["source"], 0) + 1
        report = emails.SpikeReport(
            alert_id=alert.id,
            topic=alert.topic,
            count=alert.count or len(rows),
            expected=alert.expected or 0.0,
            score=alert.score or 0.0,
            window_start=alert.window_start,
            window_end=alert.window_end,
            baseline=self.params.baseline,
            mentions=len(rows),
            stories=len({r["cluster_id"] for r in rows}),
            sources=tuple(sorted(sources.items(), key=lambda kv: (-kv[1], kv[0]))),
            posts=emails.top_stories(posts, TOP_POSTS),
            zone=self.zone,
            zone_name=self.config.alerts.timezone,
            has_chart=True,
        )
        chart = self.chart(alert)
        return (report if chart else _without_chart(report)), chart

    def chart(self, alert: AlertRow) -> bytes | None:
        assert alert.topic and alert.window_end and alert.window_start
        end = alert.window_end
        start = end - CHART_SPAN
        hour = timedelta(hours=1)
        buckets: dict[datetime, int] = {}
        for when in self.store.topic_times(alert.topic, start, end):
            slot = start + hour * int((when - start) / hour)
            buckets[slot] = buckets.get(slot, 0) + 1
        series = [(start + hour * i, float(buckets.get(start + hour * i, 0))) for i in range(int(CHART_SPAN / hour))]
        per_hour = (alert.expected or 0.0) * hour / (alert.window_end - alert.window_start)
        from monitor.charts import Band, activity_chart  # noqa: PLC0415  # matplotlib (~35 MB) only when mailing

        try:
            return activity_chart(
                {alert.topic: series},
                bucket=hour,
                zone=self.zone,
                title=f"{alert.topic}: posts per hour, last 7 days",
                window=(alert.window_start, alert.window_end),
                band=Band(expected=per_hour, upper=max(per_hour * 2, per_hour + 2)),
                alerts=[alert.window_end],
            )
        except (ValueError, RuntimeError, OverflowError) as exc:  # a chart must never block the alert
            log.warning("chart_failed alert=%d error=%r", alert.id, str(exc))
            return None

    def health_report(self, alert: AlertRow) -> emails.HealthReport:
        details = json.loads(alert.details or "{}")
        assert alert.source
        state = self.store.source_state(alert.source)
        try:
            url = self.config.source(alert.source).url
        except KeyError:
            url = None
        since = details.get("broken_since")
        return emails.HealthReport(
            alert_id=alert.id,
            source=alert.source,
            source_type=details.get("type", ""),
            state=details.get("state", "broken"),
            failures=int(details.get("failures", alert.count or 0)),
            last_error=details.get("error") or state.last_error,
            last_ok_at=state.last_ok_at,
            since=from_iso(since) if since else None,
            url=url,
            zone=self.zone,
        )

    def digest_report(self, alert: AlertRow, now: datetime) -> emails.DigestReport:
        end = alert.window_end or now
        day_start, week_start = end - timedelta(days=1), end - timedelta(days=7)
        topics = []
        for topic in self.config.topics:
            mentions, stories = self.store.topic_count(topic.name, day_start, end)
            week_mentions, week_stories = self.store.topic_count(topic.name, week_start, end)
            top = emails.top_stories(stories_of(self.store.window_posts(topic.name, day_start, end)), 5)
            topics.append(emails.DigestTopic(topic.name, mentions, stories, week_mentions / 7, week_stories / 7, top))
        raised = [a for a in self.store.alerts(kind="spike", limit=200) if a.created_at >= day_start]
        lines = tuple(
            f"{emails.local_time(a.created_at, self.zone)} {a.topic}: {a.count} posts "
            f"(expected {a.expected or 0:.1f}), {a.status}"
            for a in reversed(raised)
        )
        failing = tuple((s.name, s.failures, s.last_error or "") for s in self.store.source_states() if s.failures)
        details = json.loads(alert.details or "{}")
        return emails.DigestReport(
            day=details.get("day", end.date().isoformat()),
            topics=tuple(topics),
            alerts=lines,
            failing=failing,
            zone=self.zone,
            zone_name=self.config.alerts.timezone,
        )


def stories_of(rows: Sequence[dict[str, Any]]) -> list[emails.AlertPost]:
    """One AlertPost per cluster (its first post), with the number of copies and their other sources."""
    clusters: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        clusters.setdefault(row["cluster_id"] or f"post{row['id']}", []).append(row)
    stories = []
    for members in clusters.values():
        first = members[0]
        others = tuple(sorted({m["source"] for m in members[1:]} - {first["source"]}))
        stories.append(
            emails.AlertPost(
                source=first["source"],
                published_at=from_iso(first["published_at"]),
                title=first["title"] or "",
                text=first["text"] or "",
                url=first["url"],
                term=first["term"],
                copies=len(members),
                copy_sources=others,
            )
        )
    return stories


def _without_chart(report: emails.SpikeReport) -> emails.SpikeReport:
    return replace(report, has_chart=False)


async def _in_daemon_thread(work: Callable[[], Any]) -> Any:
    """Run blocking work in a daemon thread: a stuck SMTP server cannot delay the daemon's shutdown."""
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

    threading.Thread(target=target, name="monitor-smtp", daemon=True).start()
    return await future


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
