"""Band rows written behind (monitor/store/sqlite/bands.py): a poll's COMMIT and store CPU per new post, this
version against another, side by side on copies of the same stores (issue 10 part 5).

    git archive main | tar -x -C /tmp/bands-base
    PYTHONPATH=/tmp/bands-base .venv/bin/python /tmp/bands-base/bench/scale_store.py --sizes 10k 100k 1m \\
        --poll-max 10k --cache /tmp/bands-scale                        # stores built by the other version
    .venv/bin/python bench/band_levels.py --base /tmp/bands-base --cache /tmp/bands-scale --sizes 10k 100k 1m

The cached store's full-text index is merged first, once (`merge_fts`: the fast builder leaves it due a merge
that would otherwise land in both sides' first poll). Each round, for each side in turn (A B A B), a fresh copy
of the size's store and a fresh process (the other version's code first on PYTHONPATH): the store is opened
(this version migrates it: two empty tables), then `--feeds` new feeds of 50 template-style items
(bench/template_gen.py, parsed, matched and signed by the side's own code, not timed) are saved one poll per
feed with `save_poll`, as `monitor poll` saves them. Per new post:
the wall time of the polls' COMMITs, of the whole `save_poll`, and the process CPU time spent in `save_poll`.
The recent level's moves (every RECENT_SPAN posts) happen inside those polls.

The middle level's move into post_bands comes once per MID_SPAN posts, so a run of a few thousand posts would
not meet it: `--mid-move` times it alone on a copy of the store whose newest MID_SPAN posts' rows were first moved
(not timed) from post_bands into post_bands_mid, then prints its cost spread over the posts it moves: the figure
to add to this version's per-post COMMIT for the steady state.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

if {"--trial", "--move-trial", "--cold-trial"} & set(sys.argv):  # the side's code (PYTHONPATH) must come first
    sys.path.append(str(Path(__file__).resolve().parent.parent))
else:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import template_gen as gen
from bench.harness import config_yaml, median
from bench.scale_store import merge_fts

HERE = Path(__file__).resolve().parent.parent
ITEMS = 50  # items a feed, as bench/scale_store.py's world serves


class TimedConnection:
    """The store's connection, with the time of each COMMIT kept (every call still runs)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.commits: list[float] = []

    @property
    def commit_s(self) -> float:
        return sum(self.commits)

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql != "COMMIT":
            return self._conn.execute(sql, *args)
        started = time.perf_counter()
        try:
            return self._conn.execute(sql, *args)
        finally:
            self.commits.append(time.perf_counter() - started)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def trial(store_path: Path, feeds: int, first_feed: int) -> dict[str, Any]:
    """One side's polls into `store_path` (run in the side's process)."""
    # the side's monitor, imported in its process (its code first on PYTHONPATH)
    from bench.scale_store import product_prepare
    from monitor.store import open_store
    from monitor.types import SourceState

    config = store_path.with_suffix(".yaml")
    config.write_text(config_yaml(store_path, ["http://127.0.0.1:9/unused.xml"], topics=gen.TOPICS_YAML))
    prep = product_prepare(config)
    now = gen.now_utc()
    polls = []
    for feed in range(first_feed, first_feed + feeds):
        entries = gen.items(feed, ITEMS, now, seed=3, span=timedelta(days=60))
        polls.append((f"bands-{feed}", [m for m, _ in prep(gen.rss(feed, entries), f"bands-{feed}", now)]))
    store = open_store(store_path)  # migrates the copy (this version: two empty tables), not timed
    timed = TimedConnection(store.conn)  # type: ignore[attr-defined]
    store.conn = timed  # type: ignore[attr-defined]
    new = 0
    save_s = cpu_s = 0.0
    for source, posts in polls:
        wall, cpu = time.perf_counter(), time.process_time()
        saved = store.save_poll(
            state=SourceState(name=source), source_type="feed", source_url=None, posts=posts, fetches=(), now=now
        )
        save_s += time.perf_counter() - wall
        cpu_s += time.process_time() - cpu
        new += saved.new_posts
    store.conn = timed._conn  # type: ignore[attr-defined]
    store.close()
    code = str(Path(sys.modules["monitor"].__file__ or "").parent.parent)  # which side ran (checked by the caller)
    return {
        "new": new,
        "commit_s": timed.commit_s,
        "longest_commit_s": max(timed.commits, default=0.0),  # one that ran a checkpoint, when any did
        "median_commit_s": median(timed.commits) if timed.commits else 0.0,
        "save_s": save_s,
        "cpu_s": cpu_s,
        "code": code,
    }


def move_trial(store_path: Path) -> dict[str, Any]:
    """This version only: the newest MID_SPAN posts' rows put in post_bands_mid (not timed), then one move of
    them into post_bands, timed with its COMMIT."""
    from monitor.store import open_store
    from monitor.store.sqlite import bands

    open_store(store_path).close()  # migrated
    conn = sqlite3.connect(store_path, isolation_level=None)
    top = conn.execute("SELECT coalesce(max(post_id), 0) FROM post_signatures").fetchone()[0]
    since = top - bands.MID_SPAN
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(f"INSERT INTO {bands.LEVELS[1]} SELECT band, post_id FROM post_bands WHERE post_id > ?", (since,))
    conn.execute("DELETE FROM post_bands WHERE post_id > ?", (since,))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    conn = sqlite3.connect(store_path, isolation_level=None)  # a fresh page cache, as a poll's process has
    posts = conn.execute(f"SELECT count(DISTINCT post_id) FROM {bands.LEVELS[1]}").fetchone()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    conn.execute("BEGIN IMMEDIATE")
    bands._move(conn, bands.LEVELS[1], bands.LEVELS[2])  # the move itself, nothing around it
    conn.execute("COMMIT")
    seconds, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    conn.close()
    return {"posts": posts, "seconds": seconds, "cpu_s": cpu_s}


def cold_trial(store_path: Path, seed: int, work: Path) -> dict[str, Any]:
    """bench/store_scale.py's cold poll (one `monitor poll` of 40 new feeds x 100 items on a loopback world) into
    an empty store, then into `store_path` (run in the side's process: its `monitor` on PYTHONPATH)."""
    from bench.store_scale import cold_poll

    empty, _ = cold_poll(None, seed, work / "empty")
    full, new = cold_poll(store_path, seed, work / "full")
    return {"empty": empty, "full": full, "new": new}


def candidate_reads(source: Path, work: Path) -> None:
    """This version's candidate read against one table's, on copies of the store: one as built (every row in
    post_bands, read with the query before the levels), one with its newest posts spread as a running store holds
    them (RECENT_SPAN / 2 in the recent level, MID_SPAN / 2 in the middle one). Per poll of 50 new template items
    (their 500 or so bands), A B alternately, the same candidates asserted."""
    from monitor import dedupe
    from monitor.store import open_store
    from monitor.store.sqlite import bands

    one_path, levels_path = fresh_copy(source, work / "reads-one.db"), fresh_copy(source, work / "reads-levels.db")
    open_store(levels_path).close()
    conn = sqlite3.connect(levels_path, isolation_level=None)
    top = conn.execute("SELECT max(post_id) FROM post_signatures").fetchone()[0]
    recent, mid = top - bands.RECENT_SPAN // 2, top - bands.RECENT_SPAN // 2 - bands.MID_SPAN // 2
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        f"INSERT INTO {bands.LEVELS[1]} SELECT * FROM post_bands WHERE post_id > ? AND post_id <= ?", (mid, recent)
    )
    conn.execute(f"INSERT INTO {bands.LEVELS[0]} SELECT * FROM post_bands WHERE post_id > ?", (recent,))
    conn.execute("DELETE FROM post_bands WHERE post_id > ?", (mid,))
    conn.execute("COMMIT")
    conn.close()
    one_query = """SELECT j.value, (SELECT json_group_array(x.post_id) FROM (SELECT post_id FROM post_bands
                   WHERE band = j.value ORDER BY post_id DESC LIMIT ?2) AS x) FROM json_each(?1) AS j"""
    now = gen.now_utc()
    polls = []
    for feed in range(800_000, 800_040):
        keys = set()
        for entry in gen.items(feed, ITEMS, now, seed=9, span=timedelta(days=60)):
            keys.update(dedupe.band_keys(dedupe.signature(entry.title, " ".join(entry.paragraphs))))
        polls.append(json.dumps(sorted(keys)))
    times: dict[str, list[float]] = {"one table": [], "levels": []}
    for _ in range(3):
        sides = {
            "one table": (sqlite3.connect(one_path), one_query),
            "levels": (sqlite3.connect(levels_path), bands.NEWEST_PER_BAND),
        }
        for n, wanted in enumerate(polls):
            found = []
            for name, (side, query) in sorted(sides.items(), reverse=n % 2 == 1):
                started = time.perf_counter()
                rows = {band: sorted(json.loads(ids)) for band, ids in side.execute(query, (wanted, 8))}
                times[name].append(time.perf_counter() - started)
                found.append(rows)
            assert found[0] == found[1], "the levels gave other candidates"
        for side, _ in sides.values():
            side.close()
    for name, spent in times.items():
        print(f"  candidate read, {name:9}: median {median(spent) * 1000:5.2f} ms a poll of {ITEMS} posts "
              f"({len(spent)} polls, same candidates)")  # fmt: skip


def run_side(code: Path, args: list[str]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(code))
    run = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=3600,
    )
    if run.returncode != 0:
        raise RuntimeError(f"{code}: {' '.join(args)} failed: {run.stderr[-2000:]}")
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def fresh_copy(src: Path, dst: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    return dst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, help="a checkout of the other version")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/bands-scale"), help="bench/scale_store.py --cache")
    parser.add_argument("--sizes", nargs="+", default=["10k", "100k"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--feeds", type=int, default=100, help="polls of 50 new posts each, per side and round")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bands-work"))
    parser.add_argument("--mid-move", action="store_true", help="also time this version's mid -> post_bands move")
    parser.add_argument("--cold-polls", type=int, default=0, help="also N pairs of bench/store_scale.py's cold poll")
    parser.add_argument("--reads", action="store_true", help="also the candidate read alone, levels vs one table")
    parser.add_argument("--cold-trial", nargs=3, metavar=("STORE", "SEED", "WORK"), help=argparse.SUPPRESS)
    parser.add_argument("--trial", nargs=3, metavar=("STORE", "FEEDS", "FIRST_FEED"), help=argparse.SUPPRESS)
    parser.add_argument("--move-trial", type=Path, metavar="STORE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.trial:
        print(json.dumps(trial(Path(args.trial[0]), int(args.trial[1]), int(args.trial[2]))))
        return 0
    if args.cold_trial:
        print(json.dumps(cold_trial(Path(args.cold_trial[0]), int(args.cold_trial[1]), Path(args.cold_trial[2]))))
        return 0
    if args.move_trial:
        print(json.dumps(move_trial(args.move_trial)))
        return 0
    if args.base is None:
        parser.error("--base is needed (a checkout of the other version)")
    from bench.scale_store import sizes_arg

    sides = {"other": args.base.resolve(), "this": HERE}
    args.work.mkdir(parents=True, exist_ok=True)
    for size in sizes_arg(args.sizes):
        source = args.cache / "stores" / f"{size}.db"
        merge_fts(source)
        if args.rounds:  # 0: only the other measures
            results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
            for _ in range(args.rounds):
                for side, code in sides.items():
                    copy = fresh_copy(source, args.work / f"{side}.db")
                    ran = run_side(code, ["--trial", str(copy), str(args.feeds), "900000"])
                    if Path(ran["code"]).resolve() != code:
                        raise RuntimeError(f"{side}: ran the monitor of {ran['code']}, not {code}")
                    results[side].append(ran)
            print(
                f"{size:,} posts: {args.feeds} polls of {ITEMS} new posts, {args.rounds} rounds A B, medians a new post"
            )
            per: dict[str, dict[str, float]] = {}
            for side, runs in results.items():
                per[side] = {
                    key: median([r[key] / r["new"] * 1e6 for r in runs]) for key in ("commit_s", "save_s", "cpu_s")
                }
                every = ", ".join(f"{r['commit_s'] / r['new'] * 1e6:.0f}" for r in runs)
                longest = ", ".join(f"{r['longest_commit_s'] * 1e3:.0f}" for r in runs)
                typical = ", ".join(f"{r['median_commit_s'] * 1e3:.1f}" for r in runs)
                print(
                    f"  {side:5} COMMIT {per[side]['commit_s']:6.0f} µs  save_poll {per[side]['save_s']:6.0f} µs  "
                    f"CPU {per[side]['cpu_s']:6.0f} µs   (COMMIT each round: {every}; new {runs[0]['new']})\n"
                    f"        one poll's COMMIT, ms: longest {longest}; median {typical} (each round)"
                )
            print(
                "  this/other: "
                + "  ".join(f"{k} {per['this'][k] / per['other'][k]:.2f}x" for k in ("commit_s", "save_s", "cpu_s"))
            )
        if args.mid_move:
            moved = run_side(HERE, ["--move-trial", str(fresh_copy(source, args.work / "move.db"))])
            print(
                f"  mid -> post_bands move of {moved['posts']:,} posts: {moved['seconds']:.1f} s "
                f"(CPU {moved['cpu_s']:.1f} s) = {moved['seconds'] / max(moved['posts'], 1) * 1e6:.0f} µs a post moved"
            )
        if args.reads:
            candidate_reads(source, args.work)
        if args.cold_polls:
            ratios: dict[str, list[float]] = {side: [] for side in sides}
            fulls: dict[str, list[float]] = {side: [] for side in sides}
            for k in range(args.cold_polls):
                for side, code in sides.items():
                    work = args.work / f"cold-{side}"
                    shutil.rmtree(work, ignore_errors=True)
                    work.mkdir(parents=True)
                    copy = fresh_copy(source, work / "store.db")
                    ran = run_side(code, ["--cold-trial", str(copy), str(300 + k), str(work)])
                    ratios[side].append(ran["full"] / ran["empty"])
                    fulls[side].append(ran["full"])
                    shutil.rmtree(work, ignore_errors=True)
            for side in sides:
                print(f"  cold poll ({side:5}): into this store {median(fulls[side]):,.0f} posts/s, "
                      f"{median(ratios[side]):.2f}x the empty store's (median of {args.cold_polls}; ratios "
                      f"{', '.join(f'{r:.2f}' for r in ratios[side])})")  # fmt: skip
        for leftover in args.work.glob("*.db*"):  # the copies (2 GB each at 1M)
            leftover.unlink()
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
