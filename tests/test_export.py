"""`monitor export` on a real store: CSV and JSONL content, filters, atomic files, the CLI, flat memory."""

from __future__ import annotations

import csv
import gc
import io
import json
import os
import stat
import sys
import tracemalloc
from collections.abc import Generator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor import dedupe
from monitor.exceptions import MonitorError
from monitor.export import BOM, EXPORT_COLUMNS, csv_line, export_posts, json_line
from monitor.normalize import content_hash
from monitor.store import PostFilter, PostRow, Store, open_store
from monitor.store.sqlite import SqliteStore
from monitor.types import Match, MatchedPost, Post, SourceState
from tests.conftest import NOW, invoke, run_monitor, write_config

KAZAKH = 'Халық кеңесі: "тәуелсіздік" туралы мәлімдеме, қала әкімдігі үнсіз'
RUSSIAN = "Сепаратисты объявили «Народный совет»;\nвторая строка, с запятой\r\nи третья"
ENGLISH = 'The so-called "People\'s Council" met, again.'


def add(
    store: Store,
    key: str,
    *,
    topics: dict[str, str] | None = None,
    source: str = "news",
    title: str = "Council session",
    text: str = ENGLISH,
    hours_ago: float = 1.0,
    extra: tuple[tuple[str, str], ...] = (),
) -> None:
    """One post published `hours_ago` before NOW; `topics` maps topic -> the term that matched it."""
    when = NOW - timedelta(hours=hours_ago)
    post = Post(
        source=source,
        key=key,
        url=f"https://example.org/{key}",
        title=title,
        text=text,
        author="Автор",
        published_at=when,
        first_seen_at=when,
        content_hash=content_hash(title, text + key),
        extra=extra,
    )
    matches = tuple(Match(topic, term) for topic, term in (topics or {}).items())
    store.save_poll(
        state=SourceState(name=source),
        source_type="feed",
        source_url=None,
        posts=[MatchedPost(post, matches, dedupe.signature(title, text))],
        fetches=(),
        now=NOW,
    )


@pytest.fixture
def filled(store: Store) -> Store:
    """Four posts: Kazakh (two topics, with extras), Russian, English, and one matching nothing."""
    add(
        store,
        "kz",
        title=KAZAKH,
        text=KAZAKH,
        hours_ago=30,
        topics={"peoples-council": "Халық кеңес*", "separatism": "тәуелсіздік"},
        extra=(("views", "1200"),),
    )
    add(store, "ru", title="Новости", text=RUSSIAN, hours_ago=20, topics={"separatism": "сепаратист*"}, source="wire")
    add(store, "en", text=ENGLISH, hours_ago=10, topics={"peoples-council": "People's Council"})
    add(store, "none", title="Weather", text="Rain tomorrow, and wind.", hours_ago=5)
    return store


def export(store: Store, out: Path | None, fmt: str = "csv", bom: bool = False, **overrides: Any) -> int:
    fields: dict[str, Any] = {"matching_only": True}
    fields.update({k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
    where = PostFilter(**fields)
    return export_posts(store, fmt=fmt, output=out, where=where, bom=bom)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def test_csv_round_trips_cyrillic_kazakh_quotes_and_line_breaks(filled: Store, tmp_path: Path) -> None:
    out = tmp_path / "posts.csv"
    assert export(filled, out) == 3
    raw = out.read_bytes()
    assert not raw.startswith(BOM.encode())
    assert raw.startswith(
        b"id,source,key,url,title,text,author,published_at,first_seen_at,updated_at,cluster_id,"
        b"parent_id,topics,terms,extra\r\n"
    )
    rows = read_csv(out)
    assert [r["key"] for r in rows] == ["kz", "ru", "en"]  # oldest first
    kz, ru, en = rows
    assert kz["title"] == KAZAKH and kz["text"] == KAZAKH and kz["author"] == "Автор"
    assert kz["topics"] == "peoples-council;separatism" and kz["terms"] == "Халық кеңес*;тәуелсіздік"
    assert json.loads(kz["extra"]) == {"views": "1200"}
    assert ru["text"] == RUSSIAN  # quotes, semicolon, LF and CRLF inside a field survive
    assert ru["source"] == "wire" and ru["extra"] == "" and ru["updated_at"] == "" and ru["parent_id"] == ""
    assert en["text"] == ENGLISH and en["topics"] == "peoples-council"
    assert isinstance(filled, SqliteStore)
    stored = filled.conn.execute("SELECT id, published_at, cluster_id FROM posts WHERE key = 'kz'").fetchone()
    assert (int(kz["id"]), kz["published_at"], int(kz["cluster_id"])) == stored


def test_bom_only_when_asked(filled: Store, tmp_path: Path) -> None:
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    export(filled, plain)
    export(filled, excel, bom=True)
    assert excel.read_bytes() == BOM.encode() + plain.read_bytes()
    with excel.open(encoding="utf-8-sig", newline="") as handle:  # how Excel-minded readers open it
        assert [r["key"] for r in csv.DictReader(handle)] == ["kz", "ru", "en"]


def test_jsonl_is_one_object_per_line_with_lists_and_objects(filled: Store, tmp_path: Path) -> None:
    add(filled, "ls", text="first\u2028second\u2029third\x85fourth", hours_ago=2, topics={"separatism": "x"})
    out = tmp_path / "posts.jsonl"
    assert export(filled, out, fmt="jsonl") == 4
    text = out.read_text(encoding="utf-8")
    assert "Халық" in text  # UTF-8, not \\u escapes
    lines = text.splitlines()  # splits on U+2028 too: those must be escaped
    assert len(lines) == 4
    records = [json.loads(line) for line in lines]
    assert [list(r) for r in records] == [list(EXPORT_COLUMNS)] * 4
    kz = records[0]
    assert kz["topics"] == ["peoples-council", "separatism"] and kz["terms"] == ["Халық кеңес*", "тәуелсіздік"]
    assert kz["extra"] == {"views": "1200"} and kz["updated_at"] is None and isinstance(kz["id"], int)
    assert records[1]["text"] == RUSSIAN
    assert records[3]["text"] == "first\u2028second\u2029third\x85fourth"


@pytest.mark.parametrize(
    ("options", "keys"),
    [
        ({}, ["kz", "ru", "en"]),
        ({"matching_only": False}, ["kz", "ru", "en", "none"]),
        ({"topics": ("separatism",)}, ["kz", "ru"]),
        ({"topics": ("separatism",), "matching_only": False}, ["kz", "ru"]),  # a topic implies matching
        ({"topics": ("peoples-council", "separatism")}, ["kz", "ru", "en"]),
        ({"topics": ("no-such-topic",)}, []),
        ({"sources": ("wire",)}, ["ru"]),
        ({"sources": ("news",), "matching_only": False}, ["kz", "en", "none"]),
        ({"since": NOW - timedelta(hours=20)}, ["ru", "en"]),  # inclusive
        ({"until": NOW - timedelta(hours=20)}, ["kz", "ru"]),  # inclusive
        ({"since": NOW - timedelta(hours=25), "until": NOW - timedelta(hours=6), "matching_only": False}, ["ru", "en"]),
    ],
)
def test_filters(filled: Store, tmp_path: Path, options: dict[str, Any], keys: list[str]) -> None:
    out = tmp_path / "posts.jsonl"
    assert export(filled, out, fmt="jsonl", **options) == len(keys)
    assert [r["key"] for r in read_jsonl(out)] == keys


def test_a_topic_filter_still_lists_every_topic_of_the_post(filled: Store, tmp_path: Path) -> None:
    out = tmp_path / "posts.csv"
    export(filled, out, topics=("separatism",))
    assert read_csv(out)[0]["topics"] == "peoples-council;separatism"


def test_an_empty_store_gives_a_header_only_csv_and_an_empty_jsonl(store: Store, tmp_path: Path) -> None:
    assert export(store, tmp_path / "e.csv") == 0
    assert (tmp_path / "e.csv").read_bytes() == (",".join(EXPORT_COLUMNS) + "\r\n").encode()
    assert export(store, tmp_path / "e.jsonl", fmt="jsonl") == 0
    assert (tmp_path / "e.jsonl").read_bytes() == b""


def test_stdout_is_utf8_through_the_buffer(filled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = io.BytesIO()
    fake = io.TextIOWrapper(raw, encoding="ascii")  # a C-locale stdout: its text layer cannot write Cyrillic
    monkeypatch.setattr("sys.stdout", fake)
    assert export(filled, None) == 3
    rows = list(csv.DictReader(io.StringIO(raw.getvalue().decode("utf-8"), newline="")))
    assert rows[0]["title"] == KAZAKH


def test_a_closed_pipe_raises_and_ends_the_query_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class ClosedPipe(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(io.BufferedWriter(ClosedPipe())))
    store = open_store(tmp_path / "s.db")
    for i in range(100):  # more than one write's worth: the pipe breaks mid-stream
        add(store, f"k{i}", topics={"separatism": "x"}, text=ENGLISH * 30, hours_ago=i)
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(BrokenPipeError) as caught:
        export(store, None, fmt="jsonl")
    store.close()
    del caught  # frees the traceback, and with it any generator still open
    gc.collect()
    assert unraisable == []  # the SELECT had ended: no generator finished later on a closed connection
    monkeypatch.undo()


def test_an_interrupted_export_leaves_the_old_file_and_no_temporary(
    filled: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "posts.csv"
    out.write_text("previous export\n", encoding="utf-8")
    real = SqliteStore.iter_posts

    def interrupted(self: SqliteStore, *args: Any, **kwargs: Any) -> Generator[PostRow, None, None]:
        rows = real(self, *args, **kwargs)
        yield next(rows)
        raise KeyboardInterrupt

    monkeypatch.setattr(SqliteStore, "iter_posts", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export(filled, out)
    assert out.read_text(encoding="utf-8") == "previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["monitor.db", "monitor.db-shm", "monitor.db-wal", "posts.csv"]


def test_a_missing_directory_is_an_os_error_and_leaves_nothing(filled: Store, tmp_path: Path) -> None:
    with pytest.raises(OSError, match="No such file"):
        export(filled, tmp_path / "missing" / "posts.csv")
    assert not (tmp_path / "missing").exists()


def test_unknown_format_is_refused(filled: Store, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        export(filled, tmp_path / "x.xml", fmt="xml")
    assert not (tmp_path / "x.xml").exists()


def test_memory_stays_flat_on_20000_posts(tmp_path: Path) -> None:
    """40 MB of text goes out while at most a few chunks of rows are alive (tracemalloc counts Python objects)."""
    body = "Сепаратисты и Халық кеңесі: " + "мәлімдеме туралы хабарлама " * 70
    with open_store(tmp_path / "big.db") as store:
        for batch in range(20):
            posts = []
            for i in range(batch * 1000, batch * 1000 + 1000):
                when = NOW - timedelta(minutes=i)
                text = f"{i} {body}"
                post = Post(
                    source="news",
                    key=f"k{i}",
                    url=f"https://example.org/{i}",
                    title=f"Пост {i}",
                    text=text,
                    author=None,
                    published_at=when,
                    first_seen_at=when,
                    content_hash=content_hash("", text),
                )
                posts.append(MatchedPost(post, (Match("separatism", "сепаратист*"),), b""))
            store.save_poll(
                state=SourceState(name="news"), source_type="feed", source_url=None, posts=posts, fetches=(), now=NOW
            )
        for fmt in ("csv", "jsonl"):
            out = tmp_path / f"big.{fmt}"
            tracemalloc.start()
            try:
                assert export(store, out, fmt=fmt) == 20_000
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert out.stat().st_size > 40_000_000
            assert peak < 4_000_000, f"{fmt}: peak {peak:,} bytes"


# Text a scraper could bring back: any printable or control character, quotes, separators, line breaks.
cell_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@given(title=cell_text, text=cell_text, author=st.none() | cell_text, terms=st.lists(cell_text, max_size=3))
def test_csv_lines_match_the_csv_module_and_read_back(
    title: str, text: str, author: str | None, terms: list[str]
) -> None:
    topics = tuple(f"topic{i}" for i in range(len(terms)))
    row = PostRow(
        7,
        "news",
        "key,1",
        None,
        title,
        text,
        author,
        "2026-03-01T11:00:00Z",
        "2026-03-01T11:00:00Z",
        None,
        7,
        None,
        topics,
        tuple(terms),
        '{"views": "1"}',
    )
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\r\n").writerow(
        (*row[:12], ";".join(row.topics), ";".join(row.terms), row.extra)
    )
    line = csv_line(row)
    assert line == expected.getvalue()
    [cells] = list(csv.reader(io.StringIO(line, newline="")))
    assert cells[4:7] == [title, text, author or ""]


@given(title=cell_text, text=cell_text)
def test_json_lines_are_single_lines_that_read_back(title: str, text: str) -> None:
    row = PostRow(1, "news", "k", "https://x", title, text, None, "t", "t", None, 1, None, ("a",), ("b",), None)
    line = json_line(row)
    assert line.endswith("\n") and len(line.splitlines()) == 1
    assert json.loads(line)["title"] == title and json.loads(line)["text"] == text


# ------------------------------------------------------------------------------------------- the CLI
CONFIG = """
store: store.db
topics:
  separatism: [separatism, сепаратист*]
  peoples-council: ["People's Council", "Халық кеңес*"]
sources:
  - {name: news, type: feed, url: "http://127.0.0.1:9/rss"}
  - {name: wire, type: feed, url: "http://127.0.0.1:9/wire"}
"""


@pytest.fixture
def cli_config(tmp_path: Path) -> Path:
    config = write_config(tmp_path, CONFIG)
    with open_store(tmp_path / "store.db") as store:
        add(store, "kz", title=KAZAKH, text=KAZAKH, hours_ago=30, topics={"peoples-council": "Халық кеңес*"})
        add(store, "ru", text=RUSSIAN, hours_ago=20, topics={"separatism": "сепаратист*"}, source="wire")
        add(store, "none", title="Weather", text="Rain.", hours_ago=5)
    return config


def test_cli_exports_csv_to_a_file(cli_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = invoke(cli_config, "export", "--format", "csv", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"2 posts exported to {out}" in result.stderr
    rows = read_csv(out)
    assert [r["title"] for r in rows] == [KAZAKH, "Council session"] and rows[1]["text"] == RUSSIAN


def test_cli_exports_jsonl_to_stdout_in_utf8_whatever_the_locale(cli_config: Path) -> None:
    result = invoke(
        cli_config,
        "export",
        "--format",
        "jsonl",
        "--all",
        "--source",
        "news",
        env={"PYTHONIOENCODING": "ascii", "LC_ALL": "C", "LANG": "C"},
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["key"] for r in records] == ["kz", "none"]
    assert records[0]["title"] == KAZAKH and records[1]["topics"] == []
    assert "2 posts exported" in result.stderr


def test_cli_filters_by_topic_and_time_and_adds_a_bom(cli_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "sep.csv"
    result = invoke(
        cli_config, "export", "--topic", "separatism", "--since", "2026-02-28T00:00:00Z", "--bom", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(BOM.encode() + b"id,")
    with out.open(encoding="utf-8-sig", newline="") as handle:
        assert [r["key"] for r in csv.DictReader(handle)] == ["ru"]
    late = invoke(cli_config, "export", "--format", "jsonl", "--since", "2026-03-01T07:00:00Z", "--all")
    assert [json.loads(line)["key"] for line in late.stdout.splitlines()] == ["none"]


def test_cli_cannot_write_is_a_clear_error(cli_config: Path, tmp_path: Path) -> None:
    result = invoke(cli_config, "export", "-o", str(tmp_path / "missing" / "out.csv"))
    assert result.returncode == 1
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr


def _no_temporaries(directory: Path) -> bool:
    return not list(directory.glob(".*.tmp"))


def test_cli_refuses_to_replace_a_symlink_and_leaves_it_and_its_file(cli_config: Path, tmp_path: Path) -> None:
    target = tmp_path / "real.csv"
    target.write_text("keep me\n", encoding="utf-8")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    result = invoke(cli_config, "export", "-o", str(link))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{link} is a symbolic link (to {target})" in result.stderr
    assert link.is_symlink() and target.read_text(encoding="utf-8") == "keep me\n"
    assert _no_temporaries(tmp_path)


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_cli_refuses_special_files(cli_config: Path, tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
        expected = "is a named pipe (FIFO), not a regular file"
    elif kind == "device":  # a node of its own: never a system device, which a regression would replace
        target = tmp_path / "null"
        try:
            os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("creating a device node needs CAP_MKNOD")
        expected = "is a character device, not a regular file"
    else:
        target = tmp_path / "folder"
        target.mkdir()
        expected = "is a directory"
    result = run_monitor(cli_config, "export", "-o", str(target), timeout=30)  # a FIFO opened would block here
    assert result.returncode in (1, 2) and expected in result.stderr.replace("\n", " "), result.stderr
    assert "Traceback" not in result.stderr and _no_temporaries(tmp_path)
    if kind == "fifo":
        assert stat.S_ISFIFO(target.lstat().st_mode)
    if kind == "device":
        assert result.returncode == 1 and stat.S_ISCHR(target.lstat().st_mode)


def test_cli_dash_is_standard_output(cli_config: Path, tmp_path: Path) -> None:
    result = invoke(cli_config, "export", "--format", "jsonl", "-o", "-", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["key"] for line in result.stdout.splitlines()] == ["kz", "ru"]
    assert not (tmp_path / "-").exists()


def test_replacing_a_file_keeps_its_permissions(filled: Store, tmp_path: Path) -> None:
    out = tmp_path / "private.csv"
    out.write_text("old\n", encoding="utf-8")
    out.chmod(0o600)
    export(filled, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and out.read_text(encoding="utf-8").startswith("id,")
    fresh = tmp_path / "new.csv"
    export(filled, fresh)
    assert fresh.exists() and _no_temporaries(tmp_path)


def test_export_posts_refuses_before_any_work(filled: Store, tmp_path: Path) -> None:
    link = tmp_path / "l.csv"
    link.symlink_to(tmp_path / "missing.csv")  # dangling: a rename would still replace the link
    with pytest.raises(MonitorError, match="is a symbolic link"):
        export(filled, link)
    assert link.is_symlink() and not (tmp_path / "missing.csv").exists()
