"""Exactly one email per alert (issue 8.1), with a real aiosmtpd server and real concurrency.

In-process: 50 sources finishing at once, each with a spike, through the daemon's own poll job
(`Daemon.poll_job`: poll, then the alert hooks of `monitor run`), for several rounds; and several processes
delivering from one store at once (the store's claim). Across kills: `bench/kill_loop.py`'s loop of SIGKILLs of
`monitor run` (its quick form here; the longer form is the bench).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from bench.kill_loop import kill_loop
from monitor.collectors.fetch import Fetcher
from monitor.daemon import Daemon, alert_hooks
from monitor.outbox import Outbox
from monitor.store import open_store
from monitor.store.sqlite import SqliteStore
from monitor.types import AlertKind, NewAlert
from tests.conftest import RawServer, SmtpServer, make_config, respond

FEEDS = 50
ROUNDS = 3
SPIKING = 5  # feeds with a spike in each round (a spike email draws a chart: the costly part of a send)
PENDING = 10  # alerts already waiting when each round's polls finish
WORDS = ("harbour", "council", "bridge", "market", "school", "station", "river", "hospital", "airport", "stadium")


def spiking(round_: int) -> list[int]:
    return [k for k in range(FEEDS) if k % (FEEDS // SPIKING) == round_]


def item(feed: int, key: str, word: str, when: datetime, n: int) -> str:
    place = WORDS[(feed + 3 * n) % len(WORDS)]
    return (
        f"<item><guid>f{feed}-{key}-{n}</guid><title>{word} near the {place} ({n})</title>"
        f"<link>http://example.org/{feed}/{key}/{n}</link><pubDate>{format_datetime(when)}</pubDate>"
        f"<description>Witness {n} of feed {feed} saw {word} by the {place} ({key}).</description></item>"
    )


def world_feed(feed: int, rounds: int, now: datetime) -> bytes:
    """Feed `feed` after `rounds` rounds. Each round adds one post of the feed's background topic (three hours old:
    a new match, so the poll's after-poll hook runs, and no spike); a spiking feed adds 4 fresh posts of that
    round's term too."""
    items = []
    for r in range(rounds):
        items.append(item(feed, f"bg{r}", f"zqbg{feed:02d}", now - timedelta(hours=3), 0))
        if feed in spiking(r):
            items += [item(feed, f"r{r}", term(r, feed), now, n) for n in range(4)]
    body = "".join(items)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>f{feed}</title>{body}</channel></rss>'.encode()


def term(round_: int, feed: int) -> str:
    return f"zqspike{round_}x{feed:02d}"


def world_config(tmp_path: Path, server: RawServer, smtp_port: int) -> str:
    topics = "".join(f"  t{r}-{k:02d}: [{term(r, k)}]\n" for r in range(ROUNDS) for k in spiking(r))
    topics += "".join(f"  bg-{k:02d}: [zqbg{k:02d}]\n" for k in range(FEEDS))
    sources = "".join(
        f"  - {{name: f{k:02d}, type: feed, url: '{server.url(f'/feed/{k}')}', robots: false}}\n" for k in range(FEEDS)
    )
    return f"""
store: store.db
topics:
{topics}sources:
{sources}alerts:
  window: 1h
  min_count: 3
  email: {{host: 127.0.0.1, port: {smtp_port}, tls: none, sender: m@example.org, to: [a@example.org], timeout: 10s}}
"""


def mailed(smtp: SmtpServer) -> list[EmailMessage]:
    messages = smtp.sink.parsed()
    assert all(isinstance(m, EmailMessage) for m in messages)
    return [m for m in messages if isinstance(m, EmailMessage)]


def copies_per_alert(messages: list[EmailMessage]) -> tuple[Counter[str], dict[str, set[str]]]:
    """(emails per alert, Message-IDs per alert), alerts named by the X-Monitor-Alert header."""
    copies: Counter[str] = Counter()
    ids: dict[str, set[str]] = {}
    for message in messages:
        alert = str(message["X-Monitor-Alert"])
        copies[alert] += 1
        ids.setdefault(alert, set()).add(str(message["Message-ID"]))
    return copies, ids


@pytest.mark.slow
def test_fifty_sources_finishing_at_once_mail_each_alert_once(
    tmp_path: Path, raw_server: RawServer, smtp: SmtpServer, store: SqliteStore
) -> None:
    smtp.sink.stall_rcpt = 0.02  # each send takes a moment: later polls finish while earlier sends are under way
    config = make_config(tmp_path, world_config(tmp_path, raw_server, smtp.port))
    now = datetime.now(UTC) - timedelta(minutes=1)  # fresh: an alert over 24 h old is never mailed
    after_poll, on_tick = alert_hooks(Outbox(config, store), lambda: datetime.now(UTC))
    daemon = Daemon(config, store, clock=lambda: datetime.now(UTC), after_poll=after_poll, on_tick=on_tick)

    async def round_of_polls() -> None:
        async with Fetcher(per_host=FEEDS, user_agent="t", clock=lambda: datetime.now(UTC)) as fetcher:
            # Every source's poll job at once, as the scheduler runs them when their times come together.
            await asyncio.gather(*(daemon.poll_job(source, fetcher) for source in config.sources))

    try:
        for rounds in range(1, ROUNDS + 1):
            for k in range(FEEDS):
                body = world_feed(k, rounds, now)
                raw_server.routes[f"/feed/{k}"] = respond(200, body, {"Content-Type": "application/rss+xml"})
            for _ in range(PENDING):
                store.insert_alert(NewAlert(kind=AlertKind.DIGEST), created_at=datetime.now(UTC), channels=["email"])
            asyncio.run(round_of_polls())
            alerts = store.alerts(limit=10_000)
            expected = (SPIKING + PENDING) * rounds
            assert len(store.alerts(kind=AlertKind.SPIKE)) == SPIKING * rounds, f"round {rounds}: a spike per feed"
            copies, ids = copies_per_alert(mailed(smtp))
            assert len(smtp.sink.messages) == len(alerts) == expected, f"round {rounds}: {len(smtp.sink.messages)}"
            assert set(copies.values()) == {1}, f"round {rounds}: alerts mailed more than once: {copies}"
            stored = {f"{a.kind.value} #{a.id}": a.message_id for a in alerts}
            assert {alert: next(iter(found)) for alert, found in ids.items()} == stored  # each alert's own id
            assert {a.status.value for a in alerts} == {"sent"}
    finally:
        daemon.workers.close()


DELIVER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from monitor.collectors import SOURCE_MODELS
from monitor.config import load_config
from monitor.outbox import Outbox
from monitor.store import open_store

config = load_config(Path(sys.argv[1]), source_types=SOURCE_MODELS)
with open_store(config.store) as store:
    sys.stdin.readline()  # every process is ready: deliver together
    done = Outbox(config, store).deliver(datetime.now(UTC))
print(sum(1 for d in done if d.status == "sent"))
"""


@pytest.mark.slow
def test_processes_delivering_from_one_store_at_once_mail_each_alert_once(
    tmp_path: Path, raw_server: RawServer, smtp: SmtpServer
) -> None:
    """The claim in the store: four processes deliver the same 40 pending alerts at the same moment."""
    smtp.sink.stall_rcpt = 0.02
    path = tmp_path / "config.yaml"
    path.write_text(world_config(tmp_path, raw_server, smtp.port), encoding="utf-8")
    with open_store(tmp_path / "store.db") as store:
        for _ in range(40):
            store.insert_alert(NewAlert(kind=AlertKind.DIGEST), created_at=datetime.now(UTC), channels=["email"])
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DELIVER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        for _ in range(4)
    ]
    for proc in procs:  # the processes start together; each blocks on its stdin until all have been told to go
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    sent = [int(proc.communicate(timeout=120)[0]) for proc in procs]
    copies, ids = copies_per_alert(mailed(smtp))
    assert sum(sent) == 40 and len(smtp.sink.messages) == 40, sent
    assert set(copies.values()) == {1} and len(copies) == 40
    assert all(len(found) == 1 for found in ids.values())


@pytest.mark.slow
def test_kill_loop_every_alert_mailed_once_but_for_the_accept_before_commit_window(tmp_path: Path) -> None:
    """>= 25 SIGKILLs of `monitor run` at seeded moments (some at the very moment the SMTP server accepts a
    message, before `sent` can be committed). Every alert is mailed; an alert has one email plus one per kill
    that fell in its window (its resend), and every copy of an alert carries the same Message-ID."""
    result = kill_loop(kills=25, seed=8, work=tmp_path, feeds=5)
    print(result.summary())  # the figures, with -s
    assert result.kills >= 25
    assert result.alerts >= 20, result.summary()  # the spikes were polled and alerted
    assert result.unmailed == [], result.summary()
    assert result.distinct_ids_per_alert == {1}, result.summary()
    assert result.unexplained == [], result.summary()  # copies == 1 + kills in that alert's window
    assert result.window_kills >= 1, result.summary()  # the window was exercised, not only talked about
