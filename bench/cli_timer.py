"""Time a `monitor` command inside its process, without the interpreter's start-up.

    .venv/bin/python bench/cli_timer.py --calls 5 -- --config C search WORD --format json

Imports the console script's entry point (`monitor.cli:entry`, as named in pyproject.toml: the public
surface, not an internal module), then calls it `--calls` times in this one process with those arguments,
standard output discarded. Prints one JSON line: `first` (seconds of the first call, which pays the
command's lazy imports and a cold page cache) and `warm` (the later calls: the command's own work).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time


def main() -> None:
    args = sys.argv[1:]
    calls = 1
    if args[:1] == ["--calls"]:
        calls, args = int(args[1]), args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    started = time.perf_counter()
    from monitor.cli import main as cli

    imported = time.perf_counter() - started
    times, codes = [], []
    for _ in range(calls):
        sink = io.StringIO()
        t = time.perf_counter()
        with contextlib.redirect_stdout(sink):
            try:
                cli.main(args=args, prog_name="monitor", standalone_mode=False)
                codes.append(0)
            except SystemExit as exc:
                codes.append(int(exc.code or 0))
        times.append(time.perf_counter() - t)
    print(json.dumps({"import": imported, "first": times[0], "warm": times[1:], "codes": codes}))


if __name__ == "__main__":
    main()
