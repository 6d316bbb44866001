"""The reader library's side of bench/vs_reader.py, run by the interpreter of reader's own venv.

    reader-venv/bin/python bench/reader_update.py DB URLS_FILE [--add] [--workers 20]

With --add, adds every URL of URLS_FILE (one a line) first (the cold poll); then
`update_feeds_iter(workers=N, scheduled=False)`.
Prints one JSON line: feeds, entries in the store, seconds inside the process. Imports only reader.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

started = time.perf_counter()

import reader  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("urls")
    parser.add_argument("--add", action="store_true")
    parser.add_argument("--workers", type=int, default=20)
    args = parser.parse_args()
    store = reader.make_reader(args.db)
    if args.add:
        for url in Path(args.urls).read_text().split():
            store.add_feed(url, exist_ok=True)
    failed = 0
    # scheduled=False: every feed now, as `monitor poll` does (reader 3.x otherwise skips feeds not yet due)
    for result in store.update_feeds_iter(workers=args.workers, scheduled=False):
        failed += isinstance(result.value, Exception)
    counts = store.get_entry_counts()
    print(json.dumps({"entries": counts.total, "failed": failed, "seconds": time.perf_counter() - started}))
    store.close()


if __name__ == "__main__":
    main()
