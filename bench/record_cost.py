"""What a record type costs to define: a frozen dataclass against a frozen msgspec struct, and the dataclasses a
`monitor poll` still defines before it polls (ARCHITECTURE.md, "Records").

    .venv/bin/python bench/record_cost.py [--classes 200] [--python PYTHON]

Defines --classes classes of 8 fields each way in this interpreter and prints the microseconds per class. Then,
in a fresh interpreter of --python (default: this one; bench/vs_reader.py's install of monitor alone is
`~/.cache/monitor-bench/monitor-venv/bin/python`), imports what a poll imports and prints how many dataclasses
each package defined on the way and the milliseconds that took (dataclasses' own work, timed around it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import msgspec

FIELDS = "\n".join(f"    f{i}: int = 0" for i in range(8))
KINDS = {
    "frozen dataclass": "@dataclass(frozen=True)\nclass C:\n" + FIELDS,
    "frozen msgspec struct": "class C(msgspec.Struct, frozen=True):\n" + FIELDS,
}

# The modules a poll imports before its first request (bench/startup_floor.py's entry list, less numpy and the
# parser, which a re-poll does not load).
ENTRY = ("monitor.cli", "monitor.service", "monitor.collectors.feed", "monitor.store.sqlite")

_COUNT = r"""
import dataclasses, importlib, json, sys, time
stock = dataclasses._process_class
spent, count = {}, {}
def timed(cls, *args, **kwargs):
    started = time.perf_counter()
    try:
        return stock(cls, *args, **kwargs)
    finally:
        top = cls.__module__.split(".")[0]
        spent[top] = spent.get(top, 0.0) + time.perf_counter() - started
        count[top] = count.get(top, 0) + 1
dataclasses._process_class = timed
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
print(json.dumps({top: [count[top], spent[top] * 1000] for top in count}))
"""


def per_class_us(source: str, classes: int) -> float:
    code = compile(source, "<record>", "exec")
    names: dict[str, Any] = {"dataclass": dataclass, "msgspec": msgspec}
    started = time.perf_counter()
    for _ in range(classes):
        exec(code, dict(names))  # the class statement itself is what is measured
    return (time.perf_counter() - started) / classes * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the install to count in")
    args = parser.parse_args()
    for kind, source in KINDS.items():
        print(f"{kind:24s} {per_class_us(source, args.classes):8.0f} us per class (8 fields, {args.classes} defined)")
    done = subprocess.run(  # -P: the install's monitor, not ./monitor when run from a checkout
        [args.python, "-P", "-c", _COUNT, json.dumps(ENTRY)], capture_output=True, text=True, check=True, timeout=120
    )
    found = json.loads(done.stdout)
    print(f"dataclasses a poll defines before its first request ({args.python}):")
    for top, (count, ms) in sorted(found.items(), key=lambda kv: -kv[1][1]):
        print(f"   {top:24s} {count:4d} classes {ms:7.1f} ms")
    total = sum(ms for _, ms in found.values())
    print(f"   {'all':24s} {sum(c for c, _ in found.values()):4d} classes {total:7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
