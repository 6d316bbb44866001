"""Where a cold `monitor poll` spends its time: the main thread's saves and preparing, and the parse worker's share.

    .venv/bin/python bench/poll_timeline.py                    # 200 feeds x 50 items, one loopback host, 3 runs
    .venv/bin/python bench/poll_timeline.py --hosts 50 --runs 5
    .venv/bin/python bench/poll_timeline.py --quick            # 20 x 20, one run (CI)

Serves template-style feeds (bench/template_gen.py) from bench/world_server.py, then runs each cold poll on a
fresh store as a fresh process of this interpreter that wraps, before calling the console script's entry
point, three of monitor's functions with timers: `SqliteStore.save_poll` (a poll's one transaction),
`prepare` (normalise, match, sign; where `monitor poll` runs it, on the main thread) and the parse worker's
round trip (`_Worker.call`, in the thread that waits for it). The wrappers cost a few microseconds per call,
against milliseconds of work. Prints per run: the wall time of the command inside the process, the main
thread's CPU, the time in saves and in preparing (both synchronous on the event loop's thread: nothing else
runs there meanwhile), the worker's round trips and the worker process's CPU, each also as a share of the wall
time. What is left of the main thread is fetching, hand-offs to the worker and the event loop.

The question it answers: which process and stage bounds a cold poll on two cores (issue 10's cold target).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import POLL_IN_PROCESS, child_figures, farm_config, farm_per_host, feed_urls, median, world

CHILD = (
    r"""
import json, resource, sys, threading, time
import monitor.cli as cli
import monitor.pipeline as pipeline
import monitor.workers as workers
from monitor.store.sqlite import SqliteStore

spent = {"save": 0.0, "prepare": 0.0, "worker_round_trips": 0.0}
counts = {"save": 0, "prepare": 0, "worker_round_trips": 0}
lock = threading.Lock()

def timed(key, fn):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            with lock:
                spent[key] += time.perf_counter() - started
                counts[key] += 1
    return wrapper

SqliteStore.save_poll = timed("save", SqliteStore.save_poll)
pipeline.prepare = timed("prepare", pipeline.prepare)
workers.prepare = timed("prepare", workers.prepare)
workers._Worker.call = timed("worker_round_trips", workers._Worker.call)
cpu = time.thread_time()
"""
    + POLL_IN_PROCESS
    + r"""
main_cpu = time.thread_time() - cpu
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, "wall": wall, "main_thread_cpu": main_cpu, "spent": spent, "counts": counts,
                  "worker_cpu": children.ru_utime + children.ru_stime}), file=sys.stderr)
"""
)


class Figures(NamedTuple):
    wall: float
    main_thread_cpu: float
    worker_cpu: float
    spent: dict[str, float]  # seconds in each wrapped function
    calls: dict[str, int]


def one_poll(config: str, work: Path) -> Figures:
    found = child_figures(CHILD, [config], cwd=work)
    return Figures(found["wall"], found["main_thread_cpu"], found["worker_cpu"], found["spent"], found["counts"])


HEADER = (
    "   run |  wall s | main-thread CPU s | saves s (share, calls) | prepare s (share) "
    "| worker round trips s (share) | worker CPU s"
)


def row(run: int, f: Figures) -> str:
    save, prepare, trips = (f.spent[k] for k in ("save", "prepare", "worker_round_trips"))
    return (
        f"   {run:3d} | {f.wall:7.2f} | {f.main_thread_cpu:17.2f} | {save:6.2f} ({save / f.wall:4.0%}, "
        f"{f.calls['save']:4d})   | {prepare:6.2f} ({prepare / f.wall:4.0%})    | {trips:6.2f} "
        f"({trips / f.wall:4.0%})                | {f.worker_cpu:6.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20 feeds x 20 items, one run")
    args = parser.parse_args()
    feeds, items, runs = (20, 20, 1) if args.quick else (args.feeds, args.items, args.runs)
    per_host = farm_per_host(args.hosts)
    print(
        f"== cold `monitor poll`, {feeds} feeds x {items} items on {args.hosts} loopback host(s), per_host {per_host}"
    )
    print(HEADER)
    shares: list[tuple[float, float, float, float, float]] = []
    with world(hosts=args.hosts, feeds=feeds, items=items, seed=10) as (_, port), tempfile.TemporaryDirectory() as tmp:
        for run in range(1, runs + 1):
            work = Path(tmp) / f"run{run}"
            work.mkdir()
            config = work / "config.yaml"
            urls = feed_urls(port, feeds, args.hosts)
            config.write_text(farm_config(urls, per_host))
            found = one_poll(str(config), work)
            print(row(run, found))
            shares.append(
                (
                    found.wall,
                    found.main_thread_cpu / found.wall,
                    found.spent["save"] / found.wall,
                    found.spent["prepare"] / found.wall,
                    found.spent["worker_round_trips"] / found.wall,
                )
            )
    walls, cpu, saves, prepares, trips = (median(column) for column in zip(*shares, strict=True))
    print(
        f"   medians: wall {walls:.2f} s; main thread on CPU {cpu:.0%} of it, in saves {saves:.0%}, preparing "
        f"{prepares:.0%}; worker round trips {trips:.0%}"
    )


if __name__ == "__main__":
    main()
