"""Alerts end to end with a real SMTP server (aiosmtpd) on 127.0.0.1 and a real store."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from monitor import dedupe
from monitor.config import Config
from monitor.normalize import content_hash
from monitor.outbox import Outbox
from monitor.store import Store, open_store
from monitor.types import AlertKind, FetchRecord, FetchStatus, HealthDetails, Match, MatchedPost, Post, SourceState
from tests.conftest import NOW, SmtpServer, body_of, make_config, monitor_cmd, refused_port, write_config


@pytest.fixture
def store(any_store: Store) -> Store:
    """The outbox's tests run on each backend (SQLite, PostgreSQL)."""
    return any_store


def config(tmp_path: Path, smtp_port: int | None, extra_alerts: str = "", topics: str = "") -> Config:
    email = (
        f"""
  email:
    host: 127.0.0.1
    port: {smtp_port}
    tls: none
    sender: monitor@example.org
    to: [analyst@example.org, second@example.org]
    timeout: 5s"""
        if smtp_port
        else ""
    )
    return make_config(
        tmp_path,
        f"""
store: store.db
topics:
  separatism: [separatism, separatist*, сепаратист*]
  {topics or "weather: [rain]"}
sources:
  - {{name: news, type: feed, url: "http://127.0.0.1:9/rss"}}
  - {{name: wire, type: feed, url: "http://127.0.0.1:9/wire"}}
alerts:
  window: 1h
  baseline: 7d
  min_count: 3
  cooldown: 6h
  timezone: Asia/Tashkent
{extra_alerts}{email}
health:
  failures: 3
""",
    )


def add(
    store: Store,
    topic: str,
    times: list[datetime],
    *,
    source: str = "news",
    title: str = "Separatist rally",
    text: str | None = None,
    term: str = "separatist*",
    prefix: str = "p",
) -> None:
    posts = []
    for index, when in enumerate(times):
        body = (
            text
            if text is not None
            else (
                f"Report {prefix}{index}: a separatist rally gathered people near the "
                f"square number {index} and {prefix} in the city."
            )
        )
        post = Post(
            source=source,
            key=f"{prefix}{index}-{when.isoformat()}",
            url=f"https://example.org/{prefix}{index}",
            title=title,
            text=body,
            author=None,
            published_at=when,
            first_seen_at=when,
            content_hash=content_hash(title, body + str(index)),
        )
        posts.append(MatchedPost(post, (Match(topic, term),), dedupe.signature(title, body)))
    store.save_poll(
        state=SourceState(name=source), source_type="feed", source_url=None, posts=posts, fetches=(), now=NOW
    )


def steady_history(store: Store, topic: str = "separatism", per_day: int = 6) -> None:
    """A week of ordinary activity: `per_day` posts a day, spread over the hours."""
    times = [NOW - timedelta(days=7) + timedelta(hours=24 / per_day * i + 0.3) for i in range(7 * per_day - 2)]
    add(store, topic, [t for t in times if t < NOW - timedelta(hours=2)], prefix="h")


def burst(store: Store, count: int = 14, source: str = "news") -> None:
    add(store, "separatism", [NOW - timedelta(minutes=3 * i + 1) for i in range(count)], source=source, prefix="b")


def test_a_spike_sends_exactly_one_email_that_tells_the_story(tmp_path: Path, store: Store, smtp: SmtpServer) -> None:
    steady_history(store)
    burst(store)
    outbox = Outbox(config(tmp_path, smtp.port), store)
    raised = outbox.evaluate(NOW)
    assert len(raised) == 1 and raised[0].status == "pending"
    deliveries = outbox.deliver(NOW)
    assert [d.status for d in deliveries] == ["sent"]
    assert len(smtp.sink.messages) == 1
    assert sorted(smtp.sink.envelopes[0][1]) == ["analyst@example.org", "second@example.org"]
    message = smtp.sink.parsed()[0]
    assert isinstance(message, EmailMessage)
    assert message["Subject"].startswith("[monitor] separatism: 14 posts in the last hour (expected ")
    assert message.get_content_type() == "multipart/alternative"
    text = body_of(message, "plain")
    assert "SUMMARY: separatism - 14 posts" in text and "*separatist*" in text and "https://example.org/b" in text
    alert = store.alert(raised[0].id)
    assert alert.status == "sent" and alert.attempts == 1 and alert.sent_at == NOW
    assert alert.message_id == message["Message-ID"]
    # within the cooldown the same spike raises nothing more, and nothing is re-sent
    assert outbox.evaluate(NOW + timedelta(minutes=30)) == []
    assert outbox.deliver(NOW + timedelta(minutes=30)) == []
    assert len(smtp.sink.messages) == 1


def test_the_chart_is_an_inline_png_referenced_by_the_html(tmp_path: Path, store: Store, smtp: SmtpServer) -> None:
    steady_history(store)
    burst(store)
    outbox = Outbox(config(tmp_path, smtp.port), store)
    outbox.evaluate(NOW)
    outbox.deliver(NOW)
    message = smtp.sink.parsed()[0]
    assert isinstance(message, EmailMessage)
    html_part = message.get_body(("html",))
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1
    cid = images[0]["Content-ID"].strip("<>")
    assert images[0].get_content_disposition() == "inline"
    assert images[0].get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    assert html_part is not None and f'src="cid:{cid}"' in html_part.get_content()


def test_a_steady_topic_sends_nothing(tmp_path: Path, store: Store, smtp: SmtpServer) -> None:
    steady_history(store, per_day=24)
    add(store, "separatism", [NOW - timedelta(minutes=20)], prefix="now")  # one post this hour, as usual
    outbox = Outbox(config(tmp_path, smtp.port), store)
    assert outbox.evaluate(NOW) == []
    assert outbox.deliver(NOW) == [] and smtp.sink.messages == []


def test_cold_start_alerts_at_min_count_not_below(tmp_path: Path, store: Store, smtp: SmtpServer) -> None:
    outbox = Outbox(config(tmp_path, smtp.port), store)
    add(store, "separatism", [NOW - timedelta(minutes=5), NOW - timedelta(minutes=9)], prefix="a")
    assert outbox.evaluate(NOW) == []  # 2 < min_count
    add(store, "separatism", [NOW - timedelta(minutes=2)], prefix="c")
    assert len(outbox.evaluate(NOW)) == 1


def test_old_history_alerts_on_nothing(tmp_path: Path, store: Store, smtp: SmtpServer) -> None:
    """A first poll that brings a week of history, with a burst three days ago, raises nothing now."""
    steady_history(store)
    add(store, "separatism", [NOW - timedelta(days=3, minutes=i) for i in range(30)], prefix="old")
    assert Outbox(config(tmp_path, smtp.port), store).evaluate(NOW) == []


def test_cooldown_then_a_new_spike_alerts_again(tmp_path: Path, store: Store, smtp: SmtpServer) -> None:
    steady_history(store)
    burst(store)
    outbox = Outbox(config(tmp_path, smtp.port), store)
    assert len(outbox.evaluate(NOW)) == 1
    later = NOW + timedelta(hours=7)
    add(store, "separatism", [later - timedelta(minutes=2 * i + 1) for i in range(15)], prefix="second")
    assert len(outbox.evaluate(later)) == 1


def test_smtp_down_then_up_sends_exactly_one_email(tmp_path: Path, store: Store) -> None:
    port = refused_port()
    steady_history(store)
    burst(store)
    outbox = Outbox(config(tmp_path, port), store)
    (alert_id,) = [a.id for a in outbox.evaluate(NOW)]
    first = outbox.deliver(NOW)
    assert first[0].status == "retry" and "refused the connection" in first[0].detail
    row = store.alert(alert_id)
    assert (
        row.status == "pending"
        and row.attempts == 1
        and row.error
        and row.next_attempt_at == NOW + timedelta(minutes=1)
    )
    assert outbox.deliver(NOW + timedelta(seconds=30)) == []  # not due yet
    server = SmtpServer(port).start()
    try:
        second = outbox.deliver(NOW + timedelta(minutes=2))
        assert [d.status for d in second] == ["sent"]
        assert outbox.deliver(NOW + timedelta(minutes=5)) == []
        assert len(server.sink.messages) == 1
        row = store.alert(alert_id)
        assert row.status == "sent" and row.attempts == 2
        assert server.sink.parsed()[0]["Message-ID"] == row.message_id
    finally:
        server.stop()


def test_a_refusing_server_is_retried_then_failed_after_max_attempts(
    tmp_path: Path, store: Store, smtp: SmtpServer
) -> None:
    smtp.sink.fail_with = "451 4.3.0 try again later"
    steady_history(store)
    burst(store)
    cfg = config(tmp_path, smtp.port, extra_alerts="  max_attempts: 3\n")
    outbox = Outbox(cfg, store)
    (alert_id,) = [a.id for a in outbox.evaluate(NOW)]
    now = NOW
    statuses = []
    for _ in range(5):
        statuses += [d.status for d in outbox.deliver(now)]
        now += timedelta(hours=2)
    assert statuses == ["retry", "retry", "failed"]
    row = store.alert(alert_id)
    assert row.status == "failed" and row.attempts == 3 and "451" in (row.error or "")


def test_scraped_text_cannot_inject_headers_or_script(tmp_path: Path, store: Store, smtp: SmtpServer) -> None:
    evil = "Separatist news\r\nBcc: victim@example.net\r\nX-Evil: 1 <script>alert(1)</script>"
    add(
        store,
        "separatism",
        [NOW - timedelta(minutes=i + 1) for i in range(4)],
        title=evil,
        text="<script>document.location='https://evil.example'</script> separatist & <b>bold</b>",
        prefix="x",
    )
    outbox = Outbox(config(tmp_path, smtp.port), store)
    outbox.evaluate(NOW)
    outbox.deliver(NOW)
    raw = smtp.sink.messages[0]
    message = smtp.sink.parsed()[0]
    assert isinstance(message, EmailMessage)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert sorted(smtp.sink.envelopes[0][1]) == ["analyst@example.org", "second@example.org"]
    html = body_of(message, "html")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert b"\r\nBcc:" not in raw


def test_a_cyrillic_topic_and_kazakh_title_decode_in_the_received_message(
    tmp_path: Path, store: Store, smtp: SmtpServer
) -> None:
    cfg = config(tmp_path, smtp.port, topics='халық-кеңесі: ["Халық кеңес*"]')
    title = "Халық кеңесі жиналды: сепаратисты в Петропавловске"
    add(
        store,
        "халық-кеңесі",
        [NOW - timedelta(minutes=i + 1) for i in range(5)],
        title=title,
        text="Халық кеңесі мәлімдеме жасады. Народный совет провёл заседание.",
        term="Халық кеңес*",
        prefix="k",
    )
    outbox = Outbox(cfg, store)
    outbox.evaluate(NOW)
    outbox.deliver(NOW)
    message = smtp.sink.parsed()[0]
    assert isinstance(message, EmailMessage)
    assert (
        message["Subject"] == "[monitor] халық-кеңесі: 5 posts in the last 15 minutes (expected 0.0)"
    )  # the scale that fired
    text = body_of(message, "plain")
    assert title in text and "*Халық кеңесі*" in text
    assert all(ord(c) < 128 for c in smtp.sink.messages[0].decode("ascii"))  # properly encoded on the wire


def test_mail_off_records_alerts_without_sending(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    burst(store)
    with caplog.at_level("INFO"):
        outbox = Outbox(config(tmp_path, None), store)
    assert "mail_off" in caplog.text
    (alert_id,) = [a.id for a in outbox.evaluate(NOW)]
    assert [d.status for d in outbox.deliver(NOW)] == ["off"]
    row = store.alert(alert_id)
    assert row.status == "pending" and "mail is off" in (row.error or "")


def fail_source(store: Store, name: str, when: datetime, failures: int, error: str = "HTTP 500 Server Error") -> None:
    state = SourceState(name=name, failures=failures, last_error=error, last_error_at=when)
    store.record_failure(
        state=state,
        source_type="feed",
        source_url="http://127.0.0.1:9/rss",
        fetches=(FetchRecord(name, "http://127.0.0.1:9/rss", when, FetchStatus.ERROR, 500, error=error),),
        now=when,
    )


def test_a_broken_source_sends_one_health_email_and_one_when_it_recovers(
    tmp_path: Path, store: Store, smtp: SmtpServer
) -> None:
    outbox = Outbox(config(tmp_path, smtp.port), store)
    for n in (1, 2):
        fail_source(store, "news", NOW + timedelta(minutes=10 * n), n)
        assert outbox.evaluate(NOW + timedelta(minutes=10 * n)) == []
    for n in (3, 4, 5):  # reaching health.failures: one alert, not one per poll
        fail_source(store, "news", NOW + timedelta(minutes=10 * n), n)
        outbox.evaluate(NOW + timedelta(minutes=10 * n))
        outbox.deliver(NOW + timedelta(minutes=10 * n))
    assert len(smtp.sink.messages) == 1
    broken = smtp.sink.parsed()[0]
    assert "source news is failing (3 polls in a row)" in broken["Subject"]
    later = NOW + timedelta(hours=2)
    store.save_poll(
        state=SourceState(name="news", last_ok_at=later),
        source_type="feed",
        source_url=None,
        posts=(),
        fetches=(),
        now=later,
    )
    outbox.evaluate(later)
    outbox.deliver(later)
    assert len(smtp.sink.messages) == 2
    assert smtp.sink.parsed()[1]["Subject"] == "[monitor] source news works again"
    details = [a.details for a in store.alerts(kind=AlertKind.HEALTH)]
    assert [d.state for d in details if isinstance(d, HealthDetails)] == ["recovered", "broken"]


def test_the_daily_digest_is_sent_once_at_its_time(tmp_path: Path, store: Store, smtp: SmtpServer) -> None:
    steady_history(store)
    cfg = config(tmp_path, smtp.port, extra_alerts='  digest: "08:00"\n')
    outbox = Outbox(cfg, store)
    almaty_7am = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 07:00 in Asia/Tashkent (UTC+5)
    assert outbox.evaluate(almaty_7am) == []
    at_8 = almaty_7am + timedelta(hours=1, minutes=1)
    assert len(outbox.evaluate(at_8)) == 1
    assert outbox.evaluate(at_8 + timedelta(hours=3)) == []  # once a day
    outbox.deliver(at_8)
    digest = smtp.sink.parsed()[0]
    assert isinstance(digest, EmailMessage)
    assert digest["Subject"].startswith("[monitor] daily digest 2026-03-02: separatism")
    text = body_of(digest, "plain")
    assert "separatism:" in text and "per day" in text and "Every source answered" in text
    assert len(outbox.evaluate(at_8 + timedelta(days=1))) == 1


@pytest.mark.slow
def test_killed_mid_send_and_restarted_sends_no_duplicate(tmp_path: Path) -> None:
    """A poll killed while the SMTP conversation is under way, then run again: exactly one email."""
    port = refused_port()
    path = write_config(
        tmp_path,
        f"""
store: store.db
topics:
  separatism: [separatist*]
sources:
  - {{name: news, type: feed, url: "http://127.0.0.1:{refused_port()}/rss"}}
alerts:
  min_count: 3
  email: {{host: 127.0.0.1, port: {port}, sender: m@example.org, to: [a@example.org], timeout: 30s}}
""",
    )
    now = datetime.now(UTC)
    with open_store(tmp_path / "store.db") as store:
        add(store, "separatism", [now - timedelta(minutes=i + 1) for i in range(6)], prefix="live")
    server = SmtpServer(port)
    server.sink.stall_rcpt = 20  # the client will be waiting at RCPT when we kill it
    server.start()
    try:
        proc = subprocess.Popen(
            monitor_cmd(path, "poll"),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        message_id = None
        while time.monotonic() < deadline and message_id is None:  # wait until the send has begun
            time.sleep(0.2)
            with open_store(tmp_path / "store.db", readonly=True) as store:
                rows = store.alerts()
                message_id = rows[0].message_id if rows else None
        assert message_id is not None
        assert server.sink.rcpt_seen.wait(30)  # the client waits at RCPT: the send is under way
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert server.sink.messages == []
        server.sink.stall_rcpt = 0
        done = subprocess.run(
            monitor_cmd(path, "poll"), cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        assert len(server.sink.messages) == 1
        received = server.sink.parsed()[0]
        assert received["Message-ID"] == message_id
        with open_store(tmp_path / "store.db") as store:
            (alert,) = store.alerts()
            assert alert.status == "sent" and alert.message_id == message_id
    finally:
        server.stop()


def test_an_html_source_whose_selectors_stop_matching_raises_one_health_alert(
    tmp_path: Path, store: Store, smtp: SmtpServer
) -> None:
    outbox = Outbox(config(tmp_path, smtp.port), store)
    note = "items selector 'article.post' matched nothing on http://127.0.0.1:9/rss"
    for minutes in (10, 20, 30):  # polls succeed but the layout changed: the collector's health note stays
        when = NOW + timedelta(minutes=minutes)
        store.save_poll(
            state=SourceState(name="news", last_ok_at=when, health=note),
            source_type="html",
            source_url=None,
            posts=(),
            fetches=(),
            now=when,
        )
        outbox.evaluate(when)
        outbox.deliver(when)
    assert len(smtp.sink.messages) == 1
    message = smtp.sink.parsed()[0]
    assert message["Subject"] == "[monitor] source news answers but yields nothing usable"
    assert "matched nothing" in body_of(message, "plain")
