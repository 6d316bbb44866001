"""A store that stays fast as it grows: queries, export and cold polls at 10k / 100k / 1M posts (issue 10 part 5).

    .venv/bin/python bench/store_scale.py                       # 10k, 100k, 1M (stores built once, then reused)
    .venv/bin/python bench/store_scale.py --sizes 10k 100k      # other sizes
    .venv/bin/python bench/store_scale.py --quick               # one store of 2,000 posts, fewer repeats (CI)
    .venv/bin/python bench/store_scale.py --rebuild             # build the stores again
    .venv/bin/python bench/store_scale.py --sizes 1m --cache /tmp/scale   # stores kept (and reused) there

Stores come from bench/scale_store.py (through `monitor poll` rounds up to 100k, then its fast SQL builder;
each store's build is reported). Queries go through the CLI, each in fresh processes, repeated, p50 and p95:
- start-up, for scale: wall time of `monitor --version` and of `monitor search` of a word no post has;
- query time, measured inside the process by bench/cli_timer.py (the console script's entry point called
  with the command's arguments, output discarded): `first` = the first call in a fresh process (lazy
  imports, cold caches included; interpreter start-up and `import monitor.cli` not), `warm` = the 2nd to
  6th calls in that process (config read, store opened, query, output formatted). The floor is the warm
  p50 of a search for a word no post has (config, store, an empty FTS lookup); the summary's query time is
  a command's warm p95 minus that floor (a difference of noisy figures on a shared machine: read the warm
  figures too). Targets are checked on that query time. Commands: `monitor search WORD
  --format json` newest first and `--sort rank` on common words (20 rows); `monitor stats --by day
  --since 30d --format json`;
- `monitor export` (CSV, matching posts, to a file): wall time and the child's max RSS (constant?);
- cold poll of a fixed batch of new feeds (40 feeds x 100 template items on a loopback world) into a copy of the
  store, each just after the same batch into an empty store: posts/s of the `monitor poll` process, start-up
  included, and the median of the three pairs' ratios;
- the per-minute alert tick per topic: the CLI has no handle for it, so a child process (this file with
  --tick-probe) runs one tick of every topic first (the daemon's first after start, reported apart: lazy
  imports, a cold page cache, the alerts it raises), then times `Outbox.evaluate(now, topics=[topic])` (one
  topic's spike evaluation, plus the tick's campaign, health and digest checks) and the store read behind it,
  `Store.topic_counts` (the baseline counted in SQL by bucket; monitor internals, isolated in `tick_probe`).
Targets (issue 10): search newest p95 <= 5 ms and ranked p95 <= 100 ms (query time), stats <= 200 ms,
tick <= 50 ms per topic, cold-poll rate at 1M within 20% of the empty store's, export memory constant.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import template_gen as gen
from bench.harness import BENCH, config_yaml, feed_urls, median, monitor_exe, percentile, run_measured, verdict, world
from bench.scale_store import ensure_stores, sizes_arg, snapshot, store_path, use_cache, use_quick_layout

WORDS = ["the", "percent", "в", "процентов", "separatists"]  # common (EN, RU) to rarer
BATCH_FEEDS, BATCH_ITEMS = 40, 100
CALLS = 6  # calls of a command per fresh process: the first, then 5 warm ones


def timed(cmd: list[str], cwd: Path, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        run = run_measured(cmd, cwd=cwd)
        if run.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {run.returncode}: {run.stderr[-1500:]}")
        out.append(run.seconds)
    return out


def inside(args: list[str], cwd: Path, repeats: int) -> tuple[list[float], list[float]]:
    """(first-call seconds, warm-call seconds) over `repeats` fresh processes of bench/cli_timer.py."""
    first, warm = [], []
    for _ in range(repeats):
        cmd = [sys.executable, str(BENCH / "cli_timer.py"), "--calls", str(CALLS), "--", *args]
        run = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
        answer = json.loads(run.stdout.strip().splitlines()[-1]) if run.returncode == 0 else None
        if answer is None or any(answer["codes"]):
            raise RuntimeError(f"monitor {' '.join(args)} failed: {run.stdout[-500:]} {run.stderr[-1500:]}")
        first.append(answer["first"])
        warm += answer["warm"]
    return first, warm


def ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 50) * 1000:7.1f} p95 {percentile(values, 95) * 1000:7.1f} ms"


def row(name: str, first: list[float], warm: list[float]) -> str:
    return f"   {name:<36} warm {ms(warm)} | first call {ms(first)}"


def tick_probe(config_path: str, repeats: int) -> dict[str, Any]:
    """Per-topic cost of the daemon's minute tick, in-process (monitor internals: the only place here)."""
    from datetime import UTC, datetime

    from monitor.collectors import SOURCE_MODELS
    from monitor.config import load_config
    from monitor.outbox import Outbox
    from monitor.store import open_store

    config = load_config(config_path, source_types=SOURCE_MODELS)
    store = open_store(config.store)
    outbox = Outbox(config, store)
    now = datetime.now(UTC)
    step, buckets = outbox.evaluator.params.step, outbox.evaluator.params.buckets
    t = time.perf_counter()
    outbox.evaluate(now)  # the daemon's first tick: lazy imports, a cold page cache, the alerts it raises
    result: dict[str, Any] = {"_first_tick": time.perf_counter() - t}
    for topic in config.topics:
        evaluate, read, rows = [], [], 0
        for _ in range(repeats):
            t = time.perf_counter()
            outbox.evaluate(now, topics=[topic.name])
            evaluate.append(time.perf_counter() - t)
            t = time.perf_counter()
            rows = sum(store.topic_counts(topic.name, now, step, buckets).counts)
            read.append(time.perf_counter() - t)
        result[topic.name] = {"evaluate": evaluate, "topic_counts": read, "rows": rows, "buckets": buckets}
    store.close()
    return result


def cold_poll(store: Path | None, seed: int, work: Path) -> tuple[float, int]:
    """(posts/s, new posts) of one `monitor poll` process polling a new batch of feeds into `store`."""
    with world(hosts=5, feeds=BATCH_FEEDS, items=BATCH_ITEMS, seed=seed, span_days=60) as (_, port):
        work.mkdir(parents=True, exist_ok=True)
        target = store or (work / "empty.db")
        urls = feed_urls(port, BATCH_FEEDS, 5)
        text = config_yaml(target, urls, topics=gen.TOPICS_YAML, defaults="defaults:\n  per_host: 2\n")
        config = work / f"batch{seed}.yaml"
        config.write_text(text.replace("name: feed-", f"name: batch{seed}-"))
        before = count_posts(target) if target.exists() else 0
        run = run_measured([monitor_exe(), "--config", str(config), "-q", "poll"], cwd=work, timeout=1200)
        if run.returncode != 0:
            raise RuntimeError(f"batch poll exited {run.returncode}: {run.stderr[-1500:]}")
        new = count_posts(target) - before
        return new / run.seconds, new


def count_posts(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM posts").fetchone()[0])
    finally:
        conn.close()


def measure(
    size: int, fact: dict[str, Any], repeats: int, work: Path, words: list[str], batches: int
) -> dict[str, Any]:
    path = store_path(size)
    posts = count_posts(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    matches, clusters = conn.execute(
        "SELECT (SELECT count(*) FROM matches), (SELECT count(DISTINCT cluster_id) FROM posts)"
    ).fetchone()
    conn.close()
    disk = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    print(f"\n== {posts:,} posts ({matches:,} topic matches, {clusters:,} clusters); {disk / 2**20:,.0f} MiB on disk "
          f"= {disk / posts:,.0f} bytes/post; built by {fact['builder']} in {fact['seconds']:,.0f} s "
          f"({posts / fact['seconds']:,.0f} posts/s)")  # fmt: skip
    if "round_seconds" in fact and len(fact["round_seconds"]) > 1:
        rs = fact["round_seconds"]
        print(f"   poll rounds: first {rs[0]:.1f} s, last {rs[-1]:.1f} s ({rs[-1] / rs[0]:.2f}x)")
    config = work / f"q{size}.yaml"
    config.write_text(config_yaml(path, ["http://127.0.0.1:9/unused.xml"], topics=gen.TOPICS_YAML))
    base = [monitor_exe(), "--config", str(config)]
    version = timed([monitor_exe(), "--version"], work, repeats)
    empty = timed([*base, "search", "zzqnothing", "--format", "json"], work, repeats)
    print(f"   start-up, wall time of a process: monitor --version {ms(version)}; search of a word no post has "
          f"{ms(empty)}")  # fmt: skip
    out: dict[str, Any] = {"posts": posts, "bytes_per_post": disk / posts}
    args = ["--config", str(config)]
    first, warm = inside([*args, "search", "zzqnothing", "--format", "json"], work, repeats)
    floor = percentile(warm, 50)
    print(row("search of a word no post has (the floor)", first, warm))
    for word in words:
        first, warm = inside([*args, "search", word, "--format", "json"], work, repeats)
        print(row(f"search {word!r} newest first", first, warm))
        out[f"newest:{word}"] = percentile(warm, 95) - floor
        first, warm = inside([*args, "search", word, "--sort", "rank", "--format", "json"], work, repeats)
        print(row(f"search {word!r} --sort rank", first, warm))
        out[f"rank:{word}"] = percentile(warm, 95) - floor
    first, warm = inside([*args, "stats", "--by", "day", "--since", "30d", "--format", "json"], work, repeats)
    print(row("stats --by day --since 30d", first, warm))
    out["stats"] = percentile(warm, 95) - floor
    export_file = work / "export.csv"
    runs = [run_measured([*base, "export", "-o", str(export_file)], cwd=work, timeout=3600) for _ in range(2)]
    lines = sum(1 for _ in export_file.open(encoding="utf-8", newline="")) if export_file.exists() else 0
    export_s = median([r.seconds for r in runs])
    print(f"   export (CSV, matching posts): {export_s:.2f} s, {lines:,} lines ({lines / export_s:,.0f}/s), "
          f"max RSS {max(r.maxrss_mib for r in runs):.0f} MiB")  # fmt: skip
    out["export_rss"] = max(r.maxrss_mib for r in runs)
    probe = subprocess.run(
        [sys.executable, __file__, "--tick-probe", str(config), "--repeats", str(repeats)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if probe.returncode == 0:
        ticks = json.loads(probe.stdout)
        worst = 0.0
        first = ticks.pop("_first_tick")
        print(f"   tick: the first after start (all {len(ticks)} topics) {first * 1000:.0f} ms, then per topic:")
        for topic, t in ticks.items():
            p95e, p95r = percentile(t["evaluate"], 95) * 1000, percentile(t["topic_counts"], 95) * 1000
            worst = max(worst, p95e)
            print(f"   tick, topic {topic:<16} Outbox.evaluate p50 {percentile(t['evaluate'], 50) * 1000:7.1f} "
                  f"p95 {p95e:7.1f} ms; topic_counts p95 {p95r:7.1f} ms "
                  f"({t['rows']:,} posts in {t['buckets']:,} buckets)")  # fmt: skip
        out["tick"] = worst
    else:
        print(f"   tick: the probe failed (internals moved?): {probe.stderr.strip().splitlines()[-1:]}")
    copy = work / f"copy{size}.db"  # the batches go into a copy: the cached store stays as built
    snapshot(path, copy)
    rates, empties = [], []
    for k in range(batches):  # each batch into an empty store, then into this one: a ratio per pair
        empties.append(cold_poll(None, 100 + k, work / f"empty{size}-{k}")[0])
        rates.append(cold_poll(copy, 100 + k, work / f"batch{size}-{k}")[0])
    for leftover in work.glob(f"copy{size}.db*"):
        leftover.unlink()
    ratio = median([r / e for r, e in zip(rates, empties, strict=True)])
    print(f"   cold poll of {BATCH_FEEDS} new feeds x {BATCH_ITEMS} items (one `monitor poll`): into this store "
          f"{', '.join(f'{r:,.0f}' for r in rates)} posts/s; into an empty store just before "
          f"{', '.join(f'{r:,.0f}' for r in empties)}; median of the ratios {ratio:.2f}x")  # fmt: skip
    out["poll_ratio"] = ratio
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["10k", "100k", "1m"])
    parser.add_argument("--poll-max", default="100k")
    parser.add_argument("--repeats", type=int, default=6, help="fresh processes per command")
    parser.add_argument("--words", nargs="+", default=WORDS, help="search words")
    parser.add_argument("--batches", type=int, default=3, help="cold-poll batches per store")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--quick", action="store_true", help="one store of 2,000 posts, 2 repeats, 2 words, 1 batch")
    parser.add_argument("--cache", type=Path, help="keep and reuse the stores under this directory (/tmp/scale)")
    parser.add_argument("--tick-probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cache:
        use_cache(args.cache)
    if args.tick_probe:
        print(json.dumps(tick_probe(args.tick_probe, args.repeats)))
        return 0
    if args.quick:
        global BATCH_FEEDS, BATCH_ITEMS
        BATCH_FEEDS, BATCH_ITEMS = 10, 20
        use_quick_layout()
        args.sizes, args.repeats, args.words, args.batches = ["2000"], 2, WORDS[:2], 1
    sizes = list(sizes_arg(args.sizes))
    started = time.perf_counter()
    facts = ensure_stores(sizes, poll_max=next(sizes_arg([args.poll_max])), rebuild=args.rebuild)
    print(f"stores ready in {time.perf_counter() - started:.0f} s")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for size in sizes:
            results[size] = measure(size, facts[size], args.repeats, work, args.words, args.batches)
    summary(results)
    return 0


def summary(results: dict[int, dict[str, Any]]) -> None:
    print("\n== summary: query time = warm p95 minus the floor (see above), ms; targets from issue 10")
    print(f"   {'posts':>10} {'B/post':>7} {'newest ms (worst word)':>23} {'rank ms':>8} {'stats ms':>9} "
          f"{'tick ms/topic':>14} {'export MiB':>11} {'poll rate x empty':>18}")  # fmt: skip
    for r in results.values():
        newest = max(v for k, v in r.items() if k.startswith("newest:")) * 1000
        rank = max(v for k, v in r.items() if k.startswith("rank:")) * 1000
        print(f"   {r['posts']:>10,} {r['bytes_per_post']:>7,.0f} {newest:>23.1f} {rank:>8.1f} "
              f"{r['stats'] * 1000:>9.1f} {r.get('tick', float('nan')):>14.1f} {r['export_rss']:>11.0f} "
              f"{r['poll_ratio']:>18.2f}")  # fmt: skip
    last = results[max(results)]
    newest = max(v for k, v in last.items() if k.startswith("newest:")) * 1000
    rank = max(v for k, v in last.items() if k.startswith("rank:")) * 1000
    print(f"   at {last['posts']:,} posts: search newest {verdict(newest <= 5)} (<= 5 ms), ranked "
          f"{verdict(rank <= 100)} (<= 100 ms), stats {verdict(last['stats'] <= 0.2)} (<= 200 ms), tick "
          f"{verdict(last.get('tick', 1e9) <= 50)} (<= 50 ms), cold-poll rate {verdict(last['poll_ratio'] >= 0.8)} "
          f"(>= 0.8x empty)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
