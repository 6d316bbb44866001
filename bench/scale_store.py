"""Stores of 10k / 100k / 1M template-style posts for bench/store_scale.py and bench/near_dup_candidates.py.

    .venv/bin/python bench/scale_store.py [--sizes 10000 100000 1000000] [--poll-max 100000] [--rebuild]

Honest part, through the product: bench/world_server.py serves 200 feeds x 50 template-style items
(published over the last 60 days; real topic matches and syndicated near-duplicate copies) and each round
is one `monitor poll` (a fresh process) after the world moved to new items: 10,000 new posts a round.
The store is snapshotted (sqlite3 backup) at each size up to `--poll-max`; the time of every round is kept,
so the build rate is itself a cold-poll figure against the store's size.

Faster part, above `--poll-max` (the polled build of 1M takes about 100 rounds): the rest is written with
plain SQL into the polled store (its schema made by the product), from the same generator, each feed's bytes
run through the product's own parse, normalise, match and sign (one isolated function, `product_prepare`);
cluster ids there come from the generator's ground truth (a wire story's copies share one cluster), not
from the store's LSH comparison, which is what makes it fast. Posts, matches, FTS rows, signatures and
band rows are all written, so every query and the candidate counts see a full store.

Stores are kept under the bench cache (stores/<size>.db, with <size>.json telling how each was built), or under
`--cache DIR`, and reused unless `--rebuild`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import template_gen as gen
from bench.harness import CACHE, config_yaml, control, feed_urls, monitor_exe, run_measured, world

FEEDS, ITEMS, HOSTS, SPAN_DAYS = 200, 50, 50, 60.0
PER_ROUND = FEEDS * ITEMS
STORES = CACHE / "stores"


def use_cache(root: Path) -> None:
    """Keep (and reuse) the stores under `root` instead of the bench cache: a 1M store is built once, anywhere."""
    global STORES  # noqa: PLW0603  # the bench-wide layout, as use_quick_layout
    STORES = root / STORES.name


def use_quick_layout() -> None:
    """The quick forms' layout: 40 feeds a round (2,000 posts), stores kept apart from the full ones."""
    global FEEDS, PER_ROUND, STORES
    FEEDS, PER_ROUND, STORES = 40, 40 * ITEMS, STORES.parent / "stores-quick"


def store_config(work: Path, store: Path, urls: list[str]) -> Path:
    config = work / "config.yaml"
    config.write_text(config_yaml(store, urls, topics=gen.TOPICS_YAML, defaults="defaults:\n  per_host: 2\n"))
    return config


def snapshot(src: Path, dst: Path) -> None:
    """A consistent copy of a WAL store (sqlite3's backup), with no -wal file beside it."""
    dst.unlink(missing_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    b.close()
    a.close()


def build_polled(sizes: list[int], work: Path, log: Callable[[str], None]) -> dict[int, dict[str, Any]]:
    """Poll rounds of PER_ROUND new posts each; a snapshot at each size. Returns per-size build facts."""
    top = max(sizes)
    rounds = -(-top // PER_ROUND)
    store = work / "build.db"
    facts: dict[int, dict[str, Any]] = {}
    spent = 0.0
    with world(hosts=HOSTS, feeds=FEEDS, items=ITEMS, seed=1, span_days=SPAN_DAYS) as (_, port):
        config = store_config(work, store, feed_urls(port, FEEDS, HOSTS))
        round_times = []
        for r in range(rounds):
            control(port, f"/_control/round?n={r}")
            run = run_measured([monitor_exe(), "--config", str(config), "-q", "poll"], cwd=work, timeout=3600)
            if run.returncode != 0:
                raise RuntimeError(f"monitor poll exited {run.returncode}: {run.stderr[-2000:]}")
            spent += run.seconds
            round_times.append(run.seconds)
            done = (r + 1) * PER_ROUND
            log(f"   round {r + 1}/{rounds}: {PER_ROUND:,} new posts in {run.seconds:.1f} s "
                f"({PER_ROUND / run.seconds:,.0f} posts/s) with {done - PER_ROUND:,} posts already stored")  # fmt: skip
            for size in sizes:
                if size == done:
                    snapshot(store, STORES / f"{size}.db")
                    facts[size] = {"builder": "poll", "seconds": spent, "round_seconds": list(round_times)}
    return facts


def product_prepare(config_path: Path) -> Callable[[bytes, str, datetime], list[Any]]:
    """The product's parse -> normalise -> match -> sign for one feed's bytes (monitor internals: the only
    place this bench imports them)."""
    from monitor import dedupe
    from monitor.collectors import SOURCE_MODELS
    from monitor.collectors.feedparse import parse_feed
    from monitor.config import load_config
    from monitor.match import Matcher
    from monitor.prepare import prepare, unique_items

    matcher = Matcher(load_config(config_path, source_types=SOURCE_MODELS).topics)

    def run(body: bytes, source: str, now: datetime) -> list[Any]:
        items, _ = unique_items(parse_feed(body, url=f"https://{source}.example/rss").items)
        return [(m, dedupe.band_keys(m.signature)) for m in prepare(items, source, {}, now, matcher)]

    return run


def stored_time(when: datetime) -> str:
    """A time as the product stores it: ISO 8601 UTC, whole seconds, `Z`."""
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def extend_fast(store: Path, target: int, config_path: Path, log: Callable[[str], None]) -> float:
    """Add posts with plain SQL until the store holds `target`; returns seconds spent."""
    prep = product_prepare(config_path)
    conn = sqlite3.connect(store, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    levels = {
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE name IN ('post_bands_mid', 'post_bands_recent')")
    }
    for level in sorted(levels):  # the polled posts' band rows first: every level is newer than post_bands (bands.py)
        conn.execute(f"INSERT OR IGNORE INTO post_bands SELECT band, post_id FROM {level}")
        conn.execute(f"DELETE FROM {level}")
    have, next_id = conn.execute("SELECT count(*), coalesce(max(id), 0) + 1 FROM posts").fetchone()
    clusters: dict[str, int] = {}  # ground truth: a wire story's text without its credit line -> cluster
    started = time.perf_counter()
    now = gen.now_utc()
    feed = 10_000  # new feed ids, beyond the polled ones
    shown = have
    while have < target:
        conn.execute("BEGIN")
        for _ in range(20):  # 20 feeds x 500 items a transaction
            entries = gen.items(feed, 500, now, seed=2, span=timedelta(days=SPAN_DAYS))
            source = f"fast-{feed}"
            prepared = prep(gen.rss(feed, entries), source, now)
            posts, matches, fts, sigs, bands = [], [], [], [], []
            for (m, keys), entry in zip(prepared, entries, strict=True):
                p = m.post
                cluster = next_id
                if entry.story is not None:
                    cluster = clusters.setdefault(f"{entry.story}", next_id)
                posts.append((next_id, source, p.key, p.url, p.title, p.text, p.author, stored_time(p.published_at),
                              stored_time(p.first_seen_at), p.content_hash, cluster))  # fmt: skip
                matches += [(next_id, t.topic, t.term) for t in m.matches]
                fts.append((next_id, p.title, p.text))
                if m.signature:
                    sigs.append((next_id, m.signature))
                    bands += [(b, next_id) for b in keys]
                next_id += 1
            conn.executemany(
                "INSERT INTO posts (id, source, key, url, title, text, author, published_at, first_seen_at, "
                "content_hash, cluster_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                posts,
            )
            conn.executemany("INSERT OR REPLACE INTO matches (post_id, topic, term) VALUES (?, ?, ?)", matches)
            conn.executemany("INSERT INTO posts_fts (rowid, title, text) VALUES (?, ?, ?)", fts)
            conn.executemany("INSERT INTO post_signatures (post_id, signature) VALUES (?, ?)", sigs)
            conn.executemany("INSERT OR IGNORE INTO post_bands (band, post_id) VALUES (?, ?)", sorted(bands))
            have += len(posts)
            feed += 1
            if have >= target:
                break
        conn.execute("COMMIT")
        if have - shown >= 100_000 or have >= target:
            shown = have
            spent = time.perf_counter() - started
            log(f"   fast builder: {have:,} posts, {spent:.0f} s")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


def ensure_stores(
    sizes: list[int], *, poll_max: int, rebuild: bool, log: Callable[[str], None] = print
) -> dict[int, dict[str, Any]]:
    """Every size's store under the cache (built if missing); returns {size: build facts}."""
    STORES.mkdir(parents=True, exist_ok=True)
    sizes = sorted(sizes)
    missing = [s for s in sizes if rebuild or not (STORES / f"{s}.json").exists()]
    facts = {s: json.loads((STORES / f"{s}.json").read_text()) for s in sizes if s not in missing}
    if not missing:
        for size in sizes:
            migrate(store_path(size), log)
        return facts
    polled = [s for s in missing if s <= poll_max]
    above = [s for s in missing if s > poll_max]
    base = max([s for s in sizes if s <= poll_max], default=PER_ROUND)
    polled = sorted(set(polled) | ({base} if above and (rebuild or base not in facts) else set()))
    work = CACHE / "build"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if polled:
        log(f"building {', '.join(f'{s:,}' for s in polled)} posts by `monitor poll` rounds of {PER_ROUND:,} "
            f"({FEEDS} feeds x {ITEMS} items, {HOSTS} loopback hosts)")  # fmt: skip
        for size, fact in build_polled(polled, work, log).items():
            facts[size] = fact
            (STORES / f"{size}.json").write_text(json.dumps(fact))
    for size in above:
        log(f"building {size:,} posts: the {base:,}-post polled store, then the fast SQL builder")
        snapshot(STORES / f"{base}.db", STORES / f"{size}.db")
        config = store_config(work, STORES / f"{size}.db", ["http://127.0.0.1:9/unused.xml"])
        seconds = extend_fast(STORES / f"{size}.db", size, config, log)
        fact = {"builder": f"poll to {base:,}, then fast SQL", "seconds": facts[base]["seconds"] + seconds,
                "fast_seconds": seconds, "fast_posts": size - base}  # fmt: skip
        facts[size] = fact
        (STORES / f"{size}.json").write_text(json.dumps(fact))
    shutil.rmtree(work, ignore_errors=True)
    for size in sizes:
        migrate(store_path(size), log)
    return facts


def migrate(path: Path, log: Callable[[str], None] = print) -> None:
    """Bring a cached store to this version's schema, as the product does on its first write open (the
    queries open it read-only, which migrates nothing)."""
    started = time.perf_counter()
    code = "import sys, pathlib, monitor.store as s; s.open_store(pathlib.Path(sys.argv[1])).close()"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    seconds = time.perf_counter() - started
    if seconds > 2:
        log(f"{path.name}: migrated to this version's schema in {seconds:.0f} s")


def merge_fts(path: Path) -> None:
    """The cached store's full-text index in one segment (once, not timed; bench/band_levels.py and
    bench/writer_stall.py): a store the fast builder extended is due a merge of its whole index
    (monitor/store/sqlite/fts.py), which would land in the first timed poll of both sides (seconds of FTS work and
    a COMMIT of the whole index, at 1M) and hide what is measured."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if conn.execute("SELECT count(DISTINCT segid) FROM posts_fts_idx").fetchone()[0] > 1:
            started = time.perf_counter()
            conn.execute("INSERT INTO posts_fts (posts_fts) VALUES ('optimize')")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            print(f"{path.name}: full-text index merged into one segment first ({time.perf_counter() - started:.0f} s)")
    finally:
        conn.close()


def store_path(size: int) -> Path:
    return STORES / f"{size}.db"


def sizes_arg(values: list[str]) -> Iterator[int]:
    for v in values:
        yield int(v.lower().replace("k", "000").replace("m", "000000").replace("_", "").replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["10k", "100k", "1m"])
    parser.add_argument("--poll-max", default="100k", help="build by polling up to this size, faster above")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--cache", type=Path, help="keep and reuse the stores under this directory (/tmp/scale)")
    args = parser.parse_args()
    if args.cache:
        use_cache(args.cache)
    sizes = list(sizes_arg(args.sizes))
    facts = ensure_stores(sizes, poll_max=next(sizes_arg([args.poll_max])), rebuild=args.rebuild)
    for size in sizes:
        print(f"{size:>9,}: {store_path(size)} {facts[size]}")


if __name__ == "__main__":
    main()
