"""Shared plumbing of the benches that drive `monitor` from outside: child processes measured for time and
memory, the loopback world server, config files, percentiles. No monitor imports (its internals move).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = Path(os.environ.get("MONITOR_BENCH_CACHE", Path.home() / ".cache" / "monitor-bench"))


def monitor_exe() -> str:
    """The `monitor` script of the interpreter running the bench (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("monitor")
    return str(beside) if beside.exists() else (shutil.which("monitor") or "monitor")


@dataclass(frozen=True)
class Measured:
    seconds: float
    maxrss_mib: float  # getrusage of the reaped child: the largest of it and its reaped descendants
    tree_mib: float  # peak of the process tree's summed proportional set size (Pss), sampled every 20 ms
    tree_rss_mib: float  # the same for summed RSS (pages shared between the tree's processes counted in each)
    returncode: int
    stdout: str
    stderr: str


def children_of(pid: int) -> list[int]:
    """Every live descendant of `pid` (from /proc/*/stat), not `pid` itself."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def status_kib(pid: int, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def pss_kib(pid: int) -> int:
    """Proportional set size: resident memory with pages shared between processes split among them (so a
    tree's sum does not count a forked worker's shared pages twice)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def run_measured(cmd: Sequence[str], *, cwd: Path | None = None, timeout: float = 600.0) -> Measured:
    """Run `cmd` to its end; wall time, rusage max RSS, and the peak summed Pss of its process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = {"pss": 0, "rss": 0, "tick": 0}
    tree: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            if peak["tick"] % 5 == 0:
                tree[:] = children_of(proc.pid)
            pids = [proc.pid, *tree]
            peak["pss"] = max(peak["pss"], sum(pss_kib(pid) for pid in pids))
            peak["rss"] = max(peak["rss"], sum(status_kib(pid, "VmRSS") for pid in pids))
            peak["tick"] += 1
            done.wait(0.02)

    outputs: dict[str, str] = {}

    def drain(name: str, stream: IO[str]) -> None:
        outputs[name] = stream.read()

    sampler = threading.Thread(target=sample, daemon=True)
    readers = [
        threading.Thread(target=drain, args=(name, stream), daemon=True)
        for name, stream in (("out", proc.stdout), ("err", proc.stderr))
    ]
    sampler.start()
    for thread in readers:
        thread.start()
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    for thread in readers:
        thread.join(30)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        elapsed,
        usage.ru_maxrss / 1024,
        peak["pss"] / 1024,
        peak["rss"] / 1024,
        proc.returncode,
        outputs.get("out", ""),
        outputs.get("err", ""),
    )


@contextlib.contextmanager
def world(
    *, hosts: int, feeds: int, items: int, seed: int = 0, span_days: float = 7.0, log: Path | None = None
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """bench/world_server.py in a process of its own: yields (process, port); stopped on exit."""
    cmd = [sys.executable, str(BENCH / "world_server.py"), "--hosts", str(hosts), "--feeds", str(feeds)]
    cmd += ["--items", str(items), "--seed", str(seed), "--span-days", str(span_days)]
    cmd += ["--log", str(log)] if log else []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(f"world server did not start: {line!r}")
        yield proc, int(line.split()[1])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def control(port: int, path: str) -> str:
    """GET a world-server control path (stdlib only, no proxy)."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        return str(answer.read().decode())


def feed_urls(port: int, feeds: int, hosts: int, first: int = 0) -> list[str]:
    return [f"http://127.0.0.{i % hosts + 1}:{port}/feed/{i}.xml" for i in range(first, first + feeds)]


def config_yaml(
    store: Path | str, urls: Sequence[str], *, topics: str, defaults: str = "", alerts: str = "", interval: str = ""
) -> str:
    every = f", interval: {interval}" if interval else ""
    sources = "\n".join(f"  - {{name: feed-{i}, type: feed, url: '{u}'{every}}}" for i, u in enumerate(urls))
    return f"store: {store}\n{topics}sources:\n{sources}\n{defaults}{alerts}"


def farm_per_host(hosts: int) -> int:
    """monitor's `per_host` against a template farm: 20 on one host (as many connections as reader's 20 workers),
    else its default 2."""
    return 20 if hosts == 1 else 2


def farm_config(urls: Sequence[str], per_host: int) -> str:
    """The config of a poll of a template farm (bench/template_gen.py's topics, robots on, 30 s timeout), its store
    `monitor.db` beside it: what vs_reader.py, repoll_ab.py and poll_timeline.py poll."""
    from bench import template_gen

    defaults = f"defaults:\n  per_host: {per_host}\n  robots: true\n  timeout: 30s\n"
    return config_yaml("monitor.db", urls, topics=template_gen.TOPICS_YAML, defaults=defaults)


# The end of a child process that runs `monitor -q poll` in its own interpreter, `python -c CHILD CONFIG ...` after
# the child's own wrappers (bench/poll_timeline.py, bench/writer_stall.py): `code` is the command's exit status,
# `wall` its time inside the process. The child then prints a JSON object of its figures, with "code", on stderr.
POLL_IN_PROCESS = r"""
sys.argv = ["monitor", "--config", sys.argv[1], "-q", "poll"]
started = time.perf_counter()
try:
    cli.entry()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
wall = time.perf_counter() - started
"""


def child_figures(child: str, args: Sequence[str], *, cwd: Path, timeout: float = 600.0) -> dict[str, Any]:
    """Run `python -c child *args` (see POLL_IN_PROCESS) and return the JSON object it printed last on stderr;
    RuntimeError when it printed none, or when its poll's exit status was not 0."""
    run = subprocess.run(
        [sys.executable, "-c", child, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in run.stderr.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"the poll printed no figures (exit {run.returncode}): {run.stderr[-2000:]}")
    found: dict[str, Any] = json.loads(lines[-1])
    if found["code"] not in (0, None):
        raise RuntimeError(f"monitor poll exited {found['code']}: {run.stderr[-2000:]}")
    return found


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"
