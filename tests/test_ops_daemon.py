"""The daemon as operators watch and steer it: Prometheus metrics scraped from a real `monitor run`, and SIGHUP
reloading its config (real processes, loopback servers)."""

from __future__ import annotations

import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import RawServer, monitor_cmd, respond, run_monitor, start_daemon, wait_for, write_config
from tests.test_daemon import FEED

RSS = {"Content-Type": "application/rss+xml"}
NEW_ITEM = b"<item><guid>a2</guid><title>Weather</title><link>http://example.org/a2</link></item>"


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # a loopback URL from the log
        assert response.headers["Content-Type"].startswith("text/plain")
        body: bytes = response.read()
        return body.decode()


def value(text: str, sample: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return None


@pytest.mark.slow
def test_metrics_are_scraped_from_a_running_daemon(
    tmp_path: Path, raw_server: RawServer, daemons: list[subprocess.Popen[bytes]]
) -> None:
    raw_server.routes["/feed"] = respond(200, FEED, RSS)
    config = write_config(
        tmp_path,
        f"""
store: store.db
topics: {{separatism: [separatist*]}}
sources:
  - {{name: news, type: feed, url: "{raw_server.url("/feed")}", interval: 1h, robots: false}}
  - {{name: broken, type: feed, url: "{raw_server.url("/missing")}", interval: 1h, robots: false}}
""",
    )
    assert run_monitor(config, "poll", "--source", "news").returncode == 0  # one post and match stored before
    raw_server.routes["/feed"] = respond(200, FEED.replace(b"</channel>", NEW_ITEM + b"</channel>"), RSS)
    log = tmp_path / "run.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            monitor_cmd(config, "run", "--metrics", "127.0.0.1:0"),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the daemon and its worker process: killed together by the fixture
        )
    daemons.append(proc)
    wait_for(lambda: "metrics_listening" in log.read_text(), "the metrics server")
    found = re.search(r"metrics_listening url=(http://127\.0\.0\.1:\d+/metrics)", log.read_text())
    assert found, log.read_text()
    url = found.group(1)
    wait_for(lambda: value(scrape(url), 'monitor_poll_failures_total{source="broken"}') == 1.0, "both first polls")
    text = scrape(url)
    assert value(text, 'monitor_polls_total{source="news"}') == 1.0
    assert value(text, 'monitor_polls_total{source="broken"}') == 1.0
    assert value(text, 'monitor_poll_failures_total{source="news"}') is None  # no failure: no series yet
    assert value(text, "monitor_posts_stored") == 2.0  # counted at start (1), then the daemon's poll added its new one
    assert value(text, 'monitor_matches_stored{topic="separatism"}') == 1.0
    assert value(text, 'monitor_fetch_duration_seconds_count{source="news"}') == 1.0
    assert (value(text, "monitor_scheduler_lateness_seconds_count") or 0) >= 2
    assert value(text, "monitor_sources") == 2.0
    assert "# TYPE monitor_alerts_raised_total counter" in text
    assert "# TYPE monitor_alerts_delivered_total counter" in text
    assert "_created" not in text
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def test_metrics_refuse_a_non_loopback_address_unless_asked(tmp_path: Path) -> None:
    config = write_config(tmp_path, "store: store.db\ntopics: {t: [x]}\nsources: []\n")
    refused = run_monitor(config, "run", "--metrics", "0.0.0.0:9108")
    assert refused.returncode == 2
    assert "not a loopback address" in refused.stderr and "--metrics-public" in refused.stderr
    bad = run_monitor(config, "run", "--metrics", "127.0.0.1:http")
    assert bad.returncode == 2 and "the port must be a number" in bad.stderr
    assert not (tmp_path / "store.db").exists()  # refused before anything started


def feed_config(path: Path, server: RawServer, sources: str, topics: str) -> None:
    path.write_text(
        f"store: store.db\ntopics: {topics}\nsources:\n"
        + "".join(
            f'  - {{name: {name}, type: feed, url: "{server.url("/" + name)}", interval: {interval}, robots: false}}\n'
            for name, interval in (part.split("=") for part in sources.split())
        ),
        encoding="utf-8",
    )


@pytest.mark.slow
def test_sighup_reloads_sources_intervals_and_topics_and_keeps_the_old_config_when_the_new_is_invalid(
    tmp_path: Path, raw_server: RawServer, daemons: list[subprocess.Popen[bytes]]
) -> None:
    for name in ("a", "b", "c"):
        raw_server.routes[f"/{name}"] = respond(200, FEED, RSS)

    def hits(name: str) -> int:
        return sum(1 for path, _ in list(raw_server.requests) if path == f"/{name}")

    config = tmp_path / "config.yaml"
    feed_config(config, raw_server, "a=1s c=1h", "{weather: [rain]}")
    log = tmp_path / "run.log"
    proc = start_daemon(config, log)
    daemons.append(proc)
    wait_for(lambda: hits("a") >= 2 and hits("c") == 1, "a polled each second, c once")

    feed_config(config, raw_server, "b=1s c=1s", "{separatism: [separatist*]}")
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "config_reloaded" in log.read_text(), "the reload")
    assert "config_reloaded sources=2 added=b removed=a changed=c topics=changed" in log.read_text()
    a_after = hits("a")
    wait_for(lambda: hits("b") >= 3 and hits("c") >= 3, "b added, c on its new 1 s interval")
    assert hits("a") <= a_after + 1  # removed: at most a poll already in flight
    db = tmp_path / "store.db"
    matched = run_monitor(config, "search", "--topic", "separatism", "--format", "json")
    assert matched.returncode == 0 and '"source": "b"' in matched.stdout  # b's posts matched with the new topics

    url = raw_server.url("/b")
    config.write_text(
        f'store: store.db\ntopics: {{t: ["a*"]}}\nsources:\n  - {{name: b, type: feed, url: "{url}", interval: abc}}\n'
    )
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload_failed" in log.read_text(), "the refused reload")
    text = log.read_text()
    assert "reload_failed problems=2: the previous config keeps running" in text
    problems = [line.split("reload_problem ", 1)[1] for line in text.splitlines() if "reload_problem" in line]
    assert len(problems) == 2, problems
    assert problems[0].startswith("topics.t") or problems[1].startswith("topics.t"), problems
    assert any(p.startswith("sources[0].interval") for p in problems), problems
    b_before = hits("b")
    wait_for(lambda: hits("b") >= b_before + 2, "b still polled by the old config")
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert "Traceback" not in log.read_text()
    assert db.exists()
