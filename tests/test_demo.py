"""`monitor demo` end to end (in-process with a fixed clock, and through the command line), and its parts:
the fictional world, the site as the real collectors read it, and the local SMTP server."""

from __future__ import annotations

import email
import io
import os
import re
import smtplib
import sqlite3
import struct
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.collectors.feedparse import parse_feed
from monitor.collectors.telegram import parse_channel_page
from monitor.demo import run_demo
from monitor.demo.mailbox import Mailbox
from monitor.demo.render import HERALD_FEED, VESTI_FEED, Site, channel_page
from monitor.demo.world import HISTORY, World, build_world

NOW = datetime(2026, 3, 1, 6, 30, tzinfo=UTC)  # 11:30 in Petropavlovsk
SUBJECT = re.compile(r"^\[monitor\] peoples-council: (\d+) posts in the last hour \(expected (\d+\.\d)\)$")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def received(eml: Path) -> EmailMessage:
    message = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def posts_in(world: World) -> int:
    """Every item the local site serves: feed items, articles, comments and channel messages."""
    comments = sum(len(a.comments) for a in world.news)
    return len(world.herald) + len(world.vesti) + len(world.news) + comments + len(world.messages)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One in-process run with the clock fixed at NOW: (the demo's folder, what it printed)."""
    directory = tmp_path_factory.mktemp("storage")
    out = io.StringIO()
    assert run_demo(directory, clock=lambda: NOW, out=out) == 0
    return directory / "demo", out.getvalue()


def test_the_alert_email_is_saved_with_the_topic_the_count_and_the_expected_count(demo_run: tuple[Path, str]) -> None:
    folder, _ = demo_run
    message = received(folder / "alert.eml")
    subject = SUBJECT.match(str(message["Subject"]))
    assert subject is not None, message["Subject"]
    with closing(sqlite3.connect(folder / "monitor.db")) as db:
        in_window = db.execute(
            """SELECT count(*) FROM matches m JOIN posts p ON p.id = m.post_id
               WHERE m.topic = 'peoples-council' AND p.published_at > ? AND p.published_at <= ?""",
            ((NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z"), NOW.isoformat().replace("+00:00", "Z")),
        ).fetchone()[0]
        alerts = db.execute("SELECT kind, topic, count, status FROM alerts").fetchall()
    assert int(subject[1]) == in_window >= 10  # a real spike, counted by published time in the last hour
    assert float(subject[2]) < 1.0  # against a week in which the topic came up about once a day
    assert alerts == [("spike", "peoples-council", in_window, "sent")]  # one email: no health alert, no other topic
    assert message["To"] == "analyst@example.org"


def test_the_chart_is_saved_as_the_png_inside_the_email(demo_run: tuple[Path, str]) -> None:
    folder, _ = demo_run
    png = (folder / "alert-chart.png").read_bytes()
    width, height = png_size(png)
    assert width >= 400 and height >= 150
    inline = [p.get_content() for p in received(folder / "alert.eml").walk() if p.get_content_type() == "image/png"]
    assert inline == [png]


def test_the_store_holds_every_item_of_every_source_type_once(demo_run: tuple[Path, str]) -> None:
    folder, _ = demo_run
    world = build_world(NOW)
    with closing(sqlite3.connect(folder / "monitor.db")) as db:
        per_source = dict(db.execute("SELECT source, count(*) FROM posts GROUP BY source").fetchall())
        types = {r[0] for r in db.execute("SELECT DISTINCT s.type FROM posts p JOIN sources s ON s.name = p.source")}
    assert types == {"feed", "html", "telegram"}
    assert per_source == {
        "steppe-herald": len(world.herald),
        "severnye-vesti": len(world.vesti),
        "qyzyljar-news": len(world.news) + sum(len(a.comments) for a in world.news),
        "dala-channel": len(world.messages),
    }


def test_comments_are_linked_to_their_article(demo_run: tuple[Path, str]) -> None:
    folder, _ = demo_run
    world = build_world(NOW)
    with closing(sqlite3.connect(folder / "monitor.db")) as db:
        links = db.execute(
            """SELECT c.source, a.source, a.parent_id, a.title, c.url = a.url FROM posts c JOIN posts a
               ON a.id = c.parent_id"""
        ).fetchall()
        orphans = db.execute(
            "SELECT count(*) FROM posts WHERE source = 'qyzyljar-news' AND parent_id IS NULL"
        ).fetchone()[0]
    assert len(links) == sum(len(a.comments) for a in world.news) > 0
    assert all(c == a == "qyzyljar-news" and parent is None and same_page for c, a, parent, _, same_page in links)
    assert orphans == len(world.news)  # the articles themselves
    spike_article = [title for *_, title, _ in links if "декларацию Народного совета" in title]
    assert len(spike_article) == 6  # the six comments under the spike's article


def test_the_summary_says_what_happened_and_what_to_try_next(demo_run: tuple[Path, str]) -> None:
    folder, printed = demo_run
    subject = str(received(folder / "alert.eml")["Subject"])
    assert f"Subject: {subject}" in printed
    assert re.search(r"peoples-council .* -> ALERT", printed)
    assert re.search(r"separatism .* -> no alert: below min_count 3", printed)
    assert "Polling everything again added 0" in printed
    for name in ("steppe-herald", "severnye-vesti", "qyzyljar-news", "dala-channel", "alert.eml", "alert-chart.png"):
        assert name in printed
    assert "--config" in printed and "search 'сепаратист*'" in printed
    assert "\x1b[" not in printed  # no progress or colour when the output is not a terminal


def test_a_second_run_starts_from_a_fresh_store(tmp_path: Path) -> None:
    later = NOW + timedelta(days=2)
    assert run_demo(tmp_path, clock=lambda: NOW, out=io.StringIO()) == 0
    assert run_demo(tmp_path, clock=lambda: later, out=io.StringIO()) == 0
    with closing(sqlite3.connect(tmp_path / "demo" / "monitor.db")) as db:
        posts = db.execute("SELECT count(*), min(published_at) FROM posts").fetchone()
        alerts = db.execute("SELECT id, status FROM alerts").fetchall()
    assert posts[0] == posts_in(build_world(later))
    assert posts[1] >= (later - HISTORY).isoformat()[:10]  # nothing left of the first run's week
    assert alerts == [(1, "sent")]


def test_a_step_that_fails_is_named_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "storage"
    blocker.write_text("a file where the demo's directory should go", encoding="utf-8")
    assert run_demo(blocker, clock=lambda: NOW, out=io.StringIO()) == 1
    assert "failed at step 'clear the previous demo's files'" in capsys.readouterr().err


def test_the_command_line_runs_the_demo_by_itself(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "demo", "--dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Subject: [monitor] peoples-council: " in done.stdout
    assert "monitor --config out/demo/config.yaml search" in done.stdout  # paths as the user types them
    assert SUBJECT.match(str(received(tmp_path / "out" / "demo" / "alert.eml")["Subject"]))
    png_size((tmp_path / "out" / "demo" / "alert-chart.png").read_bytes())
    assert "\x1b[" not in done.stdout + done.stderr
    assert done.stderr == ""  # the summary tells the story: no log lines at the default level


# --------------------------------------------------------------------------------------------- the parts
@settings(max_examples=25, deadline=None)
@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)))
def test_the_world_is_a_week_before_now_with_the_spike_in_the_last_hour(now: datetime) -> None:
    world = build_world(now)
    now = world.now
    dated = [a.published for a in (*world.herald, *world.vesti, *world.news)] + [m.published for m in world.messages]
    dated += [c.published for a in world.news for c in a.comments]
    assert all(now - HISTORY <= when <= now for when in dated)
    assert sum(now - timedelta(hours=1) < when for when in dated) >= 20
    numbers = [m.number for m in world.messages]
    assert numbers == sorted(set(numbers)) and [m.published for m in world.messages] == sorted(
        m.published for m in world.messages
    )
    for outlet in (world.herald, world.vesti, world.news):
        assert len({a.slug for a in outlet}) == len(outlet)
    assert build_world(now) == world  # the same week for the same now


def test_the_channel_preview_pages_back_through_every_message_once() -> None:
    world = build_world(NOW)
    seen: list[int] = []
    before: int | None = None
    for _ in range(20):  # bounded: 5 pages hold the week
        page = parse_channel_page(channel_page(world.messages, before), "http://127.0.0.1/s/x")
        seen = list(page.ids) + seen
        if page.older_url is None:
            break
        before = min(page.ids)
    assert seen == [m.number for m in world.messages]


def test_the_feeds_parse_with_every_item_dated() -> None:
    world = build_world(NOW)
    site = Site(world, "http://127.0.0.1:8000")
    for path, articles in ((HERALD_FEED, world.herald), (VESTI_FEED, world.vesti)):
        page = site.page(path, {})
        assert page is not None
        parsed = parse_feed(page.body, url="http://127.0.0.1:8000" + path, content_type=page.content_type)
        assert [i.published for i in parsed.items] == [a.published for a in articles]


def test_the_mailbox_keeps_a_message_byte_for_byte_with_dots_unstuffed() -> None:
    mailbox = Mailbox()
    mailbox.start()
    try:
        body = "first line\r\n.a line starting with a dot\r\n..two dots\r\nКазақша\r\n"
        raw = (f"Subject: test\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}").encode()
        with smtplib.SMTP("127.0.0.1", mailbox.port, timeout=10) as client:
            assert client.sendmail("a@example.org", ["b@example.org"], raw) == {}
        assert mailbox.wait(5)
        assert mailbox.messages == [raw]
    finally:
        mailbox.close()


def test_the_mailbox_refuses_data_before_a_recipient() -> None:
    mailbox = Mailbox()
    mailbox.start()
    try:
        with smtplib.SMTP("127.0.0.1", mailbox.port, timeout=10) as client:
            client.ehlo()
            assert client.docmd("DATA")[0] == 503
            assert client.docmd("MAIL", "FROM:<a@example.org>")[0] == 250
            assert client.docmd("DATA")[0] == 503
            assert client.docmd("VRFY", "x")[0] == 502
        assert mailbox.messages == []
    finally:
        mailbox.close()
