"""Run the quick form of every bench, so CI runs them and they never rot.

    .venv/bin/python bench/run_all.py --quick        # about a minute on 2 cores; CI's form
    .venv/bin/python bench/run_all.py --quick --only vs_reader daemon_soak

Each bench runs as its own process, two at a time (the quick forms' figures are not the point; the full
forms, run one at a time, give the figures). Prints each bench's output and time. Exit status: 1 if any
bench crashed (a non-zero exit or a timeout), else 0; a missed target is not a crash (no --check here).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
QUICK: dict[str, list[str]] = {
    "daemon_soak": ["daemon_soak.py", "--quick"],
    "vs_reader": ["vs_reader.py", "--quick"],
    "alert_latency": ["alert_latency.py", "--quick"],
    "store_scale": ["store_scale.py", "--quick"],
    "near_dup_candidates": ["near_dup_candidates.py", "--quick", "--decisions"],
    "startup_floor": ["startup_floor.py", "--runs", "1"],
    "record_cost": ["record_cost.py", "--classes", "20"],
    "ingest_bench": ["ingest_bench.py", "--items", "500", "--per-feed", "50"],
    "poll_bench": ["poll_bench.py", "--feeds", "10", "--items", "20", "--hosts", "5"],
    "poll_timeline": ["poll_timeline.py", "--quick"],
    "writer_stall": ["writer_stall.py", "--quick"],
    "fetch_log": ["fetch_log.py", "--quick"],
    "translit_bench": ["translit_bench.py", "--mb", "0.5"],
    "campaigns": ["campaigns.py", "--seeds=1", "--voices=4", "--within=10m", "--networks=2", "--store=2000"],
}
TIMEOUT_S = 300


def run(name: str) -> tuple[str, int, float, str]:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(BENCH / QUICK[name][0]), *QUICK[name][1:]],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        code, output = -1, f"timed out after {TIMEOUT_S} s\n{partial}"
    return name, code, time.perf_counter() - started, str(output)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the quick forms (the only mode)")
    parser.add_argument("--only", nargs="+", choices=sorted(QUICK), help="just these benches")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if not args.quick:
        parser.error("only --quick is offered: run the full form of each bench on its own")
    names = args.only or list(QUICK)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(run, names))
    for name, code, seconds, output in results:
        print(f"\n######## {name} ({' '.join(QUICK[name])}): exit {code}, {seconds:.1f} s\n{output.rstrip()}")
    crashed = [name for name, code, _, _ in results if code != 0]
    print(f"\nrun_all --quick: {len(results)} benches in {time.perf_counter() - started:.1f} s; "
          f"crashed: {', '.join(crashed) or 'none'}")  # fmt: skip
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
