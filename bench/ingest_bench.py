"""Ingest benchmark: parse -> normalise -> match (1,000 terms) -> sign -> store with FTS, on generated feeds.

    .venv/bin/python bench/ingest_bench.py [--items 50000] [--per-feed 100] [--long] [--templates] [--stages]

Runs the pipeline's own stages (`workers.Workers.parse` and `.prepare`, `store.save_poll`) twice in this
process: inline (one core, the baseline) and with the worker process (parsing and matching beside the
SQLite writes). Prints posts/s for each, per-stage time of the inline run (wall and CPU seconds: on a
shared machine the CPU figure is the steadier one), the SQL statements the store
ran per new post (Python-level execute/executemany calls), bare SQLite inserts for scale, and peak memory
(max RSS of this process and, separately, of the worker). Then the same feeds again into the inline store:
every item is already stored (all duplicates), items/s of parse + lookup + skip + save. Every run takes the
poll's path: the stored raw digests are read (`Store.known_raw`) and handed to the parse, which skips the
items stored unchanged (a first poll reads none and digests every item).
`--templates`: items from bench/template_gen.py (template sentences, syndicated copies: the dedupe's hard
case) instead of Zipf-distributed words. `--stages`: only the CPU microseconds per post of each step, one step
at a time over the same feeds (parse and its parts, normalise, match, sign, band keys), the parse of the test
corpus's RSS and Atom feeds, and the floor of a duplicate's parse (its key and a digest of its raw XML only);
parse_feed also with digests (a first poll) and with every item known (a poll of duplicates).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import corpus_gen, template_gen
from bench.corpus_gen import NOW, terms
from monitor import dedupe
from monitor.collectors import feedparse
from monitor.collectors.feed import known_limit
from monitor.collectors.feedparse import ParsedFeed, parse_feed
from monitor.collectors.htmltext import html_to_text
from monitor.normalize import normalize, post_key
from monitor.pipeline import prepare_posts
from monitor.prepare import unique_items
from monitor.store import Store, open_store
from monitor.types import SourceState
from monitor.workers import Workers

TEMPLATES = False  # --templates


def feed(index: int, items: int, now: datetime) -> bytes:
    if TEMPLATES:
        return template_gen.rss(index, template_gen.items(index, items, now))
    return corpus_gen.feed(index, items, now)


class CountingConnection:
    """The store's connection with its execute/executemany calls counted (the bench looks inside)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.calls = 0

    def execute(self, *args: Any) -> sqlite3.Cursor:
        self.calls += 1
        return self._conn.execute(*args)

    def executemany(self, *args: Any) -> sqlite3.Cursor:
        self.calls += 1
        return self._conn.executemany(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def peak_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def parse_known(store: Store, index: int, body: bytes) -> ParsedFeed:
    """The poll's parse (collectors/feed.py): the source's stored raw digests, then the body parsed with them."""
    known = store.known_raw(f"site{index}", known_limit(body))
    return parse_feed(body, url=f"https://site{index}.example/rss", known=known)


def save(store: Store, index: int, posts: list) -> int:  # type: ignore[type-arg]
    return store.save_poll(
        state=SourceState(name=f"site{index}"), source_type="feed", source_url=None, posts=posts, fetches=(), now=NOW
    ).new_posts


def inline_run(path: Path, count: int, per_feed: int, workers: Workers) -> tuple[int, dict[str, float], float, int]:
    store = open_store(path)
    counting = CountingConnection(store.conn)  # type: ignore[attr-defined]
    store.conn = counting  # type: ignore[attr-defined]
    stage = {"parse": 0.0, "prepare": 0.0, "store": 0.0}
    cpu = dict.fromkeys(stage, 0.0)  # CPU seconds of this process: steadier than wall time on a shared machine
    total = store_calls = 0
    for index in range(count):
        body = feed(index, per_feed, NOW)
        t, c = time.perf_counter(), time.process_time()
        items = parse_known(store, index, body).items
        stage["parse"] += time.perf_counter() - t
        cpu["parse"] += time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        posts = prepare_posts(items, f"site{index}", store=store, matcher=workers.matcher, now=NOW)
        stage["prepare"] += time.perf_counter() - t
        cpu["prepare"] += time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        before = counting.calls
        total += save(store, index, posts)
        stage["store"] += time.perf_counter() - t
        cpu["store"] += time.process_time() - c
        store_calls += counting.calls - before
    store.close()
    return total, stage, cpu, store_calls


def duplicate_run(path: Path, count: int, per_feed: int, workers: Workers) -> tuple[int, float, float, float]:
    """The same feeds again: every item is stored already. (items, seconds of parsing, seconds of the rest:
    normalise, look up the stored keys, skip, save the poll)."""
    store = open_store(path)
    bodies = [feed(index, per_feed, NOW) for index in range(count)]  # generated up front: not timed
    items_seen = 0
    parse_s = rest_s = 0.0
    started = time.process_time()
    for index, body in enumerate(bodies):
        t = time.perf_counter()
        parsed = parse_known(store, index, body)
        parse_s += time.perf_counter() - t
        t = time.perf_counter()
        posts = prepare_posts(parsed.items, f"site{index}", store=store, matcher=workers.matcher, now=NOW)
        assert not posts, "a duplicate item was prepared as new"
        save(store, index, posts)
        rest_s += time.perf_counter() - t
        items_seen += len(parsed.items) + parsed.skipped
    cpu_s = time.process_time() - started
    store.close()
    return items_seen, parse_s, rest_s, cpu_s


async def worker_run(path: Path, count: int, per_feed: int, workers: Workers) -> tuple[int, float]:
    """Feeds flow through the worker (parse, prepare) while the main process stores the previous ones."""
    store = open_store(path)
    files = path.parent / "feeds"  # generated up front and read back as needed: not part of the timing
    files.mkdir(exist_ok=True)
    for i in range(count):
        (files / f"{i}.xml").write_bytes(feed(i, per_feed, NOW))
    total = 0
    in_flight = asyncio.Semaphore(3)

    async def one(index: int) -> None:
        nonlocal total
        async with in_flight:
            body = (files / f"{index}.xml").read_bytes()
            raw = store.known_raw(f"site{index}", known_limit(body))
            url = f"https://site{index}.example/rss"
            parsed = await workers.parse(len(body), parse_feed, body, url=url, known=raw)
            items, keys = unique_items(parsed.items)
            known = {k: (v.first_seen_at, v.content_hash) for k, v in store.known_posts(f"site{index}", keys).items()}
            posts = await workers.prepare(items, f"site{index}", known, NOW)
            total += save(store, index, posts)

    await workers.prepare(list(parse_feed(feed(0, per_feed, NOW), url="https://warm.example/").items), "warm", {}, NOW)
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    store.close()
    return total, elapsed


def stages(count: int, per_feed: int, workers: Workers) -> None:
    """CPU microseconds per post of each step, one step at a time, best of 3 (see the module docstring)."""
    import hashlib

    from lxml import etree

    bodies = [feed(index, per_feed, NOW) for index in range(count)]
    items = [item for body in bodies for item in parse_feed(body, url="https://site.example/rss").items]
    posts = [normalize(item, source="site", now=NOW) for item in items]
    raw = [el.text or "" for body in bodies for el in etree.fromstring(body).iter("title", "description")]
    sigs = [dedupe.signature(post.title, post.text) for post in posts]
    by_poll = [[(p.title, p.text) for p in posts[i : i + per_feed]] for i in range(0, len(posts), per_feed)]
    batched = getattr(dedupe, "signatures", None)  # absent from versions before it

    def known_of(body: bytes) -> dict[bytes, str]:  # what the store holds once the feed's items are stored
        unique, keys = unique_items(parse_feed(body, url="https://site.example/rss", known={}).items)
        return {item.raw_digest: key for item, key in zip(unique, keys, strict=True) if item.raw_digest}

    knowns = [known_of(body) for body in bodies]

    def floor() -> None:  # a duplicate's parse reduced to its key and a digest of its raw XML
        for body in bodies:
            root, _ = feedparse._parse_xml(body, None)
            for el in root[0].iterchildren("item"):
                post_key(el.findtext("guid"), el.findtext("link"), "", "")
                hashlib.blake2b(etree.tostring(el), digest_size=16).digest()

    corpus = Path(__file__).resolve().parent.parent / "tests" / "corpus"
    feeds = [f.read_bytes() for d in ("rss", "atom") for f in sorted((corpus / d).glob("*")) if f.is_file()]
    corpus_items = sum(len(parse_feed(b, url="https://corpus.example/feed").items) for b in feeds)
    steps: list[tuple[str, Any, int]] = [
        ("parse_feed", lambda: [parse_feed(b, url="https://site.example/rss") for b in bodies], len(items)),
        ("parse_feed, digests (a first poll)", lambda: [parse_feed(b, url="https://site.example/rss", known={})
                                                        for b in bodies], len(items)),
        ("parse_feed, every item known (skipped)", lambda: [parse_feed(b, url="https://site.example/rss", known=k)
                                                            for b, k in zip(bodies, knowns, strict=True)], len(items)),
        ("  html_to_text (title and description)", lambda: [html_to_text(r) for r in raw], len(items)),
        ("normalize", lambda: [normalize(i, source="site", now=NOW) for i in items], len(items)),
        ("match (1,000 terms)", lambda: [workers.matcher.match(p.title, p.text) for p in posts], len(posts)),
        ("signature, one by one", lambda: [dedupe.signature(p.title, p.text) for p in posts], len(posts)),
        *([("signatures, a poll at a time", lambda: [batched(d) for d in by_poll], len(posts))] if batched else []),
        ("band_keys", lambda: [dedupe.band_keys(s) for s in sigs], len(sigs)),
        ("a duplicate's floor: key + raw digest", floor, len(items)),
        (f"parse_feed, test corpus ({len(feeds)} feeds)", lambda: [parse_feed(b, url="https://corpus.example/feed")
                                                                   for b in feeds], corpus_items),
    ]  # fmt: skip
    for name, step, calls in steps:
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            step()
            best = min(best, time.process_time() - started)
        print(f"  {name:<42} {best * 1e6 / calls:7.1f} us per post (CPU, best of 3)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--per-feed", type=int, default=100)
    parser.add_argument("--long", action="store_true", help="items four times longer (about 2 KB)")
    parser.add_argument("--templates", action="store_true", help="template-style items (bench/template_gen.py)")
    parser.add_argument("--stages", action="store_true", help="only the microseconds per post of each step")
    args = parser.parse_args()
    global TEMPLATES  # noqa: PLW0603  # read by feed() in every run
    TEMPLATES = args.templates
    if args.long:
        corpus_gen.LONG = 4
    count = args.items // args.per_feed
    sample = parse_feed(feed(0, args.per_feed, NOW), url="https://site0.example/rss").items
    sizes = [len(i.title) + len(i.text) for i in sample]
    print(
        f"corpus: {count} feeds x {args.per_feed} items = {count * args.per_feed:,} items; title + text "
        f"{sum(sizes) / len(sizes):.0f} characters on average; 1,000 terms in 50 topics; "
        f"{'template-style' if TEMPLATES else 'Zipf-word'} text"
    )
    workers = Workers(terms(1000), processes=1)
    if args.stages:
        stages(count, args.per_feed, workers)
        workers.close()
        return
    with tempfile.TemporaryDirectory() as tmp:
        baseline = bare_inserts(Path(tmp) / "bare.db", count, args.per_feed)
        total, stage, cpu, calls = inline_run(Path(tmp) / "inline.db", count, args.per_feed, workers)
        inline_s = sum(stage.values())
        inline_peak = peak_mib()
        print(f"bare SQLite inserts, no matching/clustering/FTS: {baseline:,.0f} posts/s")
        print(
            f"inline (one core): {total:,} posts in {inline_s:.2f} s = {total / inline_s:,.0f} posts/s; "
            f"{total / sum(cpu.values()):,.0f} posts per CPU second"
        )
        for name, seconds in stage.items():
            print(
                f"  stage {name:<8} {seconds:6.2f} s  {total / seconds:>9,.0f} posts/s  "
                f"{total / cpu[name]:>9,.0f} posts per CPU second"
            )
        print(f"  store: {calls:,} SQL statements (execute/executemany calls) = {calls / total:.2f} per new post")
        print(f"  peak memory of this process so far: {inline_peak:.0f} MiB")
        dups, parse_s, rest_s, dup_cpu = duplicate_run(Path(tmp) / "inline.db", count, args.per_feed, workers)
        print(
            f"all duplicates (the same feeds again): {dups:,} items in {parse_s + rest_s:.2f} s = "
            f"{dups / (parse_s + rest_s):,.0f} items/s ({dups / dup_cpu:,.0f} per CPU second); parse "
            f"{dups / parse_s:,.0f} items/s, normalise + lookup + skip + save {dups / rest_s:,.0f} items/s"
        )
        total2, worker_s = asyncio.run(worker_run(Path(tmp) / "workers.db", count, args.per_feed, workers))
        db = sqlite3.connect(str(Path(tmp) / "workers.db"))
        matches, clusters = db.execute(
            "SELECT (SELECT count(*) FROM matches), (SELECT count(DISTINCT cluster_id) FROM posts)"
        ).fetchone()
        db.close()
        worker_peak = worker_peak_mib(workers)
        workers.close()
        print(
            f"with the worker process: {total2:,} posts in {worker_s:.2f} s = {total2 / worker_s:,.0f} posts/s "
            f"({inline_s / worker_s:.2f}x the inline run); {matches:,} topic matches, {clusters:,} clusters"
        )
    print(f"peak memory: main process {peak_mib():.0f} MiB, worker process {worker_peak:.0f} MiB")


def worker_peak_mib(workers: Workers) -> float:
    """VmHWM (peak resident set) of the worker processes, read from /proc while they still run."""
    peak = 0.0
    for pid in workers.pids:
        status = Path(f"/proc/{pid}/status")
        for line in status.read_text().splitlines() if status.exists() else []:
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) / 1024)
    return peak


def bare_inserts(path: Path, count: int, per_feed: int) -> float:
    """Posts/s for plain INSERTs of the parsed items, one transaction per feed: the floor of any store."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, source TEXT, key TEXT, title TEXT, text TEXT, "
        "UNIQUE (source, key))"
    )
    rows = 0
    elapsed = 0.0
    for index in range(count):
        items = parse_feed(feed(index, per_feed, NOW), url=f"https://site{index}.example/rss").items
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO posts (source, key, title, text) VALUES (?, ?, ?, ?)",
            [(f"site{index}", i.guid, i.title, i.text) for i in items],
        )
        conn.execute("COMMIT")
        elapsed += time.perf_counter() - started
        rows += len(items)
    conn.close()
    return rows / elapsed


if __name__ == "__main__":
    main()
