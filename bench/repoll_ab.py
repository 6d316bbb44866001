"""Two `monitor` installs side by side on the same re-poll: CPU seconds and wall time of each fresh process.

    .venv/bin/python bench/repoll_ab.py A/bin/monitor B/bin/monitor [--hosts 1] [--feeds 200] [--rounds 6]
        [--cold-rounds 0]

A and B are `monitor` scripts of two venvs (e.g. one with main installed, one with a branch: `git archive main |
tar -x -C /tmp/main-src && python3 -m venv /tmp/main-venv && /tmp/main-venv/bin/pip install /tmp/main-src`).
Serves --feeds feeds x 50 items (bench/world_server.py, ETag/304, robots.txt) on --hosts loopback hosts; each side
gets a store of its own and polls it cold once (`monitor -q poll`, robots on, per_host 20 on one host, else 2, as
bench/vs_reader.py), then the re-polls run A B A B ... --rounds times, every answer a 304. Prints each process's
CPU (user + system, from the child's rusage) and wall time, the medians and B / A. CPU is the steadier figure on
a shared machine: other processes stretch the wall time of both sides, less their CPU time. --cold-rounds N adds
N more cold polls per side, A B A B ..., each into a new store of its own, and their medians and B / A.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import farm_config, farm_per_host, feed_urls, world


def run(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one child process run to its end; its exit status must be 0."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=600)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="the `monitor` script of side A (the baseline)")
    parser.add_argument("b", help="the `monitor` script of side B")
    parser.add_argument("--hosts", type=int, default=1)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--cold-rounds", type=int, default=0, help="more cold polls per side, each on a new store")
    args = parser.parse_args()
    per_host = farm_per_host(args.hosts)
    with (
        world(hosts=args.hosts, feeds=args.feeds, items=50, seed=10) as (_, port),
        tempfile.TemporaryDirectory() as tmp,
    ):
        urls = feed_urls(port, args.feeds, args.hosts)
        sides: dict[str, tuple[list[str], Path]] = {}
        for name, exe in (("A", args.a), ("B", args.b)):
            work = Path(tmp) / name
            work.mkdir()
            config = work / "config.yaml"
            config.write_text(farm_config(urls, per_host))
            cmd = [exe, "--config", str(config), "-q", "poll"]
            wall, cpu = run(cmd, work)
            print(f"cold {name}: wall {wall:.2f} s, CPU {cpu:.2f} s ({exe})", flush=True)
            sides[name] = (cmd, work)
        runs: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
        for _ in range(args.rounds):
            for name, (cmd, work) in sides.items():
                runs[name].append(run(cmd, work))
        colds: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
        for index in range(args.cold_rounds):
            for name, (cmd, work) in sides.items():
                fresh = work.parent / f"{name}-cold-{index}"
                fresh.mkdir()
                config = fresh / "config.yaml"  # its store, relative to it: a new one
                config.write_text((work / "config.yaml").read_text())
                colds[name].append(run([*cmd[:2], str(config), *cmd[3:]], fresh))
    report("re-poll", runs, f"{args.feeds} feeds on {args.hosts} host(s), {args.rounds} rounds")
    if args.cold_rounds:
        report("cold", colds, f"{args.feeds} feeds on {args.hosts} host(s), {args.cold_rounds} rounds")
    return 0


def report(what: str, runs: dict[str, list[tuple[float, float]]], case: str) -> None:
    medians = {}
    for name, measured in runs.items():
        walls, cpus = [w for w, _ in measured], [c for _, c in measured]
        medians[name] = (statistics.median(walls), statistics.median(cpus))
        print(f"{what} {name}: CPU s {' '.join(f'{c:.3f}' for c in cpus)} (median {medians[name][1]:.3f}); "
              f"wall s {' '.join(f'{w:.3f}' for w in walls)} (median {medians[name][0]:.3f})")  # fmt: skip
    print(f"{what} B / A: CPU {medians['B'][1] / medians['A'][1]:.3f}, wall {medians['B'][0] / medians['A'][0]:.3f} "
          f"({case})")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
