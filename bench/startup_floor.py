"""What `monitor poll` pays before it polls: the import time and memory of each package it loads (issue 10).

    .venv/bin/python bench/startup_floor.py [--runs 5] [--python PYTHON]

--python: the interpreter of the install to measure (default: this one). A development venv holds the test
tools, and some of them change what a poll imports (httpcore imports trio when it is installed, which selenium
pulls in); for a user's figures, point it at an install of monitor alone, such as bench/vs_reader.py's
(`~/.cache/monitor-bench/monitor-venv/bin/python`).

A re-poll where every answer is a 304 spends about half its time importing, and a cold poll's peak memory is
mostly the code of what it imported. This prints, for the modules a cold `monitor poll` loads (its entry modules
below, and everything they import), each third-party package's cost over the standard-library modules the poll
loads anyway: the wall time of importing it in a fresh interpreter (median of --runs) and the proportional set
size (Pss) it adds. Then the same for monitor's own modules, over all of that. A package's figure includes the
packages only it pulls in (httpx: httpcore, h11, anyio, ...).

This is the floor a command starts from: a re-poll cannot take less than the imports it keeps, and a poll's peak
memory not less than the packages it needs. Read against bench/vs_reader.py's figures, it says which packages
a target needs gone from a command's start-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import sysconfig
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# What a cold `monitor poll` of feeds imports: the CLI, the service and the pipeline, the feed collector and its
# parser, the SQLite store and its migrations, numpy (signatures). httpcore's locks and events are asyncio's own
# (monitor/collectors/aio_sync.py), so its first request loads nothing more: anyio's asyncio backend no longer
# (tests/test_startup_imports.py). Checked against the sys.modules of a real cold poll of 200 feeds: the same
# modules, but for a few of the standard library (difflib, two codecs, gc).
ENTRY = (
    "monitor.cli",
    "monitor.service",
    "monitor.collectors.feed",
    "monitor.collectors.feedparse",
    "monitor.store.sqlite",
    "monitor.store.sqlite.schema",
    "monitor.prepare",
    "numpy",
)

PYTHON = sys.executable  # the interpreter measured (--python)
# Every probe runs with -P: `python -c` would put the working directory first on sys.path, and from a checkout
# that imports the checkout's monitor (its sources compiled at each start, with PYTHONDONTWRITEBYTECODE set)
# instead of the install being measured.

_PROBE = r"""
import importlib, json, sys, time
def pss():
    for line in open("/proc/self/smaps_rollup"):
        if line.startswith("Pss:"):
            return int(line.split()[1])
def load(names):
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # a module the poll imported under a condition this probe does not meet
            pass
load(json.loads(sys.argv[1]))
before, started = pss(), time.perf_counter()
load(json.loads(sys.argv[2]))
print(json.dumps({"ms": (time.perf_counter() - started) * 1000, "pss_kib": pss() - before}))
"""

_MODULES = r"""
import importlib, json, sys
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def probe(base: list[str], measured: list[str]) -> tuple[float, float]:
    """(ms, KiB of Pss) of importing `measured` in a fresh interpreter that has imported `base`."""
    out = subprocess.run(
        [PYTHON, "-P", "-c", _PROBE, json.dumps(base), json.dumps(measured)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(out.stdout)
    return float(result["ms"]), float(result["pss_kib"])


def poll_modules() -> list[str]:
    out = subprocess.run(
        [PYTHON, "-P", "-c", _MODULES, json.dumps(ENTRY)], capture_output=True, text=True, check=True, timeout=120
    )
    return list(json.loads(out.stdout))


def stdlib_modules(modules: list[str]) -> list[str]:
    """The top-level standard-library modules among `modules` (builtin ones, or found under the stdlib path)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    tops = sorted({m.split(".")[0] for m in modules})
    out = subprocess.run(
        [
            PYTHON,
            "-P",
            "-c",
            "import importlib.util, json, sys\n"
            "r = {}\n"
            "for n in json.loads(sys.argv[1]):\n"
            "    try:\n"
            "        s = importlib.util.find_spec(n)\n"
            "    except ValueError:\n"  # __main__ and the like
            "        s = None\n"
            "    r[n] = None if s is None else (s.origin or '')\n"
            "print(json.dumps(r))",
            json.dumps(tops),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    origins: dict[str, str | None] = json.loads(out.stdout)
    found = []
    for name, origin in origins.items():
        if origin is None or name.startswith("_sysconfigdata"):
            continue
        if origin in ("built-in", "frozen") or (
            Path(origin).resolve().is_relative_to(stdlib) and "site-packages" not in origin
        ):
            found.append(name)
    return [m for m in modules if m.split(".")[0] in set(found) and not m.startswith("encodings.")]


def row(label: str, figures: list[tuple[float, float]]) -> None:
    ms, pss = statistics.median(f[0] for f in figures), statistics.median(f[1] for f in figures)
    print(f"   {label:<38} {ms:9.1f} {pss / 1024:8.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per figure (median)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the install to measure")
    args = parser.parse_args()
    global PYTHON  # noqa: PLW0603  # one interpreter for every probe of this run
    PYTHON = args.python
    modules = poll_modules()
    stdlib = stdlib_modules(modules)
    third = sorted({m.split(".")[0] for m in modules} - {m.split(".")[0] for m in stdlib} - {"monitor"})
    print(f"a cold `monitor poll` loads {len(modules)} modules: {len(stdlib)} of the standard library, "
          f"{len(third)} third-party packages, monitor's own")  # fmt: skip
    print(f"   {'':<38} {'import ms':>9} {'Pss MiB':>8}")
    row("the standard library, over a bare one", [probe([], stdlib) for _ in range(args.runs)])
    print("   each package, over the standard library:")
    rows = []
    for package in third:
        mine = [m for m in modules if m.split(".")[0] == package]  # its modules the poll loaded
        figures = [probe(stdlib, mine) for _ in range(args.runs)]
        rows.append((package, statistics.median(f[0] for f in figures), statistics.median(f[1] for f in figures)))
    for package, ms, pss in sorted(rows, key=lambda r: -r[2]):
        if ms >= 1.0 or pss >= 256:
            print(f"   {package:<38} {ms:9.1f} {pss / 1024:8.1f}")
    own = sorted(m for m in modules if m == "monitor" or m.startswith("monitor."))
    others = [m for m in modules if m.split(".")[0] in set(third)]
    row(f"monitor ({len(own)} modules), over all above", [probe(stdlib + others, own) for _ in range(args.runs)])
    row("everything, over a bare interpreter", [probe([], modules) for _ in range(args.runs)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
