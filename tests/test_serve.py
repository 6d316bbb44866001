"""`monitor serve`: Datasette metadata against the real schema, canned queries on a real store, and the
served store in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import selectors
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from monitor import dedupe
from monitor.config import Config
from monitor.exceptions import MonitorError
from monitor.match import Matcher
from monitor.normalize import content_hash
from monitor.serve import QUERIES, HostRule, database_name, host_rule, metadata, parameters, serve_store, store_file
from monitor.store import Store, open_store, this_process
from monitor.types import (
    AlertKind,
    AlertStatus,
    DeliveryUpdate,
    FetchRecord,
    FetchStatus,
    MatchedPost,
    NewAlert,
    Post,
    SourceState,
    TopicSpec,
)
from tests.conftest import NOW, REPO, make_config, monitor_cmd, run_monitor, write_config

CONFIG = """\
    store: monitor.db
    topics:
      separatism: [separatism, separatist*, сепаратизм*, сепаратист*]
      peoples-council:
        any: ["People's Council*", "Народн* совет*", "Халық кеңес*"]
        none: [football]
    sources:
      - {name: caravanserai, type: feed, url: "https://example.org/rss"}
      - {name: city-news, type: feed, url: "https://example.com/rss"}
      - {name: some-channel, type: telegram, channel: somechannel}
"""
STORY = (
    "Police dispersed a separatist rally in Petropavlovsk on Saturday; organisers had called for a "
    "referendum and read out a declaration on the square before the crowd was moved on."
)
# (source, key, hours ago, title, text, parent key): the known posts the tests look for
POSTS = [
    ("caravanserai", "a1", 1, "Separatist rally dispersed in Petropavlovsk", STORY, None),
    ("city-news", "b1", 2, "Separatist rally dispersed in Petropavlovsk", STORY, None),
    (
        "caravanserai",
        "a2",
        3,
        "Суд над сепаратистами в Петропавловске",
        "Суд рассмотрел дело сторонников сепаратизма, которые распространяли листовки.",
        None,
    ),
    (
        "caravanserai",
        "a3",
        26,
        "Халық кеңесі мүшелері сотқа шақырылды",
        "Өзін Халық кеңесі деп атаған топтың мүшелері сотқа шақырылды.",
        None,
    ),
    ("city-news", "b2", 5, "People's Council in the football league", "The People's Council of fans met.", None),
    ("city-news", "b3", 4, "", "Это и есть Народный совет, то есть сепаратизм.", "b1"),
]
SEPARATISM_TITLES = ["Separatist rally dispersed in Petropavlovsk", "Суд над сепаратистами в Петропавловске"]
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
]


def fill(store: Store, config: Config) -> None:
    """A store as polls leave it: posts in three languages with their matches, a story carried by two sources,
    a comment, a failing source with its failed requests, a delivered spike alert and an undelivered one."""
    matcher = Matcher(config.topics)
    by_source: dict[str, list[MatchedPost]] = {}
    for source, key, hours, title, text, parent in POSTS:
        post = Post(
            source=source,
            key=key,
            url=f"https://{source}.example/{key}",
            title=title,
            text=text,
            author="reader" if parent else "newsroom",
            published_at=NOW - timedelta(hours=hours),
            first_seen_at=NOW,
            content_hash=content_hash(title, text),
            parent_key=parent,
        )
        item = MatchedPost(post, matcher.match(title, text), dedupe.signature(title, text))
        by_source.setdefault(source, []).append(item)
    for source, items in by_source.items():
        fetch = FetchRecord(
            source=source,
            url=f"https://{source}.example/rss",
            started_at=NOW,
            status=FetchStatus.OK,
            http_status=200,
            bytes=5000,
            items=len(items),
        )
        store.save_poll(
            state=SourceState(name=source, last_ok_at=NOW),
            source_type="feed",
            source_url=fetch.url,
            posts=items,
            fetches=[fetch],
            now=NOW,
        )
    failed = FetchRecord(
        source="some-channel",
        url="https://t.me/s/somechannel",
        started_at=NOW,
        status=FetchStatus.ERROR,
        error="cannot resolve host t.me",
    )
    store.record_failure(
        state=SourceState(name="some-channel", failures=3, last_error="cannot resolve host t.me", last_error_at=NOW),
        source_type="telegram",
        source_url=failed.url,
        fetches=[failed],
        now=NOW,
    )
    spike = NewAlert(
        kind=AlertKind.SPIKE,
        topic="separatism",
        window_start=NOW - timedelta(hours=1),
        window_end=NOW,
        count=5,
        expected=0.4,
        score=9.5,
    )
    health = NewAlert(kind=AlertKind.HEALTH, source="some-channel")
    for alert, update in (
        (spike, DeliveryUpdate(AlertStatus.SENT, attempts=1, sent_at=NOW)),
        (health, DeliveryUpdate(AlertStatus.PENDING, attempts=2, error="SMTP 451 try later")),
    ):
        store.insert_alert(alert, created_at=NOW, channels=["email"])
        claim = store.claim_delivery(
            channels=["email"], owner=this_process(), now=NOW, lease=timedelta(minutes=5), message_id="<m@example.org>"
        )
        assert claim is not None and store.finish_delivery(claim, update)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    write_config(tmp_path, CONFIG)
    return make_config(tmp_path, CONFIG)


@pytest.fixture
def store_path(config: Config) -> Path:
    with open_store(config.store) as store:
        fill(store, config)
    return store_file(config)


def run_query(path: Path, name: str, **values: object) -> list[dict[str, Any]]:
    """Run a canned query as Datasette does: a read-only connection, blank for each parameter not given."""
    sql = metadata_of(path)["queries"][name]["sql"]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(sql, {p: values.get(p, "") for p in parameters(sql)}).fetchall()
    finally:
        conn.close()
    return [dict(r) for r in rows]


def metadata_of(path: Path) -> dict[str, Any]:
    config = make_config(path.parent, CONFIG)
    db: dict[str, Any] = metadata(config)["databases"][database_name(config)]
    return db


# ---------------------------------------------------------------------------------------------- metadata
def schema(path: Path) -> dict[str, list[str]]:
    """Every table and view an analyst sees, with its columns (SQLite's own and FTS5's shadow tables left out)."""
    conn = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        fts = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%'")]
        shadows = {f"{v}_{suffix}" for v in fts for suffix in ("data", "idx", "content", "docsize", "config")}
        return {n: [r[1] for r in conn.execute(f"PRAGMA table_info([{n}])")] for n in names if n not in shadows}
    finally:
        conn.close()


def test_metadata_documents_every_table_view_and_column_of_the_real_schema(tmp_path: Path, config: Config) -> None:
    with open_store(tmp_path / "fresh.db"):
        pass
    actual = schema(tmp_path / "fresh.db")
    tables = metadata(config)["databases"][database_name(config)]["tables"]
    assert {"posts", "matches", "alerts", "topic_hourly", "topic_daily", "post_topics"} <= set(actual)
    assert sorted(tables) == sorted(actual), "document new tables and views in monitor/serve.py TABLES"
    for name, columns in actual.items():
        documented = tables[name]["columns"]
        assert sorted(documented) == sorted(columns), f"document {name}'s columns in monitor/serve.py TABLES"
        assert tables[name]["description"].strip()
        assert all(text.strip() for text in documented.values()), name


def test_metadata_carries_the_config_topics_and_datasette_options(config: Config) -> None:
    meta = metadata(config)
    assert json.loads(json.dumps(meta)) == meta  # plain JSON, as Datasette and the --metadata file need
    db = meta["databases"]["monitor"]
    assert "separatism" in db["description"] and "Халық кеңес*" in db["description"]
    latest = db["queries"]["latest_matches"]
    assert '<a href="?topic=peoples-council">peoples-council</a>' in latest["description_html"]
    assert db["tables"]["posts"]["fts_table"] == "posts_fts"
    assert db["tables"]["post_bands"]["hidden"] is True
    required = {"latest_matches", "hourly_counts", "recent_alerts", "top_sources", "failing_sources", "shared_stories"}
    assert required <= set(db["queries"])
    assert all(q["title"] and (q.get("description") or q.get("description_html")) for q in db["queries"].values())


def test_topic_names_are_escaped_in_the_query_descriptions(config: Config) -> None:
    config = msgspec.structs.replace(config, topics=(TopicSpec("sep<b>&x", ("x",)),))  # config.py forbids such names
    html = metadata(config)["databases"]["monitor"]["queries"]["latest_matches"]["description_html"]
    assert "sep&lt;b&gt;&amp;x</a>" in html and "?topic=sep%3Cb%3E%26x" in html and "<b>" not in html


# ---------------------------------------------------------------------------------------------- canned queries
def test_every_canned_query_runs_on_a_real_store_with_its_parameters_blank(store_path: Path) -> None:
    needs_a_value = {"story_posts", "comments", "search", "alert_posts"}
    for name in QUERIES:
        rows = run_query(store_path, name)
        assert bool(rows) == (name not in needs_a_value), name


def test_canned_queries_find_the_known_rows(store_path: Path) -> None:
    latest = run_query(store_path, "latest_matches", topic="separatism")
    assert [r["title"] for r in latest][:2] == SEPARATISM_TITLES[:1] * 2  # the story, from both sources
    assert {r["title"] for r in latest} >= set(SEPARATISM_TITLES)
    assert "People's Council in the football league" not in {
        r["title"] for r in run_query(store_path, "latest_matches")
    }
    council = run_query(store_path, "latest_matches", topic="peoples-council")
    assert {r["source"] for r in council} == {"caravanserai", "city-news"}  # the Kazakh post and the comment

    hourly = run_query(store_path, "hourly_counts", topic="separatism", since="2026-03-01T09")
    assert [(r["hour"], r["posts"], r["stories"]) for r in hourly] == [
        ("2026-03-01T11:00:00Z", 1, 1),
        ("2026-03-01T10:00:00Z", 1, 1),
        ("2026-03-01T09:00:00Z", 1, 1),
    ]
    assert [r["day"] for r in run_query(store_path, "daily_counts", topic="peoples-council")] == [
        "2026-03-01",
        "2026-02-28",
    ]

    top = run_query(store_path, "top_sources", topic="separatism")
    assert [(r["source"], r["posts"], r["stories"]) for r in top] == [("caravanserai", 2, 2), ("city-news", 2, 2)]

    (shared,) = run_query(store_path, "shared_stories")
    assert (shared["sources"], sorted(shared["carried_by"].split(",")), shared["title"]) == (
        2,
        ["caravanserai", "city-news"],
        SEPARATISM_TITLES[0],
    )
    assert shared["first_source"] == "city-news"  # published an hour before caravanserai
    assert [r["source"] for r in run_query(store_path, "story_posts", story=shared["story"])] == [
        "city-news",
        "caravanserai",
    ]

    # the spike alert's posts (the link of alert messages with alerts.link_base): its topic, in its window
    in_window = [
        r["post_id"]
        for r in run_query(store_path, "latest_matches", topic="separatism")
        if "2026-03-01T11:00:00Z" <= r["published_at"] <= "2026-03-01T12:00:00Z"
    ]
    alert_posts = run_query(store_path, "alert_posts", alert_id=1)
    assert in_window and sorted(r["post_id"] for r in alert_posts) == sorted(in_window)
    assert run_query(store_path, "alert_posts", alert_id=2) == []  # a health alert counts no posts
    assert [r["status"] for r in run_query(store_path, "recent_alerts")] == ["pending", "sent"]
    assert [r["kind"] for r in run_query(store_path, "recent_alerts", status="sent")] == ["spike"]
    assert [r["error"] for r in run_query(store_path, "undelivered_alerts")] == ["SMTP 451 try later"]
    assert [(r["name"], r["failures"]) for r in run_query(store_path, "failing_sources")] == [("some-channel", 3)]
    assert [r["name"] for r in run_query(store_path, "source_status")] == ["caravanserai", "city-news", "some-channel"]
    assert [r["error"] for r in run_query(store_path, "fetch_errors", source="some-channel")] == [
        "cannot resolve host t.me"
    ]

    found = run_query(store_path, "search", q="сепаратист*")
    assert [r["title"] for r in found] == [SEPARATISM_TITLES[1]] and "[сепаратистами]" in found[0]["snippet"]
    (article,) = run_query(store_path, "most_discussed")
    assert (article["title"], article["comments"]) == (SEPARATISM_TITLES[0], 1)
    assert [r["author"] for r in run_query(store_path, "comments", post_id=article["post_id"])] == ["reader"]
    terms = {(r["topic"], r["term"]) for r in run_query(store_path, "topic_terms")}
    assert ("peoples-council", "Халық кеңес*") in terms


# ---------------------------------------------------------------------------------------------- the command
def test_metadata_option_writes_the_file_and_exits_0(tmp_path: Path, config: Config) -> None:
    out = tmp_path / "meta.json"
    done = run_monitor(tmp_path / "config.yaml", "serve", "--metadata", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == metadata(config)
    assert not store_file(config).exists()  # writing the metadata needs no store (nor Datasette)


def test_without_datasette_the_message_names_the_extra_and_exit_is_1(tmp_path: Path, store_path: Path) -> None:
    hide = "import sys; sys.modules['datasette'] = None; from monitor.cli import entry; entry()"
    done = subprocess.run(
        [sys.executable, "-c", hide, "--config", str(tmp_path / "config.yaml"), "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "pip install 'monitor[web]'" in done.stderr and "Traceback" not in done.stderr


def test_serve_store_raises_naming_the_extra(monkeypatch: pytest.MonkeyPatch, config: Config) -> None:
    monkeypatch.setitem(sys.modules, "datasette", None)
    monkeypatch.setitem(sys.modules, "datasette.app", None)
    with pytest.raises(MonitorError, match=re.escape("monitor[web]")):
        serve_store(config, host="127.0.0.1", port=0, metadata_only=None)


def test_no_store_yet_is_a_clear_error(tmp_path: Path, config: Config) -> None:
    done = run_monitor(tmp_path / "config.yaml", "serve", "--port", "0")
    assert done.returncode == 1 and "no store yet" in done.stderr
    assert not store_file(config).exists()  # serving never creates (or migrates) the store


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"plain text, not SQLite" * 10, "not a usable SQLite store"), (None, "not a monitor store (no posts table)")],
)
def test_a_file_that_is_not_a_store_is_a_clear_error(
    tmp_path: Path, config: Config, content: bytes | None, message: str
) -> None:
    if content is None:
        with contextlib.closing(sqlite3.connect(store_file(config))) as conn:  # SQLite, but not monitor's
            conn.execute("CREATE TABLE other (a)")
    else:
        store_file(config).write_bytes(content)
    done = run_monitor(tmp_path / "config.yaml", "serve", "--port", "0")
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr


def test_a_port_in_use_is_a_clear_error(tmp_path: Path, store_path: Path) -> None:
    with serving(tmp_path) as server:
        port = str(server.port)
        done = run_monitor(tmp_path / "config.yaml", "serve", "--port", port)
    assert done.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr


# ---------------------------------------------------------------------------------------------- serving
class Served:
    """`monitor serve --port 0` in a subprocess: it binds a free loopback port and prints its address."""

    def __init__(self, config_path: Path, *args: str) -> None:
        self.port = 0
        self.base = ""
        self.first_line = ""
        self.process = subprocess.Popen(
            monitor_cmd(config_path, "serve", "--port", "0", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        )

    def wait_ready(self, timeout: float = 30) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline and not self.first_line:
                if selector.select(timeout=0.2):
                    self.first_line = self.process.stdout.readline()
                    if not self.first_line:  # end of output: it exited
                        out, err = self.process.communicate()
                        pytest.fail(f"monitor serve exited with {self.process.returncode}: {out}\n{err}")
        found = re.search(r"Datasette: (http://127\.0\.0\.1:(\d+))/", self.first_line)
        if not found:
            pytest.fail(f"monitor serve did not say where it listens within {timeout} s: {self.first_line!r}")
        self.base, self.port = found[1], int(found[2])
        get(f"{self.base}/-/versions.json")  # the socket listens before the line is printed

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        """Signal it; its exit status and output once it stopped (killed after 10 s: a failure)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            out, err = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            pytest.fail(f"monitor serve did not stop within 10 s of signal {sig}: {err}")
        return self.process.returncode, self.first_line + out, err


@contextlib.contextmanager
def serving(directory: Path, *args: str) -> Iterator[Served]:
    server = Served(directory / "config.yaml", *args)
    try:
        server.wait_ready()
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate()


@pytest.fixture
def served(tmp_path: Path, store_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as server:
        yield server


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def get_json(url: str) -> Any:
    return json.loads(get(url))


def test_the_store_is_served_read_only_and_shows_what_the_daemon_writes_meanwhile(
    served: Served, config: Config
) -> None:
    (database,) = get_json(f"{served.base}/-/databases.json")
    assert (database["name"], database["is_mutable"]) == ("monitor", True)  # mode=ro, not immutable
    url = f"{served.base}/monitor/latest_matches.json?_shape=array&topic=separatism"
    assert [r["title"] for r in get_json(url)][:2] == SEPARATISM_TITLES[:1] * 2
    with open_store(config.store) as store:  # the daemon polls while Datasette serves
        title = "Ещё один сепаратист задержан"
        post = Post(
            source="caravanserai",
            key="late",
            url="https://caravanserai.example/late",
            title=title,
            text="Новость.",
            author=None,
            published_at=NOW,
            first_seen_at=NOW,
            content_hash=content_hash(title, "Новость."),
        )
        item = MatchedPost(post, Matcher(config.topics).match(title, post.text), b"")
        store.save_poll(
            state=SourceState(name="caravanserai"),
            source_type="feed",
            source_url=None,
            posts=[item],
            fetches=[],
            now=NOW,
        )
    assert get_json(url)[0]["title"] == title
    with pytest.raises(urllib.error.HTTPError) as refused:  # Datasette only runs SELECTs, on a mode=ro connection
        get(f"{served.base}/monitor.json?sql=DELETE+FROM+posts")
    refused.value.close()  # an HTTPError holds the response's socket
    assert refused.value.code == 400
    assert get_json(f"{served.base}/monitor/posts.json?_shape=array&_size=1")[0]["title"] == title


def test_the_links_of_alert_messages_open_in_the_served_store(served: Served, config: Config) -> None:
    """alerts.link_base = where `monitor serve` runs: every link an alert message carries opens a page there."""
    from monitor.links import alert_links

    with open_store(config.store, readonly=True) as store:
        spike, health = sorted(store.alerts(), key=lambda a: a.id)
    spike_links = alert_links(served.base, database_name(config), spike)
    health_links = alert_links(served.base, database_name(config), health)
    assert spike_links is not None and health_links is not None
    for url in (spike_links.alert, spike_links.posts, health_links.alert, health_links.posts):
        assert get(url).startswith(b"<!DOCTYPE html>"), url
    path, _, query = spike_links.posts.partition("?")
    posts = get_json(f"{path}.json?{query}&_shape=array")
    assert posts and {p["title"] for p in posts} <= set(SEPARATISM_TITLES)
    path, _, query = health_links.posts.partition("?")
    assert [r["source"] for r in get_json(f"{path}.json?{query}&_shape=array")] == ["some-channel"]
    assert get_json(f"{spike_links.alert}.json?_shape=array")[0]["topic"] == "separatism"


def test_scraped_markup_is_escaped_in_the_served_pages(served: Served, config: Config) -> None:
    """The worst case, stored as is (normalisation would already have turned markup into text): Datasette
    escapes every cell, and links only http(s) values."""
    title = '<script>alert("title")</script><img src=x onerror=alert(2)>'
    with open_store(config.store) as store:
        post = Post(
            source="caravanserai",
            key="evil",
            url="javascript:alert(3)",
            title=title,
            text="<b onmouseover=alert(4)>separatist</b>",
            author="<iframe src=//evil.example>",
            published_at=NOW,
            first_seen_at=NOW,
            content_hash=content_hash(title, "x"),
        )
        item = MatchedPost(post, Matcher(config.topics).match(title, post.text), b"")
        store.save_poll(
            state=SourceState(name="caravanserai"),
            source_type="feed",
            source_url=None,
            posts=[item],
            fetches=[],
            now=NOW,
        )
    (row,) = get_json(f"{served.base}/monitor/posts.json?_shape=array&key=evil")
    pages = [
        get(f"{served.base}/monitor/posts?key=evil").decode(),
        get(f"{served.base}/monitor/posts/{row['id']}").decode(),
        get(f"{served.base}/monitor/latest_matches?topic=separatism").decode(),
    ]
    for page in pages:
        assert "&lt;script&gt;alert" in page, page[:2000]
        for raw in ("<script>alert", "<img src=x", "<b onmouseover", "<iframe", 'href="javascript:'):
            assert raw not in page


def test_sigterm_and_sigint_stop_it_cleanly_with_status_0(tmp_path: Path, store_path: Path) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        with serving(tmp_path) as server:
            assert b"Latest matches per topic" in get(f"{server.base}/monitor")
            code, out, err = server.stop(sig)
        assert code == 0, err
        assert "Traceback" not in err and "stopped serve" in err
        assert f"Datasette: {server.base}/monitor" in out


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(tmp_path: Path, store_path: Path, port: str) -> None:
    done = run_monitor(tmp_path / "config.yaml", "serve", "--port", port)
    assert done.returncode == 2 and "--port" in done.stderr and "Traceback" not in done.stderr


def request_with_host(base: str, host: str, path: str = "/monitor") -> tuple[int, bytes]:
    """A real GET carrying exactly this Host header."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_foreign_host_header_is_refused_dns_rebinding(served: Served) -> None:
    status, body = request_with_host(served.base, "evil.example")
    assert status == 400 and b"DNS rebinding" in body and b"Latest matches" not in body
    for host in (f"evil.example:{served.port}", "127.0.0.1.evil.example", "localhost.evil.example", "", "a b"):
        assert request_with_host(served.base, host)[0] == 400, host
    for host in (f"localhost:{served.port}", f"127.0.0.1:{served.port}", "LOCALHOST.", f"[::1]:{served.port}"):
        status, body = request_with_host(served.base, host)
        assert status == 200 and b"Latest matches per topic" in body, host
    code, _, err = served.stop()
    assert code == 0 and err.count("refused_host host='evil.example'") == 1, err


def test_the_host_rule() -> None:
    loopback = host_rule("127.0.0.1", "127.0.0.1")
    assert all(loopback.allows(h) for h in ("localhost", "127.0.0.1:8001", "[::1]:8001", "app.localhost:1"))
    assert not any(loopback.allows(h) for h in ("evil.example", "10.0.0.5", "monitor.internal", "[::1", ""))
    named = host_rule("monitor.internal", "10.0.0.5")
    assert named.allows("monitor.internal:8001") and named.allows("10.0.0.5") and named.allows("localhost")
    assert not named.allows("evil.example") and not named.allows("10.0.0.6")
    wildcard = host_rule("0.0.0.0", "0.0.0.0")
    assert wildcard.allows("192.168.1.20:8001") and wildcard.allows("[fe80::1]") and wildcard.allows("localhost")
    assert not wildcard.allows("evil.example") and not wildcard.allows("0.0.0.0.evil.example")
    assert wildcard.allows(socket.gethostname())
    assert HostRule(frozenset({"a.example"})).allows("A.Example.:80")


# ---------------------------------------------------------------------------------------------- the browser
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)
def test_a_canned_query_page_in_headless_chromium(tmp_path: Path, served: Served) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.get(f"{served.base}/monitor/latest_matches?topic=separatism")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Latest matches per topic"
        header = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "table.rows-and-columns thead th")]
        assert header[:5] == ["published_at", "topic", "source", "title", "url"]
        rows = [
            [td.text.strip() for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in driver.find_elements(By.CSS_SELECTOR, "table.rows-and-columns tbody tr")
        ]
        assert [(r[1], r[2], r[3]) for r in rows] == [
            ("separatism", "caravanserai", SEPARATISM_TITLES[0]),
            ("separatism", "city-news", SEPARATISM_TITLES[0]),
            ("separatism", "caravanserai", SEPARATISM_TITLES[1]),
            ("separatism", "city-news", ""),  # the comment (no title) that also names the People's Council
        ]
        assert "peoples-council" in driver.find_element(By.CSS_SELECTOR, ".metadata-description").text
        shot = tmp_path / "datasette.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000  # a rendered page, not a blank one
    if target := os.environ.get("MONITOR_SCREENSHOT"):  # e.g. docs/datasette.png, to refresh the docs' picture
        shutil.copyfile(shot, REPO / target)
