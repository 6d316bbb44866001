"""Alert latency: from a spike's posts appearing on a loopback source to the email arriving (issue 10 part 7).

    .venv/bin/python bench/alert_latency.py [--spikes 5] [--sources 20] [--interval 10s]
    .venv/bin/python bench/alert_latency.py --quick       # 2 spikes, 5 sources at 2 s (CI; about 15 s)
    .venv/bin/python bench/alert_latency.py --check       # exit 1 if the max misses the target

`monitor run` (a fresh process) polls `--sources` loopback feeds (bench/world_server.py, template-style,
its own process) every 10 s; the SMTP server (aiosmtpd) runs in this process. After the first polls have
settled, each spike makes 5 posts containing a new topic's word appear on one feed (the world's control
call returns the moment they are served); latency = arrival of the email whose subject names that topic
minus that moment. Spikes are `--gap` apart, one topic each (the cooldown keeps a topic quiet after its
alert). Prints each spike, the median and the max. Target: <= 15 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import template_gen
from bench.daemon_soak import alerts_yaml, seconds, spike_topics
from bench.harness import config_yaml, control, feed_urls, monitor_exe, verdict, world
from bench.smtp_sink import SmtpSink

TARGET_S = 15.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spikes", type=int, default=5)
    parser.add_argument("--sources", type=int, default=20)
    parser.add_argument("--interval", type=seconds, default=10.0)
    parser.add_argument("--gap", type=seconds, default=None, help="between spikes (default: 1.3 intervals)")
    parser.add_argument("--settle", type=seconds, default=None, help="before the first spike (default 2 intervals)")
    parser.add_argument("--quick", action="store_true", help="2 spikes")
    parser.add_argument("--check", action="store_true", help="exit 1 if a spike's email misses the target")
    args = parser.parse_args()
    if args.quick:  # the same path at a 2 s interval: it runs, in seconds (the target is for 10 s)
        args.spikes, args.sources, args.interval, args.gap, args.settle = 2, 5, 2.0, 3.0, 5.0
    gap = args.gap if args.gap is not None else 1.3 * args.interval
    settle = args.settle if args.settle is not None else 2 * args.interval
    smtp = SmtpSink().start()
    latencies: list[float | None] = []
    with world(hosts=1, feeds=args.sources, items=20, seed=5) as (_, port), tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = work / "config.yaml"
        config.write_text(
            config_yaml(
                "monitor.db",
                feed_urls(port, args.sources, 1),
                topics=template_gen.TOPICS_YAML + spike_topics(args.spikes),
                defaults="defaults:\n  per_host: 4\n",
                alerts=alerts_yaml(smtp.port),
                interval=f"{args.interval:g}s",
            )
        )
        print(f"{args.sources} loopback feeds at {args.interval:g} s; {args.spikes} spikes of 5 posts, {gap:g} s "
              f"apart after {settle:g} s; SMTP on 127.0.0.1:{smtp.port}", flush=True)  # fmt: skip
        log = (work / "daemon.log").open("w")
        daemon = subprocess.Popen([monitor_exe(), "--config", str(config), "run"], cwd=work, stdout=log, stderr=log)
        try:
            time.sleep(settle)
            for k in range(args.spikes):
                topic = f"spike-{k:02d}"
                answer = control(port, f"/_control/spike?feed={(k * 7) % args.sources}&term=zqspike{k:02d}&posts=5")
                at = float(json.loads(answer)["at"])
                deadline = at + max(60.0, 4 * args.interval)
                arrived = None
                while time.time() < deadline and daemon.poll() is None:
                    hits = [m.at for m in smtp.received() if topic in m.subject]
                    if hits:
                        arrived = min(hits)
                        break
                    time.sleep(0.05)
                latency = None if arrived is None else arrived - at
                latencies.append(latency)
                shown = "no email within the deadline" if latency is None else f"{latency:.2f} s"
                print(f"   spike {k + 1} ({topic}): {shown}", flush=True)
                time.sleep(max(0.0, at + gap - time.time()))
        finally:
            daemon.terminate()
            try:
                daemon.wait(20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
            log.close()
            smtp.stop()
        if daemon.returncode not in (0, -15):
            print(f"!! monitor run exited {daemon.returncode}:\n{(work / 'daemon.log').read_text()[-2000:]}")
    got = [x for x in latencies if x is not None]
    if not got:
        print("no alert email arrived: latency not measured")
        return 1 if args.check else 0
    worst = max(got) if len(got) == len(latencies) else float("inf")
    print(f"alert latency over {len(latencies)} spikes: median {statistics.median(got):.2f} s, max "
          f"{worst:.2f} s, missing {len(latencies) - len(got)} (target <= {TARGET_S:g} s: "
          f"{verdict(worst <= TARGET_S)}; the source interval alone allows up to {args.interval:g} s "
          "+ 10% jitter)")  # fmt: skip
    return 1 if args.check and worst > TARGET_S else 0


if __name__ == "__main__":
    sys.exit(main())
