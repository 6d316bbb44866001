"""Near-duplicate candidates per new post against store size, and the dedupe quality (issue 10 part 3).

    .venv/bin/python bench/near_dup_candidates.py                  # stores of 10k, 100k, 1M (bench/scale_store.py)
    .venv/bin/python bench/near_dup_candidates.py --quick          # one store of 2,000 posts, no dedupe bench
    .venv/bin/python bench/near_dup_candidates.py --decisions --sizes 1m --sample 2000 --caps 8 4 2 1
    options: --sizes 10k 100k 1m --sample 300 --no-quality --cache DIR

Candidates, read from each store with plain SQL over `post_bands` and its levels (no monitor import): for each of the
`--sample` newest posts X with band rows, the posts that were stored before it (post_id < X) and share at
least one LSH band with it: every post an unbounded lookup would compare X with. Printed: mean, p50, p95,
max of that count; the candidates the store compares X with (monitor/store/sqlite/clusters.py: the
BAND_CANDIDATES newest members of each of X's band buckets, at most MAX_CANDIDATES) with their mean, p95 and
max; and the fullest band buckets (boilerplate sentences are what fills them).

Decisions (`--decisions`): what the cap costs at each size. For each of the `--sample` newest posts X, the store's
rule (join the most similar candidate at or above dedupe.THRESHOLD) is applied to X's candidates under each cap
of `--caps` (that many newest members per band bucket) and to all of them (no cap), against the store's cluster
ids. Above the polled part of a store (bench/scale_store.py: past --poll-max), those ids are the generator's
ground truth (a wire story's copies share one); below, they are the product's own decisions, so there the
figure is agreement with the product at its current cap. Printed per cap: X joined a post of its own cluster,
X joined a post of another cluster (a false merge), X joined nothing although a post of its own cluster stored
before it scores at or above the threshold (a missed copy; "reachable" counts the posts where one does).

Quality: bench/dedupe_bench.py (the real corpus: syndicated variants clustered, false merges among distinct
articles), run as it is, its key lines printed. It must stay at 100% for copies and 0 false merges.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BENCH, percentile
from bench.scale_store import ensure_stores, sizes_arg, store_path, use_cache, use_quick_layout
from monitor import dedupe
from monitor.store.sqlite.clusters import BAND_CANDIDATES, MAX_CANDIDATES


def candidates(path: Path, sample: int) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
        every = band_union(conn)
        counts, capped = [], []
        for _, per_band in sampled(conn, every, sample):
            counts.append(len({i for members in per_band for i in members}))
            capped.append(len({i for members in per_band for i in members[:BAND_CANDIDATES]}))
        top = conn.execute(f"SELECT count(*) AS n FROM {every} GROUP BY band ORDER BY n DESC LIMIT 5").fetchall()
        rows, distinct = conn.execute(f"SELECT count(*), count(DISTINCT band) FROM {every}").fetchone()
    finally:
        conn.close()
    return {
        "posts": posts,
        "mean": sum(counts) / len(counts),
        "p50": percentile(counts, 50),
        "p95": percentile(counts, 95),
        "max": max(counts),
        "capped_mean": sum(capped) / len(capped),
        "capped_p95": percentile(capped, 95),
        "capped_max": max(capped),
        "top": [r[0] for r in top],
        "band_rows": rows,
        "buckets": distinct,
    }


def band_union(conn: sqlite3.Connection) -> str:
    """Every band row of the store, across its levels (monitor/store/sqlite/bands.py; a store before has one)."""
    levels = [
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'post_bands%'")
    ]
    return "(" + " UNION ALL ".join(f"SELECT band, post_id FROM {level}" for level in levels) + ")"


def sampled(conn: sqlite3.Connection, every: str, sample: int) -> Iterator[tuple[int, list[list[int]]]]:
    """The `sample` newest signed posts, each with its bands' members stored before it (per band, newest first)."""
    ids = [r[0] for r in conn.execute("SELECT post_id FROM post_signatures ORDER BY post_id DESC LIMIT ?", (sample,))]
    marks = ",".join("?" * len(ids))
    bands: dict[int, list[int]] = defaultdict(list)
    for band, post_id in conn.execute(f"SELECT band, post_id FROM {every} WHERE post_id IN ({marks})", ids):
        bands[post_id].append(band)
    for post_id in ids:
        yield (
            post_id,
            [
                [
                    r[0]
                    for r in conn.execute(
                        f"SELECT post_id FROM {every} WHERE band = ? AND post_id < ? ORDER BY post_id DESC",
                        (band, post_id),
                    )
                ]
                for band in bands[post_id]
            ],
        )


def decisions(path: Path, sample: int, caps: list[int]) -> dict[str, Any]:
    """The store's clustering rule on each sampled post's candidates, under each cap and with none (see above)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        every = band_union(conn)
        outcome = {cap: {"own": 0, "other": 0, "missed": 0} for cap in [*caps, 0]}  # 0: no cap
        reachable = 0
        for post_id, per_band in sampled(conn, every, sample):
            union = sorted({i for members in per_band for i in members})
            marks = ",".join("?" * (len(union) + 1))
            rows = conn.execute(
                f"""SELECT s.post_id, s.signature, p.cluster_id FROM post_signatures s JOIN posts p ON p.id = s.post_id
                    WHERE s.post_id IN ({marks})""",
                [*union, post_id],
            ).fetchall()
            signature = {i: sig for i, sig, _ in rows}
            cluster = {i: c if c is not None else i for i, _, c in rows}
            mine, own = signature[post_id], cluster[post_id]
            found_own = any(
                cluster[i] == own and dedupe.similarity(mine, signature[i]) >= dedupe.THRESHOLD
                for i in union
                if i in signature
            )
            reachable += found_own
            for cap, counts in outcome.items():
                chosen = list(dict.fromkeys(i for members in per_band for i in (members[:cap] if cap else members)))
                chosen = [i for i in chosen if i in signature]
                at, score = dedupe.best_match(mine, [signature[i] for i in chosen]) if chosen else (-1, 0.0)
                if score >= dedupe.THRESHOLD:
                    counts["own" if cluster[chosen[at]] == own else "other"] += 1
                elif found_own:
                    counts["missed"] += 1
    finally:
        conn.close()
    return {"reachable": reachable, "outcome": outcome}


def print_decisions(sizes: list[int], facts: dict[int, dict[str, Any]], sample: int, caps: list[int]) -> None:
    print(f"\nclustering decisions of the {sample} newest posts, per cap (newest members per band bucket; 0 = none)")
    print(f"   {'posts':>10} {'cluster ids from':<34} {'reachable':>9} | cap: joined own / other / missed")
    for size in sizes:
        d = decisions(store_path(size), sample, caps)
        truth = "the generator" if facts[size]["builder"].endswith("fast SQL") else "the product (polled)"
        cells = "  ".join(
            f"{cap or 'none'}: {o['own']} / {o['other']} / {o['missed']}" for cap, o in d["outcome"].items()
        )
        print(f"   {size:>10,} {truth:<34} {d['reachable']:>9} | {cells}")


def quality() -> None:
    print("\n== dedupe quality: bench/dedupe_bench.py (real corpus), key lines")
    run = subprocess.run([sys.executable, str(BENCH / "dedupe_bench.py")], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        print(f"   dedupe_bench.py failed: {run.stderr.strip().splitlines()[-1:]}")
        return
    keep = re.compile(r"share of variants|identical copy|whitespace|'Source: X'|title changed|% of words|truncated|"
                      r"false merges|template risk|corpus:")  # fmt: skip
    for line in run.stdout.splitlines():
        if keep.search(line):
            print("   " + line.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["10k", "100k", "1m"])
    parser.add_argument("--poll-max", default="100k")
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--quick", action="store_true", help="one store of 2,000 posts, 100 posts, no dedupe bench")
    parser.add_argument("--decisions", action="store_true", help="also the clustering decisions under each cap")
    parser.add_argument("--caps", nargs="+", type=int, default=[BAND_CANDIDATES, 4, 2, 1])
    parser.add_argument("--cache", type=Path, help="keep the stores under DIR (as bench/scale_store.py --cache)")
    args = parser.parse_args()
    if args.cache:
        use_cache(args.cache)
    if args.quick:
        use_quick_layout()
        args.sizes, args.sample, args.no_quality = ["2000"], 100, True
    sizes = list(sizes_arg(args.sizes))
    facts = ensure_stores(sizes, poll_max=next(sizes_arg([args.poll_max])), rebuild=False)
    print(f"near-duplicate candidates of the {args.sample} newest posts, each against the posts stored before it")
    print(f"   {'':>10} {'':<28} {'sharing a band, unbounded':^28} {f'compared (cap {MAX_CANDIDATES})':^22}")
    print(f"   {'posts':>10} {'built by':<28} {'mean':>7} {'p50':>6} {'p95':>6} {'max':>6} "
          f"{'mean':>8} {'p95':>6} {'max':>6}  fullest band buckets")  # fmt: skip
    for size in sizes:
        c = candidates(store_path(size), args.sample)
        print(f"   {c['posts']:>10,} {facts[size]['builder'][:28]:<28} {c['mean']:>7.0f} {c['p50']:>6.0f} "
              f"{c['p95']:>6.0f} {c['max']:>6.0f} {c['capped_mean']:>8.1f} {c['capped_p95']:>6.0f} "
              f"{c['capped_max']:>6.0f}  "
              f"{', '.join(f'{n:,}' for n in c['top'])} (of {c['buckets']:,} buckets)")  # fmt: skip
    if args.decisions:
        print_decisions(sizes, facts, args.sample, args.caps)
    if not args.no_quality:
        quality()
    return 0


if __name__ == "__main__":
    sys.exit(main())
