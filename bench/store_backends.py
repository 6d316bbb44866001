"""Ingest into PostgreSQL vs SQLite in the same run: `save_poll` of the same synthetic polls into each store.

    .venv/bin/python bench/store_backends.py                  # 4,000 posts in polls of 50, 3 rounds
    .venv/bin/python bench/store_backends.py --posts 1000 --rounds 1
    .venv/bin/python bench/store_backends.py --url postgresql://monitor@host/db   # a server of yours (emptied!)
    .venv/bin/python bench/store_backends.py --rounds 1 --profile   # then where PostgreSQL's time goes (cProfile)

Without --url a throwaway cluster is started (tests/pgserver.py: a Unix socket, fsync and synchronous_commit
off as the tests run it, so it flatters PostgreSQL on durability). Each round writes every poll into a new
SQLite file and a new database, alternating which goes first; the posts are the same (normalised, matched,
signed before timing). Printed: posts/s of each and the median ratio PostgreSQL / SQLite. The machine is
shared: read the ratio, not the absolute figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from monitor import dedupe
from monitor.normalize import content_hash
from monitor.store import Store, StoreURL, open_store
from monitor.types import FetchRecord, FetchStatus, Match, MatchedPost, Post, SourceState
from monitor.units import from_iso

NOW = from_iso("2026-03-01T12:00:00Z")
WORDS = [
    "совет",
    "сессия",
    "депутаты",
    "сепаратизм",
    "автономия",
    "Петропавловск",
    "заявление",
    "халық",
    "кеңесі",
    "жиналды",
    "мәлімдеме",
    "council",
    "session",
    "separatism",
    "autonomy",
    "declaration",
    "road",
    "works",
    "weather",
    "region",
    "city",
    "court",
    "bloggers",
    "rally",
]


def polls(posts: int, per_poll: int) -> list[list[MatchedPost]]:
    made = []
    for i in range(posts):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(60)] + [f"n{i}", f"k{i % 97}"]
        title, text = " ".join(words[:8]), " ".join(words)
        post = Post(f"s{i // per_poll}", f"k{i}", f"https://example.org/{i}", title, text, None, NOW, NOW,
                    content_hash(title, text))  # fmt: skip
        made.append(MatchedPost(post, (Match("separatism", "сепаратизм"),), dedupe.signature(title, text)))
    return [made[i : i + per_poll] for i in range(0, len(made), per_poll)]


def ingest(store: Store, batches: list[list[MatchedPost]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        name = batch[0].post.source
        store.save_poll(
            state=SourceState(name),
            source_type="feed",
            source_url="https://example.org/rss",
            posts=batch,
            fetches=(FetchRecord(name, "https://example.org/rss", NOW, FetchStatus.OK, 200),),
            now=NOW,
        )
    return time.perf_counter() - started


def profile(store: Store, batches: list[list[MatchedPost]]) -> None:
    """cProfile of one ingest (after a first poll, so the schema and connections are warm): the top 15 by
    cumulative time."""
    import cProfile
    import pstats

    ingest(store, batches[:1])
    profiler = cProfile.Profile()
    profiler.enable()
    ingest(store, batches[1:])
    profiler.disable()
    print(f"profile of {sum(len(b) for b in batches[1:])} posts into PostgreSQL, by cumulative time:")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=4000)
    parser.add_argument("--per-poll", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", help="a PostgreSQL database to use (its monitor tables are dropped first)")
    parser.add_argument("--profile", action="store_true", help="then profile one more ingest into PostgreSQL")
    args = parser.parse_args()
    batches = polls(args.posts, args.per_poll)
    cluster = None
    if args.url is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from tests import pgserver

        reason = pgserver.skip_reason()
        if reason:
            print(f"skipped: {reason}")
            return 0
        cluster = pgserver.start()
    ratios, rates = [], {"sqlite": [], "postgres": []}
    try:
        for round_ in range(args.rounds):
            with tempfile.TemporaryDirectory() as folder:
                url = StoreURL(args.url) if args.url else StoreURL(cluster.url(cluster.new_database()))  # type: ignore[union-attr]
                order = ["sqlite", "postgres"] if round_ % 2 == 0 else ["postgres", "sqlite"]
                took = {}
                for backend in order:
                    where = Path(folder) / "monitor.db" if backend == "sqlite" else url
                    with open_store(where) as store:
                        took[backend] = ingest(store, batches)
                    rates[backend].append(args.posts / took[backend])
                ratios.append(took["sqlite"] / took["postgres"])
                print(
                    f"round {round_ + 1}: sqlite {rates['sqlite'][-1]:,.0f} posts/s, "
                    f"postgres {rates['postgres'][-1]:,.0f} posts/s, postgres/sqlite {ratios[-1]:.2f}"
                )
        if args.profile:
            url = StoreURL(args.url) if args.url else StoreURL(cluster.url(cluster.new_database()))  # type: ignore[union-attr]
            with open_store(url) as store:
                profile(store, batches)
    finally:
        if cluster is not None:
            cluster.stop()
    print(
        f"median over {args.rounds} rounds of {args.posts} posts in polls of {args.per_poll}: "
        f"sqlite {statistics.median(rates['sqlite']):,.0f} posts/s, "
        f"postgres {statistics.median(rates['postgres']):,.0f} posts/s, "
        f"postgres/sqlite {statistics.median(ratios):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
