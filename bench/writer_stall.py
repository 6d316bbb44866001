"""How long a poll's saves wait for the write lock while WAL checkpoints run, on a large store.

    .venv/bin/python bench/writer_stall.py                          # the 1M store (built once, ~5 min), 3 pairs
    .venv/bin/python bench/writer_stall.py --size 1m --pairs 5 --cache /tmp/scale
    .venv/bin/python bench/writer_stall.py --quick                  # a 200-post store, one pair (CI: it runs)

The stores are bench/scale_store.py's (built once under the bench cache or `--cache`, then reused). Each run
polls a new batch of feeds (40 x 100 template-style items from a loopback world) into a fresh copy of the store,
as one `monitor poll` process whose store connection has a trace callback: the time from each save's BEGIN
IMMEDIATE to its next statement is that save's wait for the write lock. A checkpoint that holds writers off shows
there; in the daemon, whose saves run on the event loop, every source waits with it.

A is this version. B is the same code with `checkpoint.sync_store_file` made a no-op, so the FULL checkpoint that
lets the WAL start over flushes the store file itself, writers held off (the previous version). They alternate,
A B, B A, each into its own copy. Printed per run: the poll's wall time, the longest wait, the sum of the waits,
and the checkpoint thread's PASSIVE checkpoints (the thread runs once the WAL passes 10,000 pages, which a batch
into a 1M store does and one into a small store does not: `--quick` only shows that the bench runs). The 1M store's
full-text index is merged first (`scale_store.merge_fts`), so that no copy's first save pays that merge.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import template_gen as gen
from bench.harness import POLL_IN_PROCESS, child_figures, config_yaml, feed_urls, median, world
from bench.scale_store import ensure_stores, merge_fts, sizes_arg, store_path, use_cache

CHILD = (
    r"""
import json, sys, time
import monitor.cli as cli
import monitor.store.sqlite as sqlite_store
from monitor.store.sqlite import checkpoint, fts

if sys.argv[2] == "B":
    checkpoint.sync_store_file = lambda path: False
waits, begun, opened = [], [None], []
open_sqlite = sqlite_store.open_sqlite

def trace(sql):
    now = time.perf_counter()
    if begun[0] is not None:
        waits.append(now - begun[0])
        begun[0] = None
    if sql.startswith("BEGIN IMMEDIATE"):
        begun[0] = now

def traced(*args, **kwargs):
    store = open_sqlite(*args, **kwargs)
    store.conn.set_trace_callback(trace)
    opened.append(store)
    return store

sqlite_store.open_sqlite = traced
"""
    + POLL_IN_PROCESS
    + r"""
passive = sum(s.checkpointer.checkpoints for s in opened if s.checkpointer is not None)
print(json.dumps({"code": code, "wall": wall, "waits": waits, "passive": passive}), file=sys.stderr)
"""
)


class Run(NamedTuple):
    wall: float
    longest: float
    total: float
    saves: int
    passive: int


def one_poll(store: Path, variant: str, seed: int, port: int, hosts: int, feeds: int, work: Path) -> Run:
    work.mkdir(parents=True)
    target = work / "store.db"
    for part in store.parent.glob(store.name + "*"):  # the store and any -wal beside it
        shutil.copy(part, work / part.name.replace(store.name, target.name))
    urls = feed_urls(port, feeds, hosts)
    text = config_yaml(target, urls, topics=gen.TOPICS_YAML, defaults="defaults:\n  per_host: 2\n")
    config = work / "config.yaml"
    config.write_text(text.replace("name: feed-", f"name: stall{seed}-"))
    found = child_figures(CHILD, [str(config), variant], cwd=work, timeout=1200)
    waits = found["waits"] or [0.0]
    shutil.rmtree(work)
    return Run(found["wall"], max(waits), sum(waits), len(found["waits"]), found["passive"])


def quick_store(work: Path, feeds: int, items: int, hosts: int) -> Path:
    """`--quick`'s store: one batch polled into an empty one (not the bench cache, which store_scale.py's quick form
    may be building at the same moment under bench/run_all.py)."""
    base = work / "base"
    base.mkdir()
    with world(hosts=hosts, feeds=feeds, items=items, seed=299, span_days=60) as (_, port):
        urls = feed_urls(port, feeds, hosts)
        (base / "config.yaml").write_text(config_yaml(base / "store.db", urls, topics=gen.TOPICS_YAML))
        subprocess.run([sys.executable, "-c", CHILD, str(base / "config.yaml"), "A"], cwd=base, check=True, timeout=600)
    return base / "store.db"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1m", help="store size (bench/scale_store.py builds it once)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--cache", type=Path, help="keep and reuse the stores under this directory (/tmp/scale)")
    parser.add_argument("--quick", action="store_true", help="a store of 200 posts, 10 feeds x 20 items, one pair")
    args = parser.parse_args()
    if args.cache:
        use_cache(args.cache)
    feeds, items, hosts = (10, 20, 5) if args.quick else (40, 100, 5)
    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            store, args.pairs = quick_store(Path(tmp), feeds, items, hosts), 1
        else:
            size = next(sizes_arg([args.size]))
            ensure_stores([size], poll_max=100_000, rebuild=False)
            store = store_path(size)
            merge_fts(store)
        with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as conn:
            posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
        print(f"== {feeds} new feeds x {items} items polled into a copy of a {posts:,}-post store, A B pairs")
        print("   A: this version; B: the FULL checkpoint flushes the store file itself (sync_store_file a no-op)")
        columns = ("wall s", 7), ("longest wait ms", 16), ("waits ms", 9), ("saves", 6), ("checkpoints", 12)
        print(f"   {'run':>4} {'':2} " + " ".join(f"{name:>{width}}" for name, width in columns))
        runs: dict[str, list[Run]] = {"A": [], "B": []}
        for pair in range(args.pairs):
            seed = 300 + pair
            with world(hosts=hosts, feeds=feeds, items=items, seed=seed, span_days=60) as (_, port):
                for variant in ("A", "B") if pair % 2 == 0 else ("B", "A"):
                    found = one_poll(store, variant, seed, port, hosts, feeds, Path(tmp) / f"{variant}{pair}")
                    runs[variant].append(found)
                    print(
                        f"   {pair + 1:>4} {variant:2} {found.wall:7.2f} {found.longest * 1000:16.1f} "
                        f"{found.total * 1000:9.1f} {found.saves:6d} {found.passive:12d}"
                    )
    print("\n   medians:")
    for variant, label in (("A", "this version"), ("B", "FULL flushes itself")):
        rs = runs[variant]
        print(
            f"   {variant} ({label}): wall {median([r.wall for r in rs]):.2f} s, longest wait "
            f"{median([r.longest for r in rs]) * 1000:.1f} ms (worst {max(r.longest for r in rs) * 1000:.1f}), "
            f"waits {median([r.total for r in rs]) * 1000:.1f} ms"
        )
    wall_a, wall_b = median([r.wall for r in runs["A"]]), median([r.wall for r in runs["B"]])
    print(f"   wall A/B: {wall_a / wall_b:.2f}")


if __name__ == "__main__":
    main()
