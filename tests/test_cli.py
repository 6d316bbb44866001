"""The `monitor` command as a user runs it: real files, a real HTTP server on 127.0.0.1; in-process (CliRunner)
but where a real process is the point (signals, a terminal)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import RawServer, invoke, monitor_cmd, refused_port, respond, write_config

COMMANDS = {
    "run": [],
    "poll": ["--source"],
    "check": ["--probe"],
    "search": ["--topic", "--source", "--since", "--until", "--limit", "--format"],
    "stats": ["--topic", "--by", "--since", "--format"],
    "alerts": ["--format"],
    "status": [],
    "detect": ["--window", "--baseline", "--scales", "--format", "window=15m"],
    "export": ["--format", "--topic", "--since", "--until", "-o"],
    "plot": ["--topic", "--since", "--by", "-o"],
    "serve": [],
    "demo": [],
}


def feed_config(tmp_path: Path, server: RawServer, corpus: Path, more_sources: str = "") -> Path:
    server.routes["/rss"] = respond(
        200, (corpus / "rss/ru_oren-ru_windows-1251.xml").read_bytes(), {"Content-Type": "application/rss+xml"}
    )
    server.routes["/atom"] = respond(
        200, (corpus / "atom/de_heise.atom").read_bytes(), {"Content-Type": "application/atom+xml"}
    )
    return write_config(
        tmp_path,
        f"""
store: data/monitor.db
topics:
  russia: [Оренбург*, оренбург*]
  heise: [Microsoft, Java*]
sources:
  - {{name: oren, type: feed, url: "{server.url("/rss")}", robots: false}}
  - {{name: heise, type: feed, url: "{server.url("/atom")}", robots: false}}
{more_sources}
alerts:
  email: {{host: 127.0.0.1, port: {refused_port()}, sender: m@example.org, to: [a@example.org], timeout: 2s}}
""",
    )


def test_help_everywhere_lists_the_documented_flags(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    top = invoke(config, "--help")
    assert top.returncode == 0 and "--config" in top.stdout
    for command, flags in COMMANDS.items():
        result = invoke(config, command, "--help")
        assert result.returncode == 0, command
        for flag in flags:
            assert flag in result.stdout, f"{command} --help lacks {flag}"


def test_check_exit_codes_and_locations(tmp_path: Path, raw_server: RawServer, corpus: Path) -> None:
    good = feed_config(tmp_path, raw_server, corpus)
    ok = invoke(good, "check")
    assert ok.returncode == 0 and "config ok" in ok.stdout and "2 sources" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("bogus: 1\ntopics: {t: [x]}\nsources:\n  - {name: a, type: feed, url: 'x', interval: 5 parsecs}\n")
    result = invoke(bad, "check")
    assert result.returncode == 2
    assert "bogus (line 1): unknown key" in result.stderr and "sources[0].interval (line 4)" in result.stderr
    assert "sources[0].url (line 4)" in result.stderr
    missing = invoke(tmp_path / "nope.yaml", "check")
    assert missing.returncode == 2 and "no such config file" in missing.stderr


def test_poll_search_stats_alerts_status(tmp_path: Path, raw_server: RawServer, corpus: Path) -> None:
    config = feed_config(tmp_path, raw_server, corpus)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first = invoke(config, "poll", cwd=elsewhere)
    assert first.returncode == 0, first.stderr
    assert "2 sources polled: 2 ok, 0 failed" in first.stdout and "25 new posts" in first.stdout
    assert (tmp_path / "data" / "monitor.db").exists() and not (elsewhere / "data").exists()
    second = invoke(config, "poll", "--format", "json")
    rows = json.loads(second.stdout)
    assert second.returncode == 0 and {r["source"] for r in rows} == {"oren", "heise"}
    assert sum(r["new"] for r in rows) == 0

    found = json.loads(invoke(config, "search", "Оренбург*", "--format", "json").stdout)
    assert found and {"id", "source", "url", "title", "published_at", "topics", "snippet"} <= set(found[0])
    assert all(r["source"] == "oren" for r in found) and "**" in found[0]["snippet"]
    dates = [r["published_at"] for r in found]
    assert dates == sorted(dates, reverse=True)  # newest first
    limited = json.loads(
        invoke(config, "search", "microsoft", "--source", "heise", "--limit", "1", "--format", "json").stdout
    )
    assert len(limited) == 1 and limited[0]["source"] == "heise"
    odd = invoke(config, "search", 'Microsoft "unbalanced', "--format", "json")
    assert odd.returncode == 0 and "searched the phrase" in odd.stderr
    csv_out = invoke(config, "search", "microsoft", "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("id,published_at,source,title")

    stats = json.loads(invoke(config, "stats", "--by", "day", "--format", "json").stdout)
    assert stats and set(stats[0]) == {"topic", "bucket", "posts", "stories"}
    assert {s["topic"] for s in stats} <= {"russia", "heise"}
    table = invoke(config, "stats", "--topic", "heise")
    assert table.returncode == 0 and "heise" in table.stdout

    alerts = invoke(config, "alerts", "--format", "json")
    assert alerts.returncode == 0 and isinstance(json.loads(alerts.stdout), list)
    status = invoke(config, "status", "--format", "json")
    by_source = {r["source"]: r for r in json.loads(status.stdout)}
    assert by_source["oren"]["state"] == "ok" and by_source["oren"]["posts"] == 10
    assert invoke(config, "status").returncode == 0


def test_poll_reports_failing_sources_and_still_exits_0(tmp_path: Path, raw_server: RawServer) -> None:
    raw_server.routes["/rss"] = respond(500)
    config = write_config(
        tmp_path,
        f"""
topics: {{t: [x]}}
sources:
  - {{name: broken, type: feed, url: "{raw_server.url("/rss")}", robots: false}}
  - {{name: offline, type: feed, url: "http://127.0.0.1:{refused_port()}/feed", robots: false}}
""",
    )
    result = invoke(config, "poll")
    assert result.returncode == 0
    assert "0 ok, 2 failed (broken, offline)" in result.stdout
    assert "HTTP 500" in result.stdout and "connection refused" in result.stdout
    unknown = invoke(config, "poll", "--source", "nosuch")
    assert unknown.returncode == 2 and "no source named nosuch" in unknown.stderr


def test_reading_commands_without_a_store(tmp_path: Path) -> None:
    config = write_config(tmp_path, "topics: {t: [x]}\nsources: []\n")
    result = invoke(config, "search", "x")
    assert result.returncode == 1 and "no store yet" in result.stderr
    assert invoke(config, "status").returncode == 0
    assert json.loads(invoke(config, "alerts", "--format", "json").stdout) == []


def test_detect_prints_iso_timestamps_at_the_jump(tmp_path: Path) -> None:
    series = tmp_path / "series.csv"
    start = datetime(2024, 3, 1)
    steps = 8 * 24 * 12
    lines = ["timestamp,value"] + [
        f"{(start + timedelta(minutes=5 * i)).isoformat()},{40 if i >= steps - 12 else 2}" for i in range(steps)
    ]
    series.write_text("\n".join(lines) + "\n")
    result = invoke(tmp_path / "none.yaml", "detect", str(series))
    assert result.returncode == 0, result.stderr
    stamps = [datetime.fromisoformat(line) for line in result.stdout.splitlines()]  # a line is a time, no more
    jump = (start + timedelta(minutes=5 * (steps - 12))).replace(tzinfo=UTC)
    assert stamps == [jump]
    detailed = invoke(tmp_path / "none.yaml", "detect", "--format", "text", str(series)).stdout.splitlines()
    assert [datetime.fromisoformat(line.split("  ")[0]) for line in detailed] == stamps  # the time first
    # 40 + 2 + 2 posts in the 15 minutes ending at the jump's first bucket, against 3 buckets of 2
    assert detailed == ["2024-03-08T23:00:00Z  window=15m  count=44  expected=6.0  score=9.9"]
    as_json = json.loads(invoke(tmp_path / "none.yaml", "detect", "--format", "json", str(series)).stdout)
    assert as_json == [{"time": "2024-03-08T23:00:00Z", "window": "15m", "count": 44.0, "expected": 6.0, "score": 9.88}]
    single = invoke(tmp_path / "none.yaml", "detect", "--scales", "1", "--format", "text", str(series)).stdout
    assert single == "2024-03-08T23:00:00Z  window=1h  count=62  expected=24.0  score=6.3\n"  # today's one window
    assert invoke(tmp_path / "none.yaml", "detect", "--scales", "1,1.5", str(series)).returncode == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2024-01-01T00:00:00,1\nnot a time,x\n")
    failed = invoke(tmp_path / "none.yaml", "detect", str(bad))
    assert failed.returncode == 2 and "line 3" in failed.stderr


def test_log_format_json(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f"""
topics: {{t: [x]}}
sources:
  - {{name: offline, type: feed, url: "http://127.0.0.1:{refused_port()}/feed", robots: false}}
""",
    )
    result = invoke(config, "--log-format", "json", "poll")
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    failed = [e for e in events if e["event"] == "source_failed"]
    assert failed and failed[0]["source"] == "offline" and failed[0]["level"] == "warning"


@pytest.mark.slow
def test_run_keeps_going_offline_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f"""
topics: {{t: [x]}}
sources:
  - {{name: offline-a, type: feed, url: "http://127.0.0.1:{refused_port()}/feed", interval: 2s, robots: false}}
  - {{name: offline-b, type: feed, url: "http://nonexistent.invalid/feed", interval: 2s}}
""",
    )
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            monitor_cmd(config, "run"),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        )
        deadline = time.monotonic() + 60  # until both sources have failed at least once (a bounded wait)
        while time.monotonic() < deadline and proc.poll() is None and log.read_text().count("source_failed") < 2:
            time.sleep(0.1)
        assert proc.poll() is None, log.read_text()
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        took = time.monotonic() - started
    text = log.read_text()
    assert code == 0 and took < 10, text
    assert "daemon_started sources=2" in text and "daemon_stopped" in text
    assert "connection refused" in text and "cannot resolve host nonexistent.invalid" in text
    assert "Traceback" not in text


def test_check_probe_reports_each_source_and_stores_nothing(
    tmp_path: Path, raw_server: RawServer, corpus: Path
) -> None:
    dead = f'  - {{name: dead, type: feed, url: "http://127.0.0.1:{refused_port()}/feed", robots: false}}'
    config = feed_config(tmp_path, raw_server, corpus, more_sources=dead)
    result = invoke(config, "check", "--probe", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {r["source"]: r for r in json.loads(result.stdout)}
    assert rows["oren"]["answer"] == "ok" and rows["oren"]["items"] == 10 and rows["oren"]["dated"] == 10
    assert rows["oren"]["oldest"] and rows["oren"]["newest"] and rows["oren"]["per_day"] is not None
    assert rows["heise"]["items"] == 15
    assert "connection refused" in rows["dead"]["answer"]
    assert not (tmp_path / "data").exists()  # nothing stored


def test_progress_shows_on_a_terminal_and_not_when_piped(tmp_path: Path, raw_server: RawServer, corpus: Path) -> None:
    import pty

    config = feed_config(tmp_path, raw_server, corpus)
    piped = invoke(config, "poll")
    assert piped.returncode == 0 and "\x1b" not in piped.stderr and "polling" not in piped.stderr
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            monitor_cmd(config, "poll"),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=120,
            check=False,
            env={**os.environ, "COLUMNS": "100"},
        )
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 0
    assert b"polling" in seen  # the progress bar, drawn on the terminal only


def test_piped_tables_never_cut_or_wrap_a_value(tmp_path: Path, raw_server: RawServer, corpus: Path) -> None:
    long_name = "steppe-herald-northern-kazakhstan-regional-edition-in-russian"
    config = feed_config(
        tmp_path, raw_server, corpus, f'  - {{name: {long_name}, type: feed, url: "{raw_server.url("/rss")}"}}'
    )
    assert invoke(config, "poll").returncode == 0
    status = invoke(config, "status", env={"COLUMNS": "60"})
    assert status.returncode == 0
    (line,) = [ln for ln in status.stdout.splitlines() if long_name in ln]
    assert line.split()[0] == long_name
    header = status.stdout.splitlines()[0].split()
    assert header[:3] == ["source", "type", "state"]
    searched = invoke(config, "search", "Оренбург*", "--limit", "100", env={"COLUMNS": "40"})
    found = json.loads(invoke(config, "search", "Оренбург*", "--limit", "100", "--format", "json").stdout)
    assert searched.returncode == 0 and len(searched.stdout.splitlines()) == 1 + len(found)  # a header, a line a post
