"""Notify channels through Apprise with real parts: webhook receivers on 127.0.0.1 (`json://`, `form://`), an
ntfy-compatible endpoint, the aiosmtpd server, a real store. Routing, one delivery per channel, independent
retries, the URL kept out of logs and the store, links into Datasette."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from monitor import delivery
from monitor.config import Config
from monitor.delivery import Route, channels_for, takes
from monitor.outbox import Outbox
from monitor.store import Store
from monitor.types import AlertKind, AlertStatus, NewAlert
from tests.conftest import NOW, HookServer, SmtpServer, body_of, make_config, refused_port, run_monitor, write_config
from tests.test_alerts import add, burst, steady_history


@pytest.fixture
def store(any_store: Store) -> Store:
    """The channels' outbox runs on each backend (SQLite, PostgreSQL)."""
    return any_store


PNG = b"\x89PNG\r\n\x1a\n"


def channels_config(
    tmp_path: Path,
    smtp_port: int | None,
    notify: str,
    *,
    email_extra: str = "",
    alerts_extra: str = "",
) -> Config:
    email = (
        f"""
  email:
    host: 127.0.0.1
    port: {smtp_port}
    sender: monitor@example.org
    to: [analyst@example.org]
    timeout: 5s
{email_extra}"""
        if smtp_port
        else ""
    )
    return make_config(
        tmp_path,
        f"""
store: store.db
topics:
  separatism: [separatism, separatist*]
  weather: [rain, storm*]
sources:
  - {{name: news, type: feed, url: "http://127.0.0.1:9/rss"}}
alerts:
  min_count: 3
  timezone: Asia/Almaty
{alerts_extra}{email}
  notify:
{notify}
""",
    )


def weather_burst(store: Store, count: int = 6) -> None:
    add(
        store,
        "weather",
        [NOW - timedelta(minutes=4 * i + 2) for i in range(count)],
        title="Storm warning",
        text="A storm warning for the region, heavy rain expected.",
        term="storm*",
        prefix="w",
    )


# ---------------------------------------------------------------------------------------------- the routing rule
def test_topics_limit_topic_alerts_and_kinds_limit_every_alert() -> None:
    only_sep = Route("tg", topics=("separatism",))
    assert takes(only_sep, "spike", "separatism") and not takes(only_sep, "spike", "weather")
    assert takes(only_sep, "health", None) and takes(only_sep, "digest", None)  # no topic: kinds alone decide
    spikes = Route("slack", kinds=("spike", "campaign"))
    assert takes(spikes, "spike", "weather") and takes(spikes, "campaign", None) and not takes(spikes, "health", None)
    both = Route("ops", topics=("weather",), kinds=("spike",))
    assert takes(both, "spike", "weather") and not takes(both, "spike", "separatism")
    assert not takes(both, "digest", None)
    routes = [Route("email"), only_sep, spikes, both]
    assert channels_for(routes, "spike", "weather") == ("email", "slack", "ops")
    assert channels_for(routes, "health", None) == ("email", "tg")


# ---------------------------------------------------------------------------------------------- delivery
def test_one_spike_reaches_every_channel_once_each_in_its_own_form(
    tmp_path: Path, store: Store, smtp: SmtpServer, hook: HookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_JSON", hook.url("json", "hooks/json"))
    monkeypatch.setenv("HOOK_FORM", hook.url("form", "hooks/form"))
    monkeypatch.setenv("HOOK_NTFY", hook.url("ntfy", "monitor-alerts"))
    cfg = channels_config(
        tmp_path,
        smtp.port,
        "    - {name: webhook, url_env: HOOK_JSON}\n"
        "    - {name: forms, url_env: HOOK_FORM}\n"
        "    - {name: phone, url_env: HOOK_NTFY}",
    )
    steady_history(store)
    burst(store)
    outbox = Outbox(cfg, store)
    assert outbox.channels == ("email", "webhook", "forms", "phone")
    (alert,) = outbox.evaluate(NOW)
    assert [d.channel for d in store.deliveries(alert.id)] == ["email", "webhook", "forms", "phone"]
    results = outbox.deliver(NOW)
    assert sorted((d.channel, d.status) for d in results) == [
        ("email", "sent"),
        ("forms", "sent"),
        ("phone", "sent"),
        ("webhook", "sent"),
    ]
    assert len(smtp.sink.messages) == 1
    by_path = {m["path"]: m for m in hook.messages}
    assert sorted(by_path) == ["/hooks/form", "/hooks/json", "/monitor-alerts"]
    for message in by_path.values():
        assert message["title"].startswith("[monitor] separatism: 14 posts in the last hour (expected ")
        text = message["message"]
        assert text.startswith("separatism: 14 posts in the last hour, expected ")
        assert text.count("https://example.org/b") == 3  # the top 3 stories, each with its link
        assert "4. " not in text
        assert f"Alert #{alert.id}. Every post of the window: monitor search --topic separatism --since" in text
        assert message["files"]["chart.png"].startswith(PNG)  # the chart, as an attachment
    row = store.alert(alert.id)
    assert row.status is AlertStatus.SENT and all(d.status is AlertStatus.SENT for d in store.deliveries(alert.id))
    # nothing is sent twice
    assert outbox.deliver(NOW + timedelta(hours=1)) == []
    assert len(hook.messages) == 3 and len(smtp.sink.messages) == 1


def test_routing_by_topics_and_kinds_for_email_and_channels(
    tmp_path: Path, store: Store, smtp: SmtpServer, hook: HookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SEP", hook.url("json", "sep"))
    monkeypatch.setenv("HOOK_SPIKES", hook.url("json", "spikes"))
    cfg = channels_config(
        tmp_path,
        smtp.port,
        "    - {name: sep-only, url_env: HOOK_SEP, topics: [separatism]}\n"
        "    - {name: spikes, url_env: HOOK_SPIKES, kinds: [spike]}",
        email_extra="    topics: [weather]\n",
    )
    burst(store)
    weather_burst(store)
    outbox = Outbox(cfg, store)
    raised = {a.topic: a for a in outbox.evaluate(NOW)}
    assert [d.channel for d in store.deliveries(raised["separatism"].id)] == ["sep-only", "spikes"]
    assert [d.channel for d in store.deliveries(raised["weather"].id)] == ["email", "spikes"]
    outbox.deliver(NOW)
    assert sorted((m["path"], m["title"].split(":")[0]) for m in hook.messages) == [
        ("/sep", "[monitor] separatism"),
        ("/spikes", "[monitor] separatism"),
        ("/spikes", "[monitor] weather"),
    ]
    assert [m["Subject"].split(":")[0] for m in smtp.sink.parsed()] == ["[monitor] weather"]
    # a health alert has no topic: email (topics only) and sep-only (topics only) take it, spikes (kinds) does not
    health = store.insert_alert(
        NewAlert(kind=AlertKind.HEALTH, source="news"),
        created_at=NOW,
        channels=delivery.channels_for(outbox.routes, "health", None),
    )
    assert [d.channel for d in store.deliveries(health.id)] == ["email", "sep-only"]


def test_an_alert_no_channel_takes_is_recorded_as_routed_nowhere(
    tmp_path: Path, store: Store, smtp: SmtpServer
) -> None:
    cfg = channels_config(tmp_path, smtp.port, "    []", email_extra="    topics: [weather]\n")
    burst(store)
    outbox = Outbox(cfg, store)
    (alert,) = outbox.evaluate(NOW)
    assert store.deliveries(alert.id) == []
    row = store.alert(alert.id)
    assert row.status is AlertStatus.SENT and row.attempts == 0 and row.sent_at is None
    assert "routed to no channel" in (row.error or "")
    assert outbox.deliver(NOW) == [] and smtp.sink.messages == []


def test_alerts_recorded_before_a_channel_existed_get_the_channels_that_take_them(
    tmp_path: Path, store: Store, hook: HookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    burst(store)
    weather_burst(store)
    Outbox(channels_config(tmp_path, None, "    []"), store).evaluate(NOW)  # no channel at all: they wait
    assert {a.status for a in store.alerts()} == {AlertStatus.PENDING}
    monkeypatch.setenv("HOOK_SEP", hook.url("json", "sep"))
    later = Outbox(channels_config(tmp_path, None, "    - {name: sep, url_env: HOOK_SEP, topics: [separatism]}"), store)
    later.deliver(NOW)
    by_topic = {a.topic: a for a in store.alerts()}
    assert by_topic["separatism"].status is AlertStatus.SENT and len(hook.messages) == 1
    weather = by_topic["weather"]
    assert weather.status is AlertStatus.SENT and "routed to no channel" in (weather.error or "")


def test_a_channel_down_then_up_gets_exactly_one_message_and_never_delays_the_email(
    tmp_path: Path, store: Store, smtp: SmtpServer, hook: HookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK", hook.url("json", "hook"))
    cfg = channels_config(tmp_path, smtp.port, "    - {name: webhook, url_env: HOOK}")
    steady_history(store)
    burst(store)
    outbox = Outbox(cfg, store)
    (alert,) = outbox.evaluate(NOW)
    hook.status = 503
    first = {d.channel: d for d in outbox.deliver(NOW)}
    assert first["email"].status == "sent" and len(smtp.sink.messages) == 1
    assert first["webhook"].status == "retry" and "503" in first["webhook"].detail
    rows = {d.channel: d for d in store.deliveries(alert.id)}
    assert rows["webhook"].next_attempt_at == NOW + timedelta(minutes=1) and rows["webhook"].attempts == 1
    assert store.alert(alert.id).status is AlertStatus.PENDING  # not every channel has it yet
    assert outbox.deliver(NOW + timedelta(seconds=30)) == []  # not due yet
    hook.status = 200
    second = outbox.deliver(NOW + timedelta(minutes=2))
    assert [(d.channel, d.status) for d in second] == [("webhook", "sent")]
    assert outbox.deliver(NOW + timedelta(minutes=10)) == []
    assert len(hook.messages) == 1 and hook.refused == 1 and len(smtp.sink.messages) == 1
    rows = {d.channel: d for d in store.deliveries(alert.id)}
    assert (rows["email"].attempts, rows["webhook"].attempts) == (1, 2)
    assert store.alert(alert.id).status is AlertStatus.SENT


def test_a_stalled_webhook_does_not_hold_back_the_email_of_the_next_alert(
    tmp_path: Path, store: Store, smtp: SmtpServer, hook: HookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two alerts on email and a webhook; the webhook stalls on the first until both emails are out (or 15 s)."""
    seen: list[int] = []

    def stall(message: dict[str, Any]) -> bool:
        if not seen:
            deadline = time.monotonic() + 15
            while len(smtp.sink.messages) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        seen.append(len(smtp.sink.messages))
        return True

    hook.hold = stall
    monkeypatch.setenv("HOOK", hook.url("json", "hook"))
    cfg = channels_config(tmp_path, smtp.port, "    - {name: webhook, url_env: HOOK}")
    burst(store)
    weather_burst(store)
    outbox = Outbox(cfg, store)
    assert len(outbox.evaluate(NOW)) == 2
    results = outbox.deliver(NOW)
    assert sorted(d.status for d in results) == ["sent"] * 4
    assert seen[0] == 2  # both emails were sent while the webhook held its first request
    assert len(hook.messages) == 2


def test_a_channel_that_gives_up_fails_the_alert_while_the_email_is_sent(
    tmp_path: Path, store: Store, smtp: SmtpServer, hook: HookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK", hook.url("form", "hook"))
    cfg = channels_config(
        tmp_path, smtp.port, "    - {name: webhook, url_env: HOOK}", alerts_extra="  max_attempts: 2\n"
    )
    hook.status = 500
    burst(store)
    outbox = Outbox(cfg, store)
    (alert,) = outbox.evaluate(NOW)
    statuses = []
    now = NOW
    for _ in range(4):
        statuses += [(d.channel, d.status) for d in outbox.deliver(now)]
        now += timedelta(hours=2)
    assert statuses == [("email", "sent"), ("webhook", "retry"), ("webhook", "failed")]
    row = store.alert(alert.id)
    assert row.status is AlertStatus.FAILED and (row.error or "").startswith("webhook: ")
    assert len(smtp.sink.messages) == 1 and hook.messages == []


def test_the_url_and_its_token_are_never_logged_or_stored(
    tmp_path: Path,
    store: Store,
    hook: HookServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = "tok-S3CRET-7f3a9c"
    monkeypatch.setenv("HOOK", hook.url("json", f"hook/{token}") + f"?secret={token}x")
    monkeypatch.setenv("NTFY", f"ntfy://user:{token}@127.0.0.1:{refused_port()}/alerts")
    cfg = channels_config(tmp_path, None, "    - {name: webhook, url_env: HOOK}\n    - {name: phone, url_env: NTFY}")
    hook.status = 500
    burst(store)
    with caplog.at_level("DEBUG"):
        outbox = Outbox(cfg, store)
        (alert,) = outbox.evaluate(NOW)
        results = {d.channel: d for d in outbox.deliver(NOW)}
    assert results["webhook"].status == "retry" and "500" in results["webhook"].detail
    assert results["phone"].status == "retry" and "Connection error" in results["phone"].detail
    errors = [d.error or "" for d in store.deliveries(alert.id)] + [store.alert(alert.id).error or ""]
    assert all(errors)
    assert token not in caplog.text and not any(token in e for e in errors)
    store.close()
    for path in tmp_path.glob("store.db*"):
        assert token.encode() not in path.read_bytes(), path


def test_an_unset_variable_or_unknown_scheme_is_a_failed_send_that_says_why(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOOK_UNSET", raising=False)
    monkeypatch.setenv("HOOK_BAD", "nosuchservice://abc/def")
    monkeypatch.setenv("HOOK_WARNED", f"json://127.0.0.1:{refused_port()}/hook?method=FETCH")
    cfg = channels_config(
        tmp_path,
        None,
        "    - {name: unset, url_env: HOOK_UNSET}\n    - {name: bad, url_env: HOOK_BAD}\n"
        "    - {name: warned, url_env: HOOK_WARNED}",
    )
    burst(store)
    outbox = Outbox(cfg, store)
    outbox.evaluate(NOW)
    results = {d.channel: d for d in outbox.deliver(NOW)}
    assert results["unset"].status == "retry" and "HOOK_UNSET is not set in the environment" in results["unset"].detail
    assert results["bad"].status == "retry" and "'nosuchservice' is not one Apprise knows" in results["bad"].detail
    # what Apprise warned about is the failure's reason (with the URL's values masked: a query value may be a token)
    assert results["warned"].status == "retry" and "The method specified (***) is invalid" in results["warned"].detail


# ---------------------------------------------------------------------------------------------- links
def test_with_link_base_the_email_and_the_notice_link_to_the_alerts_posts(
    tmp_path: Path, store: Store, smtp: SmtpServer, hook: HookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK", hook.url("json", "hook"))
    cfg = channels_config(
        tmp_path,
        smtp.port,
        "    - {name: webhook, url_env: HOOK}",
        alerts_extra="  link_base: http://monitor.internal:8001/\n",
    )
    steady_history(store)
    burst(store)
    outbox = Outbox(cfg, store)
    (alert,) = outbox.evaluate(NOW)
    outbox.deliver(NOW)
    posts = f"http://monitor.internal:8001/store/alert_posts?alert_id={alert.id}"
    message = smtp.sink.parsed()[0]
    assert isinstance(message, EmailMessage)
    text = body_of(message, "plain")
    html = body_of(message, "html")
    assert f"Every post of the window: {posts}" in text and "monitor search" not in text
    assert f"The alert: http://monitor.internal:8001/store/alerts/{alert.id}" in text
    assert f'<a href="{posts}">' in html and "monitor search" not in html
    (notice,) = hook.messages
    assert notice["message"].endswith(f"Alert #{alert.id}, every post of the window: {posts}")


def test_the_health_email_links_to_the_failed_requests_with_link_base(
    tmp_path: Path, store: Store, smtp: SmtpServer
) -> None:
    from tests.test_alerts import fail_source

    cfg = channels_config(tmp_path, smtp.port, "    []", alerts_extra="  link_base: https://mon.example\n")
    outbox = Outbox(cfg, store)
    for n in range(1, 6):
        fail_source(store, "news", NOW + timedelta(minutes=n), n)
    outbox.evaluate(NOW + timedelta(minutes=6))
    outbox.deliver(NOW + timedelta(minutes=6))
    body = smtp.sink.parsed()[0].get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Failed requests: https://mon.example/store/fetch_errors?source=news" in text


# ---------------------------------------------------------------------------------------------- the command line
def cli_config(tmp_path: Path, smtp_port: int, notify: str) -> Path:
    return write_config(
        tmp_path,
        f"""
store: store.db
topics:
  separatism: [separatist*]
sources:
  - {{name: news, type: feed, url: "http://127.0.0.1:9/rss"}}
alerts:
  email: {{host: 127.0.0.1, port: {smtp_port}, sender: m@example.org, to: [a@example.org], timeout: 5s}}
  notify:
{notify}
""",
    )


def test_notify_test_sends_one_message_per_channel_and_says_what_happened(
    tmp_path: Path, smtp: SmtpServer, hook: HookServer
) -> None:
    token = "tok-9d8e7f6a5b"
    path = cli_config(
        tmp_path,
        smtp.port,
        "    - {name: webhook, url_env: HOOK}\n    - {name: phone, url_env: NTFY}\n    - {name: dead, url_env: DEAD}",
    )
    env = {
        "HOOK": hook.url("json", f"hook/{token}"),
        "NTFY": hook.url("ntfy", "alerts"),
        "DEAD": f"json://127.0.0.1:{refused_port()}/{token}",
    }
    done = run_monitor(path, "notify", "--test", env=env)
    assert done.returncode == 1, done.stderr  # the dead channel failed
    lines = done.stdout.splitlines()
    assert lines[0] == f"email: sent (to a@example.org via 127.0.0.1:{smtp.port})"
    assert lines[1] == "webhook: sent (JSON, Apprise URL from $HOOK)"
    assert lines[2] == "phone: sent (ntfy, Apprise URL from $NTFY)"
    assert lines[3].startswith("dead: FAILED: JSON: A Connection error occurred") and len(lines) == 4
    assert token not in done.stdout + done.stderr
    assert len(smtp.sink.messages) == 1 and smtp.sink.parsed()[0]["Subject"] == "[monitor] test message"
    assert sorted(m["path"] for m in hook.messages) == ["/", f"/hook/{token}"]  # ntfy without attachment posts to /
    assert all("This is not an alert." in m["message"] for m in hook.messages)
    assert not (tmp_path / "store.db").exists()  # a test touches no store

    one = run_monitor(path, "notify", "--test", "--channel", "webhook", "--format", "json", env=env)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout) == [
        {"channel": "webhook", "status": "sent", "detail": "JSON, Apprise URL from $HOOK"}
    ]
    unset = run_monitor(path, "notify", "--test", "--channel", "phone", env={"NTFY": ""})
    assert unset.returncode == 1 and "phone: FAILED: NTFY is not set in the environment" in unset.stdout


def test_notify_usage_errors_exit_2(tmp_path: Path, smtp: SmtpServer) -> None:
    path = cli_config(tmp_path, smtp.port, "    []")
    unknown = run_monitor(path, "notify", "--test", "--channel", "nope")
    assert unknown.returncode == 2 and "unknown channel 'nope' (channels: email)" in unknown.stderr
    assert run_monitor(path, "notify").returncode == 2
    bare = write_config(
        tmp_path, "store: s.db\ntopics: {a: [x]}\nsources: [{name: n, type: feed, url: 'http://127.0.0.1:9/'}]\n"
    )
    none = run_monitor(bare, "notify", "--test")
    assert none.returncode == 2 and "no channel is configured" in none.stderr
    assert smtp.sink.messages == []


def test_monitor_alerts_shows_each_channels_delivery(
    tmp_path: Path, smtp: SmtpServer, hook: HookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = cli_config(tmp_path, smtp.port, "    - {name: webhook, url_env: HOOK}")
    monkeypatch.setenv("HOOK", hook.url("json", "hook"))
    hook.status = 503
    from monitor.collectors import SOURCE_MODELS
    from monitor.config import load_config
    from monitor.store import open_store

    with open_store(tmp_path / "store.db") as store:
        burst(store)
        outbox = Outbox(load_config(path, source_types=SOURCE_MODELS), store)
        (alert,) = outbox.evaluate(NOW)
        outbox.deliver(NOW)
    listed = run_monitor(path, "alerts", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["id"] == alert.id and row["status"] == "pending"
    assert [(d["channel"], d["status"], d["attempts"]) for d in row["deliveries"]] == [
        ("email", "sent", 1),
        ("webhook", "pending", 1),
    ]
    assert row["deliveries"][0]["sent_at"] == "2026-03-01T12:00:00Z" and "503" in row["deliveries"][1]["error"]
    table = run_monitor(path, "alerts")
    assert "email sent; webhook pending (1 try)" in table.stdout
    csv_rows = list(csv.DictReader(io.StringIO(run_monitor(path, "alerts", "--format", "csv").stdout)))
    assert csv_rows[0]["channels"] == "email sent; webhook pending (1 try)"


def test_deliveries_on_a_channel_removed_from_the_config_say_why_they_wait(
    tmp_path: Path, store: Store, smtp: SmtpServer, hook: HookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK", hook.url("json", "hook"))
    burst(store)
    with_hook = Outbox(channels_config(tmp_path, smtp.port, "    - {name: webhook, url_env: HOOK}"), store)
    (alert,) = with_hook.evaluate(NOW)
    without = Outbox(channels_config(tmp_path, smtp.port, "    []"), store)  # the webhook was removed
    assert [(d.channel, d.status) for d in without.deliver(NOW)] == [("email", "sent")]
    rows = {d.channel: d for d in store.deliveries(alert.id)}
    assert rows["webhook"].status is AlertStatus.PENDING and "'webhook' is not in the config" in (
        rows["webhook"].error or ""
    )
    assert store.alert(alert.id).status is AlertStatus.PENDING and "webhook:" in (store.alert(alert.id).error or "")
    assert [(d.channel, d.status) for d in with_hook.deliver(NOW + timedelta(minutes=1))] == [("webhook", "sent")]
    assert store.alert(alert.id).status is AlertStatus.SENT and len(hook.messages) == 1


def test_health_and_digest_notices_are_short_and_link_with_link_base() -> None:
    from zoneinfo import ZoneInfo

    from monitor import emails, notices

    zone = ZoneInfo("Asia/Almaty")
    broken = emails.HealthReport(
        alert_id=7,
        source="news",
        source_type="feed",
        state="broken",
        failures=5,
        last_error="HTTP 503",
        last_ok_at=None,
        since=NOW,
        url="https://news.example/rss",
        zone=zone,
    )
    notice = notices.health_notice(broken)
    assert notice.title == "[monitor] source news is failing (5 polls in a row)"
    assert notice.body.splitlines() == [
        'Source "news" has failed 5 polls in a row. Last error: HTTP 503',
        "Health alert #7. Check it with: monitor status; monitor check --probe",
    ]
    linked = notices.health_notice(
        replace(broken, state="recovered", link="http://m:8001/store/fetch_errors?source=news")
    )
    assert linked.body.splitlines() == [
        'Source "news" works again after 5 failed polls.',
        "Health alert #7, its failed requests: http://m:8001/store/fetch_errors?source=news",
    ]
    digest = emails.DigestReport(
        day="2026-03-01",
        topics=(emails.DigestTopic("separatism", 12, 4, 3.5, 1.0, ()),),
        alerts=("12:00 separatism: 12 posts (expected 2.0), sent",),
        failing=(("news", 5, "HTTP 503"),),
        zone=zone,
        zone_name="Asia/Almaty",
        link="http://m:8001/store/latest_matches?topic=",
    )
    assert notices.digest_notice(digest).body.splitlines() == [
        "Daily digest for the 24 hours up to 2026-03-01 (Asia/Almaty):",
        "- separatism: 12 mentions, 4 stories (7-day average 3.5 a day)",
        "1 alert raised; 1 source failing.",
        "Latest matches: http://m:8001/store/latest_matches?topic=",
    ]
