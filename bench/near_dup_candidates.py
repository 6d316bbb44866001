"""Near-duplicate candidates per new post against store size, and the dedupe quality (issue 10 part 3).

    .venv/bin/python bench/near_dup_candidates.py                  # stores of 10k, 100k, 1M (bench/scale_store.py)
    .venv/bin/python bench/near_dup_candidates.py --quick          # one store of 2,000 posts, no dedupe bench
    options: --sizes 10k 100k 1m --sample 300 --no-quality

Candidates, read from each store with plain SQL over `post_bands` and its levels (no monitor import): for each of the
`--sample` newest posts X with band rows, the posts that were stored before it (post_id < X) and share at
least one LSH band with it: every post an unbounded lookup would compare X with. Printed: mean, p50, p95,
max of that count; the candidates the store compares X with (monitor/store/sqlite/clusters.py: the
BAND_CANDIDATES newest members of each of X's band buckets, at most MAX_CANDIDATES) with their mean, p95 and
max; and the fullest band buckets (boilerplate sentences are what fills them).

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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BENCH, percentile
from bench.scale_store import ensure_stores, sizes_arg, store_path, use_quick_layout
from monitor.store.sqlite.clusters import BAND_CANDIDATES, MAX_CANDIDATES


def candidates(path: Path, sample: int) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
        levels = [  # band rows are written behind, in levels (monitor/store/sqlite/bands.py); a store before has one
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'post_bands%'")
        ]
        every = "(" + " UNION ALL ".join(f"SELECT band, post_id FROM {level}" for level in levels) + ")"
        ids = [
            r[0] for r in conn.execute("SELECT post_id FROM post_signatures ORDER BY post_id DESC LIMIT ?", (sample,))
        ]
        marks = ",".join("?" * len(ids))
        bands: dict[int, list[int]] = defaultdict(list)
        for band, post_id in conn.execute(f"SELECT band, post_id FROM {every} WHERE post_id IN ({marks})", ids):
            bands[post_id].append(band)
        counts, capped = [], []
        for post_id in ids:
            found: set[int] = set()
            compared: set[int] = set()
            for band in bands[post_id]:
                members = [
                    r[0]
                    for r in conn.execute(
                        f"SELECT post_id FROM {every} WHERE band = ? AND post_id < ? ORDER BY post_id DESC",
                        (band, post_id),
                    )
                ]
                found.update(members)
                compared.update(members[:BAND_CANDIDATES])
            counts.append(len(found))
            capped.append(len(compared))
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
    args = parser.parse_args()
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
    if not args.no_quality:
        quality()
    return 0


if __name__ == "__main__":
    sys.exit(main())
