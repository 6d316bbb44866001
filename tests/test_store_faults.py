"""Store faults as the user meets them (issue 8.7): garbage in the file, a full disk, a read-only store.

Each command answers with one line that names the file and says what to do, exit 1, never a traceback
(the commands run in-process with `catch_exceptions=False`: a traceback would fail the test).
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor import dedupe
from monitor.collectors.fetch import Fetcher
from monitor.config import Config
from monitor.match import Matcher
from monitor.normalize import content_hash
from monitor.pipeline import run_source
from monitor.store import open_store
from monitor.store.sqlite import SqliteStore, open_sqlite
from monitor.types import FetchRecord, FetchStatus, Match, MatchedPost, Post, RunResult, SourceState
from tests.conftest import RawServer, cli, make_config, refused_port, respond, write_config
from tests.test_pipeline import big_feed

NOW = datetime.now(UTC).replace(microsecond=0)
WORDS = ("rally", "council", "city", "river", "square", "people", "north", "bridge", "market", "school")


def filled_store(path: Path, posts: int = 1000) -> None:
    """A store of `posts` matched posts of source `news`, saved in ten polls (so tables and indexes interleave)."""
    with open_store(path) as store:
        for batch in range(10):
            matched = []
            for n in range(batch * posts // 10, (batch + 1) * posts // 10):
                title = f"Separatist report {n}"
                body = f"Report {n}: " + " ".join(random.Random(n).choice(WORDS) for _ in range(60))
                post = Post(
                    source="news",
                    key=f"k{n}",
                    url=f"https://example.org/{n}",
                    title=title,
                    text=body,
                    author=None,
                    published_at=NOW - timedelta(minutes=n),
                    first_seen_at=NOW,
                    content_hash=content_hash(title, body),
                )
                matched.append(MatchedPost(post, (Match("separatism", "separatist*"),), dedupe.signature(title, body)))
            store.save_poll(
                state=SourceState(name="news", last_ok_at=NOW),
                source_type="feed",
                source_url="http://127.0.0.1:9/rss",
                posts=matched,
                fetches=(FetchRecord("news", "http://127.0.0.1:9/rss", NOW, FetchStatus.OK),),
                now=NOW,
            )
        assert isinstance(store, SqliteStore)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def garble_mid_file(path: Path) -> int:
    """16 KB of seeded garbage over the middle of the file, starting at the page of the posts-per-source index
    nearest the middle (a page `status` reads when it counts posts). Returns the byte offset."""
    conn = sqlite3.connect(path)
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    middle = conn.execute("PRAGMA page_count").fetchone()[0] // 2
    pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = 'posts_source_published_at'")]
    conn.close()
    page = min(pages, key=lambda p: abs(p - middle))
    offset: int = (page - 1) * size
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(random.Random(16).randbytes(16 * 1024))
    return offset


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    config = write_config(
        tmp_path,
        f"""
store: store.db
topics: {{separatism: [separatist*]}}
sources:
  - {{name: news, type: feed, url: "http://127.0.0.1:{refused_port()}/rss", robots: false}}
""",
    )
    filled_store(tmp_path / "store.db")
    offset = garble_mid_file(tmp_path / "store.db")
    assert offset > (tmp_path / "store.db").stat().st_size // 4  # in the middle, not the header
    return config


# search reads every post of the source (a search for the newest 20 reads only the newest posts' pages, and
# rightly answers: it never meets the garbage).
@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["export", "-o", "-"],
        ["search", "--source", "news", "--limit", "100000"],
        ["search", "separatist", "--source", "news", "--limit", "100000"],
        ["poll"],
    ],
)
def test_garbage_mid_file_is_one_line_naming_the_file_and_the_backup(damaged: Path, command: list[str]) -> None:
    result = cli(damaged, *command)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("monitor:")]
    assert len(lines) == 1, result.stderr
    assert str(damaged.parent / "store.db") in lines[0]
    assert "damaged" in lines[0] and "backup" in lines[0]
    assert "collector" not in result.stderr and "internal error" not in result.stderr  # poll: not a crash


def test_check_store_finds_the_garbage_with_quick_check(damaged: Path) -> None:
    result = cli(damaged, "check", "--store")
    assert result.exit_code == 1
    assert "damaged" in result.stderr and "backup" in result.stderr


def test_check_store_passes_a_sound_store(tmp_path: Path) -> None:
    config = write_config(tmp_path, "store: store.db\ntopics: {t: [x]}\nsources: []\n")
    filled_store(tmp_path / "store.db", posts=100)
    result = cli(config, "check", "--store")
    assert result.exit_code == 0, result.output
    assert "quick_check found no damage" in result.output


def big_source(tmp_path: Path, server: RawServer) -> Config:
    server.routes["/big"] = respond(200, big_feed(2000), {"Content-Type": "application/rss+xml"})
    return make_config(
        tmp_path,
        f"""
store: s.db
topics: {{separatism: [separatism]}}
sources:
  - {{name: big, type: feed, url: "{server.url("/big")}", robots: false}}
""",
    )


def poll(config: Config, store: SqliteStore, now: datetime = NOW) -> RunResult:
    async def go() -> RunResult:
        async with Fetcher(user_agent="t", clock=lambda: now) as fetcher:
            return await run_source(
                config.source("big"), fetcher=fetcher, store=store, matcher=Matcher(config.topics), now=now
            )

    return asyncio.run(go())


@pytest.fixture
def full_store(tmp_path: Path) -> Iterator[SqliteStore]:
    """A store that cannot grow by a page (`PRAGMA max_page_count`): SQLite's own "database or disk is full"."""
    with open_sqlite(tmp_path / "s.db") as store:
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages}")
        yield store


def test_a_full_disk_fails_the_poll_and_the_failure_is_recorded(
    tmp_path: Path, raw_server: RawServer, full_store: SqliteStore
) -> None:
    config = big_source(tmp_path, raw_server)
    result = poll(config, full_store)
    assert not result.ok and result.error is not None and "disk is full" in result.error
    (row,) = full_store.source_rows()
    assert row.state.failures == 1 and "disk is full" in (row.state.last_error or "")  # not "never polled"
    assert full_store.conn.execute("SELECT count(*) FROM posts").fetchone()[0] == 0  # all or nothing

    full_store.conn.execute("PRAGMA max_page_count = 1000000")  # space returns
    later = NOW + timedelta(minutes=20)
    assert poll(config, full_store, later).new_posts == 2000
    fetches = full_store.conn.execute("SELECT status, error FROM fetches ORDER BY id").fetchall()
    assert [status for status, _ in fetches] == ["error", "ok"] and "disk is full" in fetches[0][1]


def test_a_failure_the_store_cannot_take_either_is_written_once_it_takes_writes_again(
    tmp_path: Path, raw_server: RawServer, full_store: SqliteStore
) -> None:
    """No write at all succeeds (not even the small failure record): it is kept and written before the next poll."""
    config = big_source(tmp_path, raw_server)
    full_store.conn.execute("PRAGMA query_only = 1")
    assert not poll(config, full_store).ok
    assert full_store.source_rows() == []  # nothing could be written
    full_store.conn.execute("PRAGMA query_only = 0")
    full_store.conn.execute("PRAGMA max_page_count = 1000000")
    assert poll(config, full_store, NOW + timedelta(minutes=20)).ok
    fetches = full_store.conn.execute("SELECT started_at, status FROM fetches ORDER BY id").fetchall()
    assert fetches[0][1] == "error" and fetches[0][0] == NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert fetches[-1][1] == "ok"


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A filled store nobody may write: in a directory and file without write permission; as root (whom
    permissions do not stop), on a tmpfs remounted read-only (skipped where root cannot mount)."""
    config = write_config(tmp_path, "store: data/store.db\ntopics: {separatism: [separatist*]}\nsources: []\n")
    data = tmp_path / "data"
    data.mkdir()
    if os.geteuid() != 0:
        filled_store(data / "store.db", posts=100)
        (data / "store.db").chmod(stat.S_IRUSR)
        data.chmod(stat.S_IRUSR | stat.S_IXUSR)
        yield config
        data.chmod(stat.S_IRWXU)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(data)], check=False).returncode:
        pytest.skip("root here cannot mount a tmpfs: no read-only store to test on")
    try:
        filled_store(data / "store.db", posts=100)
        subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
        yield config
    finally:
        subprocess.run(["umount", str(data)], check=False)


@pytest.mark.parametrize(
    "command", [["status"], ["search", "separatist"], ["stats", "--topic", "separatism"], ["export", "-o", "-"]]
)
def test_readers_work_on_a_read_only_store(read_only: Path, command: list[str]) -> None:
    result = cli(read_only, *command)
    assert result.exit_code == 0, result.output
    assert "not a usable SQLite store" not in result.output


def test_poll_on_a_read_only_store_says_read_only_not_unusable(read_only: Path) -> None:
    result = cli(read_only, "poll")
    assert result.exit_code == 1
    assert "read-only" in result.stderr and "not a usable SQLite store" not in result.stderr
