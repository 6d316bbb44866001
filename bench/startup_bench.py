"""Start-up cost of `monitor --help`, `monitor status` and `monitor poll`: imports, measured with -X importtime.

    .venv/bin/python bench/startup_bench.py [--runs 5]

Each command runs `--runs` times as a fresh process in a temporary directory (a one-source config whose
source is a closed loopback port, so `poll` does one quick failed fetch and `status` reads an empty store).
For each it prints the median wall time of the process, the median total import time (the sum of every
module's own time from `python -X importtime`), the baseline of a bare `python -c pass` measured in the
same run, and which heavy libraries the command loaded (`status` in table form, on the store a first
`poll` created). A command should load only what it uses: `--help`
none of them, `status` neither httpx nor numpy nor matplotlib.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = (
    "rich",
    "numpy",
    "matplotlib",
    "httpx",
    "lxml",
    "selectolax",
    "apscheduler",
    "msgspec",
    "yaml",
    "sqlite_utils",
    "ahocorasick",
    "charset_normalizer",
    "asyncio",
)
LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def closed_port() -> int:
    with socket.socket() as sock:  # a port nothing listens on: the poll fails at once (bench only)
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(args: list[str], cwd: Path) -> tuple[float, float, set[str]]:
    """Wall seconds, import seconds (sum of self times) and the top-level packages imported."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MONITOR_CONFIG": str(cwd / "config.yaml")},
    )
    wall = time.perf_counter() - start
    own = 0
    packages = set()
    for line in done.stderr.splitlines():
        match = LINE.match(line)
        if match:
            own += int(match[1])
            packages.add(match[4].split(".")[0])
    return wall, own / 1e6, packages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        cwd = Path(name)
        (cwd / "config.yaml").write_text(
            "store: store.db\ntopics: {t: [x]}\nsources:\n"
            f'  - {{name: a, type: feed, url: "http://127.0.0.1:{closed_port()}/rss", robots: false}}\n',
            encoding="utf-8",
        )
        setup = subprocess.run([sys.executable, "-m", "monitor", "poll"], cwd=cwd, capture_output=True, check=False)
        assert (cwd / "store.db").exists(), setup.stderr  # status then reads a real (small) store
        commands = {
            "python -c pass": ["-c", "pass"],
            "monitor --help": ["-m", "monitor", "--help"],
            "monitor status": ["-m", "monitor", "status"],
            "monitor poll": ["-m", "monitor", "poll"],
        }
        samples: dict[str, list[tuple[float, float, set[str]]]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so that a busy moment of the machine hits every command
            for label, argv in commands.items():
                samples[label].append(run(argv, cwd))
        base_wall = statistics.median(s[0] for s in samples["python -c pass"])
        print(f"{args.runs} runs each, medians; python {sys.version.split()[0]}")
        for label, runs in samples.items():
            wall = statistics.median(s[0] for s in runs)
            imports = statistics.median(s[1] for s in runs)
            heavy = sorted(set.union(*(s[2] for s in runs)) & set(HEAVY))
            print(
                f"{label:16s} wall {wall * 1000:6.0f} ms (x{wall / base_wall:4.1f} of python -c pass)  "
                f"imports {imports * 1000:6.0f} ms  loads: {', '.join(heavy) or '-'}"
            )


if __name__ == "__main__":
    main()
