"""Hostile input next to healthy sources in one poll, on real parts: a loopback server, the real fetcher,
worker processes and store. The hostile source fails or is cut with a clear message; the others finish as
usual and are never "timed out"; and a killed poll leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from monitor.collectors import SOURCE_MODELS, SOURCE_TYPES, SourceType
from monitor.collectors.feed import FeedSource
from monitor.collectors.fetch import Fetcher, Session
from monitor.config import Config, parse_config
from monitor.pipeline import poll_sources
from monitor.store import Store, open_store
from monitor.types import Collected, RawItem, RunResult, SourceState
from monitor.workers import Workers
from tests.conftest import NOW, RawServer, monitor_cmd, respond, write_config

HEALTHY = {
    "bbc": ("rss/en_bbc-world.xml", 33),
    "heise": ("atom/de_heise.atom", 15),
    "oren": ("rss/ru_oren-ru_windows-1251.xml", 10),
}
UNCLOSED_DIVS = b"<html><body>" + b"<div>" * 280_000  # 1.4 MB: lexbor's tree builder needs minutes for it


def parse_with_no_limits(body: bytes) -> int:
    """What the html collector did before structure limits: hand the whole page to lexbor."""
    return len(LexborHTMLParser(body.decode()).css("div"))


async def collect_unbounded(source: FeedSource, session: Session, state: SourceState, now: datetime) -> Collected:
    resp = await session.get(source.url)
    count = await session.parse(parse_with_no_limits, resp.body)
    return Collected(items=(RawItem(guid="x", url=source.url, title=str(count), text=""),))


@dataclass
class World:
    server: RawServer
    config: Config


@pytest.fixture
def world(tmp_path: Path, corpus: Path, raw_server: RawServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, (path, _) in HEALTHY.items():
        raw_server.routes[f"/{name}"] = respond(200, (corpus / path).read_bytes(), {"Content-Type": "application/xml"})
    raw_server.routes["/hostile"] = respond(200, UNCLOSED_DIVS, {"Content-Type": "text/html"})
    # A source type registered the way any is: a model and a collector, here one that parses without limits.
    monkeypatch.setitem(SOURCE_TYPES, "unbounded", SourceType(FeedSource, collect_unbounded))
    healthy = "\n".join(f"  - {{name: {n}, type: feed, url: '{raw_server.url('/' + n)}'}}" for n in HEALTHY)
    text = f"""
store: store.db
topics:
  world: [world, мир]
defaults:
  robots: false
  timeout: 20s
sources:
  - {{name: hostile, type: unbounded, url: '{raw_server.url("/hostile")}', timeout: 2s}}
{healthy}
"""
    config = parse_config(
        textwrap.dedent(text), base_dir=tmp_path, source_types={**SOURCE_MODELS, "unbounded": FeedSource}
    )
    yield World(raw_server, config)


def poll_with_workers(config: Config, store: Store, workers: Workers) -> list[RunResult]:
    async def go() -> list[RunResult]:
        async with Fetcher(per_host=2, user_agent="t", clock=lambda: NOW, offload=workers.parse) as fetcher:
            return await poll_sources(
                config.sources,
                fetcher=fetcher,
                store=store,
                matcher=workers.matcher,
                clock=lambda: NOW,
                workers=workers,
            )

    return asyncio.run(go())


def test_a_parse_over_its_limit_fails_its_source_and_the_others_finish(world: World) -> None:
    workers = Workers(world.config.topics, processes=1)
    try:
        with open_store(world.config.store) as store:
            results = {r.source: r for r in poll_with_workers(world.config, store, workers)}
            hostile = results["hostile"]
            assert not hostile.ok and hostile.error is not None
            assert hostile.error.startswith("parsing took longer than 2 s; stopped")
            assert store.source_state("hostile").failures == 1
            for name, (_, count) in HEALTHY.items():
                assert results[name].ok and results[name].new_posts == count, results[name]
                assert results[name].error is None and not results[name].warnings
            assert workers.pids  # a fresh worker took over for the healthy sources
    finally:
        workers.close()


def test_hostile_html_pages_are_cut_with_a_warning_and_the_others_finish(
    tmp_path: Path, corpus: Path, raw_server: RawServer
) -> None:
    for name, (path, _) in HEALTHY.items():
        raw_server.routes[f"/{name}"] = respond(200, (corpus / path).read_bytes(), {"Content-Type": "application/xml"})
    article = b"<html><body><article><h2>Separatists met</h2><p>Text.</p></article>"
    raw_server.routes["/deep"] = respond(200, article + UNCLOSED_DIVS, {"Content-Type": "text/html"})
    crowded = article + b"<div " + b" ".join(b"a%d=x" % i for i in range(40_000)) + b">"
    raw_server.routes["/crowded"] = respond(200, crowded, {"Content-Type": "text/html"})
    healthy = "\n".join(f"  - {{name: {n}, type: feed, url: '{raw_server.url('/' + n)}'}}" for n in HEALTHY)
    pages = "\n".join(
        f"  - {{name: {n}, type: html, url: '{raw_server.url('/' + n)}', items: article, fields: {{title: h2}}}}"
        for n in ("deep", "crowded")
    )
    head = "store: store.db\ntopics:\n  world: [world]\ndefaults: {robots: false, timeout: 20s}\nsources:\n"
    text = f"{head}{pages}\n{healthy}\n"
    config = parse_config(text, base_dir=tmp_path, source_types=SOURCE_MODELS)
    workers = Workers(config.topics, processes=1)
    try:
        with open_store(config.store) as store:
            results = {r.source: r for r in poll_with_workers(config, store, workers)}
            for name, reason in (
                ("deep", "elements nested more than 512 deep"),
                ("crowded", "more than 256 attributes"),
            ):
                result = results[name]
                assert result.ok and result.new_posts == 1, result  # the article before the hostile part is kept
                (warning,) = result.warnings
                assert reason in warning and warning.startswith(raw_server.url(f"/{name}"))
                assert store.source_state(name).warnings == result.warnings
            for name, (_, count) in HEALTHY.items():
                assert results[name].ok and results[name].new_posts == count and not results[name].warnings
    finally:
        workers.close()


# --- a killed poll leaves no process behind ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("command", ["poll", "run"])
def test_sigkill_of_a_poll_leaves_no_worker_behind(
    tmp_path: Path, corpus: Path, raw_server: RawServer, command: str
) -> None:
    """`monitor poll`, and the daemon (`monitor run`), killed with SIGKILL while a worker parses: nothing of
    theirs is left (no worker, no helper process of any kind)."""
    raw_server.routes["/big"] = respond(200, (corpus / "rss/en_bbc-world.xml").read_bytes())  # goes to the worker
    raw_server.routes["/slow"] = respond(200, b"<rss/>", delay=60)  # keeps the poll running
    config = write_config(
        tmp_path,
        f"""
        store: store.db
        topics: {{world: [world]}}
        defaults: {{robots: false, timeout: 90s}}
        sources:
          - {{name: big, type: feed, url: "{raw_server.url("/big")}"}}
          - {{name: slow, type: feed, url: "{raw_server.url("/slow")}"}}
        """,
    )
    poll = subprocess.Popen(
        monitor_cmd(config, command),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: everything it starts is in it
    )
    try:
        started = _wait_until(lambda: any(_is_worker(p) for p in _group(poll.pid) if p != poll.pid), 60)
        assert started, f"monitor {command} started no worker process"
        poll.send_signal(signal.SIGKILL)
        poll.wait(10)
        assert _wait_until(lambda: not _group(poll.pid), 15), f"left behind: {_group(poll.pid)}"
    finally:
        if poll.poll() is None:
            poll.kill()
            poll.wait(10)
        for pid in _group(poll.pid):  # never leave our own test's processes behind
            os.kill(pid, signal.SIGKILL)


def _is_worker(pid: int) -> bool:
    try:
        return b"monitor.workerproc" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _group(pgid: int) -> list[int]:
    """Live processes (not zombies) in process group `pgid`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll `condition` every 0.1 s for at most `seconds`; whether it came true."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
