"""Same results, either store: the same feeds polled by `monitor poll` into a SQLite file and into PostgreSQL
(loopback HTTP, a throwaway cluster), then every analyst's command compared between the two."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from monitor.store import StoreURL
from tests.conftest import RawServer, refused_port, respond, run_monitor, write_config

# The clock of each run, and ids: the sources of a poll are stored in whichever order they answer.
VOLATILE = {"first_seen_at", "last_ok_at", "last_fetch_at", "updated_at", "id", "cluster_id", "parent_id"}


def configure(folder: Path, server: RawServer, corpus: Path, store: str) -> Path:
    server.routes["/rss"] = respond(
        200, (corpus / "rss/ru_oren-ru_windows-1251.xml").read_bytes(), {"Content-Type": "application/rss+xml"}
    )
    server.routes["/atom"] = respond(
        200, (corpus / "atom/de_heise.atom").read_bytes(), {"Content-Type": "application/atom+xml"}
    )
    folder.mkdir()
    return write_config(
        folder,
        f"""
store: "{store}"
topics:
  russia: [Оренбург*, оренбург*]
  heise: [Microsoft, Java*]
sources:
  - {{name: oren, type: feed, url: "{server.url("/rss")}", robots: false}}
  - {{name: heise, type: feed, url: "{server.url("/atom")}", robots: false}}
alerts:
  email: {{host: 127.0.0.1, port: {refused_port()}, sender: m@example.org, to: [a@example.org], timeout: 2s}}
""",
    )


def json_of(config: Path, *args: str) -> Any:
    done = run_monitor(config, *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def steady(rows: list[dict[str, Any]], *drop: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in VOLATILE | set(drop)} for row in rows]


def stories(rows: list[dict[str, Any]]) -> set[frozenset[str]]:
    """The posts (by URL) that share a cluster, whatever the cluster ids are."""
    by_cluster: dict[str, set[str]] = {}
    for row in rows:
        by_cluster.setdefault(str(row["cluster_id"]), set()).add(row["url"])
    return {frozenset(urls) for urls in by_cluster.values()}


@pytest.fixture
def stores(tmp_path: Path, raw_server: RawServer, corpus: Path, pg_url: StoreURL) -> dict[str, Path]:
    """Each backend's config, both polled twice from the same loopback feeds."""
    configs = {
        "sqlite": configure(tmp_path / "lite", raw_server, corpus, "data/monitor.db"),
        "postgres": configure(tmp_path / "pg", raw_server, corpus, pg_url.url),
    }
    for config in configs.values():
        first = run_monitor(config, "poll")
        assert first.returncode == 0, first.stderr
        assert "2 sources polled: 2 ok, 0 failed" in first.stdout and "25 new posts" in first.stdout
        again = json_of(config, "poll")
        assert sum(r["new"] for r in again) == 0  # stored once, on either backend
    return configs


@pytest.mark.slow
def test_poll_then_every_analysts_command_gives_the_same_results_on_both_stores(
    stores: dict[str, Path], tmp_path: Path
) -> None:
    lite, pg = stores["sqlite"], stores["postgres"]
    for query in ("Оренбург*", "microsoft", '"Microsoft Teams"', "java* OR оренбург*", "microsoft NOT teams"):
        found = {name: json_of(config, "search", query, "--limit", "100") for name, config in stores.items()}
        assert steady(found["sqlite"], "snippet") == steady(found["postgres"], "snippet"), query
        assert all("**" in r["snippet"] for r in found["postgres"]), query
    assert steady(json_of(lite, "search", "--topic", "heise")) == steady(json_of(pg, "search", "--topic", "heise"))
    odd = run_monitor(pg, "search", 'Microsoft "unbalanced', "--format", "json")
    assert odd.returncode == 0 and "searched the phrase" in odd.stderr  # the same fallback as on SQLite
    for by in ("hour", "day", "week"):
        assert json_of(lite, "stats", "--by", by) == json_of(pg, "stats", "--by", by)
    assert json_of(lite, "alerts") == json_of(pg, "alerts")
    assert steady(json_of(lite, "status")) == steady(json_of(pg, "status"))
    exports = {}
    for name, config in stores.items():
        done = run_monitor(config, "export", "--format", "csv", "--all")
        assert done.returncode == 0, done.stderr
        exports[name] = list(csv.DictReader(io.StringIO(done.stdout)))
    assert steady(exports["sqlite"]) == steady(exports["postgres"]) and len(exports["postgres"]) == 25
    assert stories(exports["sqlite"]) == stories(exports["postgres"])

    # And what only PostgreSQL says: the store checked, a chart drawn, `serve` refused in one line.
    checked = run_monitor(pg, "check", "--store")
    assert checked.returncode == 0 and "every table and view is there" in checked.stdout + checked.stderr, (
        checked.stderr
    )
    plotted = run_monitor(pg, "plot", "--topic", "heise", "--since", "3650d", "-o", str(tmp_path / "h.png"))
    assert plotted.returncode == 0, plotted.stderr
    assert (tmp_path / "h.png").read_bytes().startswith(b"\x89PNG")
    served = run_monitor(pg, "serve", "--port", "0")
    assert served.returncode != 0 and "serves a SQLite store only" in served.stderr
    assert served.stderr.count("\n") == 1


@pytest.mark.slow
def test_migrate_store_copies_a_sqlite_store_into_postgresql_with_every_count_checked(
    tmp_path: Path, raw_server: RawServer, corpus: Path, pg_url: StoreURL
) -> None:
    lite = configure(tmp_path / "lite", raw_server, corpus, "data/monitor.db")
    assert run_monitor(lite, "poll").returncode == 0
    moved = run_monitor(lite, "migrate-store", "--to", pg_url.url)
    assert moved.returncode == 0, moved.stderr
    assert "  posts: 25 rows" in moved.stdout and "every table's count checked" in moved.stdout
    assert "  topic_fingerprints: 2 rows" in moved.stdout  # the topics the copied matches follow
    assert "  post_bands: 250 rows" in moved.stdout  # written behind in the file (its recent level), all copied
    file_db = sqlite3.connect(lite.parent / "data" / "monitor.db")
    file_digests = {
        (src, key): digest for src, key, digest in file_db.execute("SELECT source, key, raw_digest FROM posts")
    }
    file_db.close()
    with psycopg.connect(pg_url.url) as pg_db:  # the feed items' raw digests too, byte for byte: the copy skips them
        rows = pg_db.execute("SELECT source, key, raw_digest FROM posts").fetchall()
    assert {(src, key): bytes(digest) for src, key, digest in rows} == file_digests
    assert len(file_digests) == 25 and all(len(digest) == 16 for digest in file_digests.values())
    pg = configure(tmp_path / "pg", raw_server, corpus, pg_url.url)
    for query in ("Оренбург*", "java* OR microsoft"):  # the same ids, clusters and all: a copy
        assert steady(json_of(lite, "search", query), "snippet") == steady(json_of(pg, "search", query), "snippet")
    assert json_of(lite, "search", "--topic", "heise") == json_of(pg, "search", "--topic", "heise")
    assert json_of(lite, "stats", "--by", "day") == json_of(pg, "stats", "--by", "day")
    exports = [run_monitor(c, "export", "--format", "jsonl", "--all").stdout for c in (lite, pg)]
    assert exports[0] == exports[1] and exports[0].count("\n") == 25
    again = run_monitor(pg, "poll", "--format", "json")  # the copy goes on: sequences continue, nothing is new
    assert again.returncode == 0 and sum(r["new"] for r in json.loads(again.stdout)) == 0
    assert "topics_changed" not in again.stderr  # the copy knows which topics its matches follow
    rematched = run_monitor(pg, "rematch")
    assert rematched.returncode == 0 and "+0 -0 matches" in rematched.stderr, rematched.stderr
    twice = run_monitor(lite, "migrate-store", "--to", pg_url.url)
    assert twice.returncode == 1 and "not empty" in twice.stderr and twice.stderr.count("\n") == 1
