"""Kill loop: SIGKILL `monitor run` again and again against a loopback world with spikes and a loopback SMTP server,
then count the emails each alert got (issue 8.1).

    .venv/bin/python bench/kill_loop.py                       # 100 kills, 8 feeds
    .venv/bin/python bench/kill_loop.py --kills 25 --feeds 5  # the form tests/test_exactly_once.py runs
    options: --kills N --seed S --feeds F --accept-share P --keep DIR

Each round adds a spike (5 posts naming a new topic's word on one feed of bench/world_server.py), starts
`monitor run` and kills its process group with SIGKILL at a moment drawn from a seeded generator: either a time
after the start (0.3-4 s: during start-up, a poll, an evaluation or a send), or, for `--accept-share` of the
rounds, the instant the SMTP server accepts a message, before it replies 250: the accept-before-commit window,
the one place where a resend is allowed. After each kill the bench reads the store: an alert that got a copy in
that run and is not committed as sent was killed in its window, and is owed exactly one resend. A last run, not
killed, delivers what is left. Prints emails per alert, resends, distinct Message-IDs per alert, and any alert
whose copies are not 1 + its window kills (there should be none). Exit 0 whatever it measured.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import control, feed_urls, monitor_exe, world
from bench.smtp_sink import Received, SmtpSink

ACCEPT_FALLBACK_S = 8.0  # a round waiting for a message that never comes is killed after this
FINAL_DEADLINE_S = 120.0  # the last run must have delivered everything by then


@dataclass
class KillLoopResult:
    kills: int = 0
    window_kills: int = 0  # kills that left an accepted message uncommitted (each owes one resend)
    alerts: int = 0
    emails: int = 0
    topics_spiked: int = 0
    alerts_per_topic: Counter[str] = field(default_factory=Counter)
    copies: dict[str, int] = field(default_factory=dict)  # "spike #3" -> emails received
    windows: Counter[str] = field(default_factory=Counter)  # "spike #3" -> kills in its window
    distinct_ids_per_alert: set[int] = field(default_factory=set)
    unmailed: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)  # copies != 1 + window kills
    seconds: float = 0.0

    @property
    def resends(self) -> int:
        return self.emails - len(self.copies)

    def summary(self) -> str:
        per = Counter(self.copies.values())
        per_topic = sorted(set(self.alerts_per_topic.values()))
        ids = sorted(self.distinct_ids_per_alert)
        return (
            f"{self.kills} SIGKILLs ({self.window_kills} in the accept-before-commit window) in {self.seconds:.0f} s; "
            f"{self.topics_spiked} spikes -> {self.alerts} alerts (per topic: {per_topic}); "
            f"{self.emails} emails = {self.emails / max(self.alerts, 1):.3f} per alert; alerts by emails each: "
            f"{dict(sorted(per.items()))}; resends {self.resends} (all with the first copy's Message-ID: "
            f"{self.distinct_ids_per_alert == {1}}); distinct Message-IDs per alert: {ids}; "
            f"unmailed {self.unmailed}; copies not 1 + window kills: {self.unexplained}"
        )


def config_text(port: int, smtp_port: int, feeds: int, topics: int) -> str:
    names = "".join(f"  spike-{k:03d}: [zqkill{k:03d}]\n" for k in range(topics))
    urls = feed_urls(port, feeds, 1)
    sources = "".join(f"  - {{name: feed-{i}, type: feed, url: '{u}', interval: 2s}}\n" for i, u in enumerate(urls))
    return (
        f"store: monitor.db\ntopics:\n{names}sources:\n{sources}defaults:\n  timeout: 10s\n"
        "alerts:\n  window: 1h\n  min_count: 3\n  cooldown: 6h\n"
        f"  email: {{host: 127.0.0.1, port: {smtp_port}, tls: none, sender: m@bench.local, to: [a@bench.local], "
        "timeout: 10s}\n"
    )


def delivery_status(db: Path) -> dict[str, str]:
    """'spike #3' -> the email delivery's status, read as another process would."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute(
            """SELECT a.kind, a.id, d.status FROM alerts a JOIN deliveries d ON d.alert_id = a.id
               WHERE d.channel = 'email'"""
        ).fetchall()
    except sqlite3.OperationalError:  # killed before the schema was created
        return {}
    finally:
        conn.close()
    return {f"{kind} #{alert_id}": status for kind, alert_id, status in rows}


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [monitor_exe(), "--config", str(config), "run"],
            cwd=config.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the daemon and its worker: one process group, killed together
        )


class KillOnAccept:
    """Armed with a process group, SIGKILLs it from inside the SMTP server's DATA handler: the message is
    accepted (kept) and the client never hears the 250."""

    def __init__(self) -> None:
        self.target: int | None = None
        self.fired = threading.Event()
        self._lock = threading.Lock()

    def arm(self, pid: int) -> None:
        with self._lock:
            self.target = pid
            self.fired.clear()

    def disarm(self) -> None:
        with self._lock:
            self.target = None

    def __call__(self, _: Received) -> None:
        with self._lock:
            pid, self.target = self.target, None
        if pid is not None:
            os.killpg(pid, signal.SIGKILL)
            self.fired.set()


def kill_loop(*, kills: int, seed: int, work: Path, feeds: int = 8, accept_share: float = 0.4) -> KillLoopResult:
    """Run the loop in `work`; returns what it counted."""
    rng = random.Random(seed)
    result = KillLoopResult()
    began = time.monotonic()
    smtp = SmtpSink().start()
    trigger = KillOnAccept()
    smtp.on_accept = trigger
    log = work / "daemon.log"
    db = work / "monitor.db"
    try:
        with world(hosts=1, feeds=feeds, items=6, seed=seed) as (_, port):
            config = work / "config.yaml"
            config.write_text(config_text(port, smtp.port, feeds, kills), encoding="utf-8")
            for round_ in range(kills):
                control(port, f"/_control/spike?feed={round_ % feeds}&term=zqkill{round_:03d}&posts=5")
                result.topics_spiked += 1
                seen = len(smtp.received())
                proc = start(config, log)
                if rng.random() < accept_share:
                    trigger.arm(proc.pid)
                    if not trigger.fired.wait(ACCEPT_FALLBACK_S):
                        trigger.disarm()  # then kill on time instead
                        os.killpg(proc.pid, signal.SIGKILL)
                else:
                    time.sleep(rng.uniform(0.3, 4.0))  # the moment is drawn; nothing is asserted about where it fell
                    os.killpg(proc.pid, signal.SIGKILL)
                trigger.disarm()
                proc.wait(30)
                result.kills += 1
                smtp.settle()
                status = delivery_status(db)
                landed = {m.alert for m in smtp.received()[seen:]}
                in_window = [alert for alert in landed if status.get(alert) != "sent"]
                result.window_kills += bool(in_window)
                result.windows.update(in_window)
            proc = start(config, log)
            deadline = time.monotonic() + FINAL_DEADLINE_S
            try:
                while time.monotonic() < deadline:
                    status = delivery_status(db)
                    if len(status) >= result.topics_spiked and set(status.values()) == {"sent"}:
                        break
                    time.sleep(0.5)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
            smtp.settle()
    finally:
        smtp.stop()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    alerts = conn.execute("SELECT kind, id, topic, message_id FROM alerts").fetchall()
    conn.close()
    received = smtp.received()
    ids: dict[str, set[str]] = defaultdict(set)
    copies: Counter[str] = Counter()
    for message in received:
        copies[message.alert] += 1
        ids[message.alert].add(message.message_id)
    result.alerts = len(alerts)
    result.emails = len(received)
    result.copies = dict(copies)
    result.alerts_per_topic = Counter(str(topic) for _, _, topic, _ in alerts)
    result.distinct_ids_per_alert = {len(found) for found in ids.values()}
    for kind, alert_id, _, message_id in alerts:
        name = f"{kind} #{alert_id}"
        if copies[name] == 0:
            result.unmailed.append(name)
        elif copies[name] != 1 + result.windows[name] or ids[name] != {message_id}:
            result.unexplained.append(f"{name}: {copies[name]} emails, {result.windows[name]} window kills")
    result.seconds = time.monotonic() - began
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--feeds", type=int, default=8)
    parser.add_argument("--accept-share", type=float, default=0.4, help="share of kills at the SMTP accept")
    parser.add_argument("--keep", type=Path, help="keep the store, config and daemon log in this directory")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        result = kill_loop(kills=args.kills, seed=args.seed, work=args.keep, feeds=args.feeds,
                           accept_share=args.accept_share)  # fmt: skip
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = kill_loop(kills=args.kills, seed=args.seed, work=Path(tmp), feeds=args.feeds,
                               accept_share=args.accept_share)  # fmt: skip
    print(f"kill_loop --kills {args.kills} --seed {args.seed} --feeds {args.feeds}: {result.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
