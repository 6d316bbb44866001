"""Soak of the daemon: `monitor run` against many loopback feeds with a spike world and a loopback SMTP server
(issue 10 part 6; issue 8's soak test).

    .venv/bin/python bench/daemon_soak.py                   # 1,000 sources at 1 min for 11 min (issue 10)
    .venv/bin/python bench/daemon_soak.py --interval 1s     # 1,000 sources at 1 s (issue 8's form; heavy)
    .venv/bin/python bench/daemon_soak.py --quick           # 30 sources at 2 s for 20 s (CI: it runs; its
                                                            # slopes are too short to mean anything)
    options: --sources N --interval D --duration D --warmup D --hosts H --per-host P --items I --spike-every D

The world (bench/world_server.py, its own process) serves template-style feeds on 127.0.0.1..127.0.0.H
and logs every request; every `--spike-every` a new topic's word appears in 5 new posts on one feed, so
alerts fire through the run. The SMTP server (aiosmtpd) runs in this process and keeps each message.
Measured, from outside the daemon:
- RSS of the daemon and of its whole process tree, and its open file descriptors, sampled from /proc every
  few seconds; least-squares slope after the warm-up (MiB/hour, fds/hour);
- scheduling, from the world's request log: each source's gaps between polls minus its interval (p50/p99),
  and polls per source against the intervals that passed;
- CPU seconds per poll (utime + stime of the daemon's tree from /proc/PID/stat, over feed requests served);
- emails per alert: the store's `alerts` (and `deliveries`, when that table exists) read with sqlite3,
  against the SMTP log by Message-ID (and by subject, for a copy with another Message-ID);
- after SIGKILL of the daemon: which processes of its tree are still alive 5 s later (orphans; the bench
  then kills them by PID).
Exits 0 whatever it measured (a measurement); 1 only if the bench itself could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import template_gen
from bench.harness import children_of, config_yaml, control, feed_urls, monitor_exe, percentile, status_kib, world
from bench.smtp_sink import Received, SmtpSink

CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh])", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration like 30s, 10m, 1h: {text!r}")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def spike_topics(count: int) -> str:
    return "".join(f"  spike-{k:02d}: [zqspike{k:02d}]\n" for k in range(count))


def alerts_yaml(smtp_port: int) -> str:
    return (
        "alerts:\n  window: 1h\n  baseline: 7d\n  min_count: 3\n  cooldown: 6h\n"
        f"  email:\n    host: 127.0.0.1\n    port: {smtp_port}\n    tls: none\n"
        "    sender: monitor@bench.local\n    to: [analyst@bench.local]\n"
    )


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime (and reaped children's) of the processes, in seconds."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += sum(int(f) for f in fields[11:15])
    return total / CLOCK_TICK


def fd_count(pid: int) -> int:
    try:
        return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return 0


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per hour."""
    if len(points) < 3:
        return float("nan")
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return sum((t - mx) * (v - my) for t, v in points) / var * 3600 if var else float("nan")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def schedule_report(log: Path, interval: float, sources: int, since: float, until: float) -> dict[str, float]:
    """Gaps between each source's polls (feed requests) minus the interval; polls against intervals passed."""
    times: dict[str, list[float]] = defaultdict(list)
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2].startswith("/feed/"):
            times[parts[2]].append(float(parts[0]))
    late = []
    polls_after_first = []
    for ts in times.values():
        ts.sort()
        late += [b - a - interval for a, b in itertools.pairwise(ts) if a >= since]
        polls_after_first.append(len([t for t in ts if t > ts[0]]))
    span = until - since
    return {
        "sources_polled": len(times),
        "sources": sources,
        "requests": sum(len(t) for t in times.values()),
        "late_p50": percentile(late, 50),
        "late_p99": percentile(late, 99),
        "late_max": max(late) if late else float("nan"),
        "early_min": min(late) if late else float("nan"),
        "polls_per_source_p50": percentile(polls_after_first, 50),
        "polls_per_source_min": min(polls_after_first) if polls_after_first else 0,
        "intervals_passed": span / interval,
    }


def mail_report(db: Path, received: list[Received]) -> list[str]:
    lines = []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    alerts = conn.execute("SELECT id, kind, topic, source, status, message_id FROM alerts ORDER BY id").fetchall()
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    deliveries = []
    if "deliveries" in tables:
        deliveries = conn.execute("SELECT alert_id, channel, status, attempts FROM deliveries").fetchall()
    conn.close()
    by_id: dict[str, int] = defaultdict(int)
    by_subject_topic: dict[str, int] = defaultdict(int)
    for message in received:
        by_id[message.message_id] += 1
        for topic in re.findall(r"spike-\d\d", message.subject):
            by_subject_topic[topic] += 1
    per_alert = []
    for _alert_id, kind, topic, source, status, message_id in alerts:
        copies = by_id.get(message_id, 0) if message_id else 0
        if kind == "spike" and topic and topic.startswith("spike-"):
            copies = max(copies, by_subject_topic.get(topic, 0))
        per_alert.append((kind, topic or source, status, copies))
    spike_alerts = [p for p in per_alert if p[0] == "spike" and str(p[1]).startswith("spike-")]
    counts: defaultdict[int, int] = defaultdict(int)
    for *_, copies in per_alert:
        counts[copies] += 1
    lines.append(
        f"alerts in the store: {len(alerts)} ({len(spike_alerts)} for the world's spikes); emails received: "
        f"{len(received)}; alerts by emails each: {dict(sorted(counts.items()))}"
    )
    statuses: defaultdict[str, int] = defaultdict(int)
    for _, _, status, _ in per_alert:
        statuses[status] += 1
    lines.append(f"alert statuses: {dict(statuses)}")
    if deliveries:
        lines.append(f"deliveries rows: {len(deliveries)}")
    else:
        lines.append("deliveries table: absent in this store (emails compared with alerts.message_id and subjects)")
    extra = [p for p in per_alert if p[3] > 1]
    if extra:
        lines.append(f"alerts mailed more than once: {extra[:10]}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--interval", type=seconds, default=60.0)
    parser.add_argument("--duration", type=seconds, default=660.0)
    parser.add_argument("--warmup", type=seconds, default=None, help="default: min(duration/3, max(60s, 2 intervals))")
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--per-host", type=int, default=2)
    parser.add_argument("--items", type=int, default=20, help="items per feed")
    parser.add_argument("--spike-every", type=seconds, default=None, help="default: duration / 20")
    parser.add_argument("--sample-every", type=seconds, default=5.0)
    parser.add_argument("--quick", action="store_true", help="30 sources at 2 s for 20 s")
    parser.add_argument("--orphan-wait", type=seconds, default=5.0, help="after SIGKILL, before looking")
    parser.add_argument("--keep", type=Path, help="keep the store, logs and config in this directory")
    args = parser.parse_args()
    if args.quick:
        args.sources, args.interval, args.duration, args.hosts, args.sample_every = 30, 2.0, 20.0, 5, 2.0
        args.orphan_wait = 2.0
    warmup = args.warmup if args.warmup is not None else min(args.duration / 3, max(60.0, 2 * args.interval))
    spike_every = args.spike_every or args.duration / 20
    spikes = int((args.duration - 10) // spike_every)
    work_ctx = contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory()
    with work_ctx as tmp:
        work = Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        return soak(args, work, warmup, spike_every, spikes)


def soak(args: argparse.Namespace, work: Path, warmup: float, spike_every: float, spikes: int) -> int:
    log = work / "requests.log"
    log.unlink(missing_ok=True)
    smtp = SmtpSink().start()
    print(f"soak: {args.sources} sources at {args.interval:g} s on {args.hosts} loopback hosts (per_host "
          f"{args.per_host}), {args.items} items each, {args.duration:g} s, warm-up {warmup:g} s; a spike every "
          f"{spike_every:g} s ({spikes}); SMTP on 127.0.0.1:{smtp.port}", flush=True)  # fmt: skip
    world_ctx = world(hosts=args.hosts, feeds=args.sources, items=args.items, seed=3, log=log)
    with world_ctx as (_, port):
        interval = f"{args.interval:g}s"
        config = work / "config.yaml"
        topics = template_gen.TOPICS_YAML + spike_topics(max(spikes, 1))
        defaults = f"defaults:\n  per_host: {args.per_host}\n  timeout: 30s\n"
        urls = feed_urls(port, args.sources, args.hosts)
        text = config_yaml("monitor.db", urls, topics=topics, defaults=defaults, alerts=alerts_yaml(smtp.port),
                           interval=interval)  # fmt: skip
        config.write_text(text)
        daemon_log = (work / "daemon.log").open("w")
        started = time.time()
        daemon = subprocess.Popen(
            [monitor_exe(), "--config", str(config), "run"], cwd=work, stdout=daemon_log, stderr=subprocess.STDOUT
        )
        samples: list[tuple[float, float, float, int]] = []  # (t, daemon RSS MiB, tree RSS MiB, fds)
        fired: list[tuple[float, str]] = []
        tree: list[int] = []
        cpu_at_warmup = None
        requests_at_warmup = 0
        next_sample = next_spike = time.time()
        next_spike += spike_every
        spike = 0
        deadline = started + args.duration
        try:
            while time.time() < deadline and daemon.poll() is None:
                now = time.time()
                if now >= next_sample:
                    tree = [daemon.pid, *children_of(daemon.pid)]
                    rss = status_kib(daemon.pid, "VmRSS") / 1024
                    tree_rss = sum(status_kib(p, "VmRSS") for p in tree) / 1024
                    samples.append((now - started, rss, tree_rss, fd_count(daemon.pid)))
                    if cpu_at_warmup is None and now - started >= warmup:
                        cpu_at_warmup = cpu_seconds(tree)
                        control(port, "/_control/flush")
                        requests_at_warmup = sum(1 for line in log.read_text().splitlines() if " /feed/" in line)
                    next_sample += args.sample_every
                if now >= next_spike and spike < spikes:
                    feed = (spike * 37) % args.sources
                    control(port, f"/_control/spike?feed={feed}&term=zqspike{spike:02d}&posts=5")
                    fired.append((time.time(), f"spike-{spike:02d}"))
                    spike += 1
                    next_spike += spike_every
                time.sleep(0.2)
            exited = daemon.poll()
            tree = [daemon.pid, *children_of(daemon.pid)]
            cpu_total = cpu_seconds(tree)
            ended = time.time()
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
            time.sleep(args.orphan_wait)
            survivors = [p for p in tree[1:] if alive(p)]
            names = {p: Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:80] for p in survivors}
            for pid in survivors:  # processes this bench started (through the daemon): ended by their id
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            daemon_log.close()
        control(port, "/_control/flush")
        time.sleep(0.5)
    smtp.stop()
    if exited is not None:
        print(f"!! the daemon exited by itself with {exited} before the end; its log: {work / 'daemon.log'}")
        print((work / "daemon.log").read_text()[-3000:])
    report(args, work, log, samples, started, ended, warmup, cpu_at_warmup, cpu_total, requests_at_warmup)
    print(f"\nafter SIGKILL of the daemon (pid {daemon.pid}), its tree had {len(tree) - 1} other process(es); "
          f"alive {args.orphan_wait:g} s later: {len(survivors)}")  # fmt: skip
    for pid, name in names.items():
        print(f"   orphan {pid}: {name.decode(errors='replace')}")
    print("\n" + "\n".join(mail_report(work / "monitor.db", smtp.received())))
    named = sum(1 for m in smtp.received() if re.search(r"spike-\d\d", m.subject))
    # a spike's feed is polled up to one interval after it fires: one fired later may not be seen before the end
    seen_in_time = sum(1 for at, _ in fired if at <= ended - args.interval - 5)
    print(f"spikes fired: {len(fired)} ({seen_in_time} at least one interval before the end); "
          f"alert emails whose subject names a fired spike: {named}")  # fmt: skip
    return 0


def report(
    args: argparse.Namespace,
    work: Path,
    log: Path,
    samples: list[tuple[float, float, float, int]],
    started: float,
    ended: float,
    warmup: float,
    cpu_at_warmup: float | None,
    cpu_total: float,
    requests_at_warmup: int,
) -> None:
    after = [s for s in samples if s[0] >= warmup]
    print(f"\nmemory and descriptors, {len(samples)} samples ({len(after)} after the warm-up):")
    if samples:
        print(f"   daemon RSS: start {samples[0][1]:.0f} MiB, peak {max(s[1] for s in samples):.0f}, "
              f"end {samples[-1][1]:.0f}; tree RSS peak {max(s[2] for s in samples):.0f} MiB, "
              f"end {samples[-1][2]:.0f}; "
              f"fds start {samples[0][3]}, peak {max(s[3] for s in samples)}, end {samples[-1][3]}")  # fmt: skip
    if after:
        print(f"   after warm-up: daemon RSS {min(s[1] for s in after):.0f}-{max(s[1] for s in after):.0f} MiB, "
              f"slope {slope_per_hour([(s[0], s[1]) for s in after]):+.1f} MiB/hour; tree RSS slope "
              f"{slope_per_hour([(s[0], s[2]) for s in after]):+.1f} MiB/hour; fds "
              f"{min(s[3] for s in after)}-{max(s[3] for s in after)}, slope "
              f"{slope_per_hour([(s[0], float(s[3])) for s in after]):+.1f} fds/hour")  # fmt: skip
    sched = schedule_report(log, args.interval, args.sources, started + warmup, ended)
    print(f"\nscheduling (world's request log, after the warm-up): {sched['sources_polled']}/{sched['sources']} "
          f"sources polled, {sched['requests']:,} feed requests in all")  # fmt: skip
    print(f"   gap between polls minus the interval ({args.interval:g} s): p50 {sched['late_p50']:+.2f} s, "
          f"p99 {sched['late_p99']:+.2f} s, max {sched['late_max']:+.2f} s, min {sched['early_min']:+.2f} s "
          "(each source keeps the phase of its staggered first poll: no jitter)")  # fmt: skip
    print(f"   polls per source after its first: p50 {sched['polls_per_source_p50']:.0f}, min "
          f"{sched['polls_per_source_min']} over {(ended - started) / args.interval:.1f} intervals "
          "of the run")  # fmt: skip
    requests = sched["requests"]
    print(f"\nCPU of the daemon's tree: {cpu_total:.1f} s in {ended - started:.0f} s "
          f"({cpu_total / (ended - started):.0%} of one core) = "
          f"{cpu_total / max(requests, 1) * 1000:.1f} ms per poll")  # fmt: skip
    if cpu_at_warmup is not None and requests > requests_at_warmup:
        steady = (cpu_total - cpu_at_warmup) / (requests - requests_at_warmup)
        print(f"   after the warm-up: {steady * 1000:.1f} ms per poll "
              f"({requests - requests_at_warmup:,} polls)")  # fmt: skip
    conn = sqlite3.connect(f"file:{work / 'monitor.db'}?mode=ro", uri=True)
    fetches = dict(conn.execute("SELECT status, count(*) FROM fetches GROUP BY status").fetchall())
    posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    conn.close()
    print(f"   store: {posts:,} posts; fetch rows by status {fetches}")


if __name__ == "__main__":
    sys.exit(main())
