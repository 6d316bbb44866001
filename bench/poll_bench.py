"""Poll benchmark: one cold poll of 200 feeds x 50 items from a loopback server, then a poll of the same,
unchanged feeds (conditional GET: every answer a 304).

    .venv/bin/python bench/poll_bench.py [--feeds 200] [--items 50] [--hosts 50]

Runs `monitor poll`'s own code (`service.poll_once`: fetch with politeness, parse, normalise, match,
sign, store with FTS, alert evaluation) in this process against bench/feed_server.py in another one.
The baseline, measured in the same run, is plain httpx fetching the same feeds with the same
concurrency and doing nothing with them: the floor any poller pays for the network.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.corpus_gen import terms
from monitor.collectors import SOURCE_MODELS
from monitor.config import parse_config
from monitor.service import poll_once
from monitor.store import open_store


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def config_text(urls: list[str]) -> str:
    topic_lines = []
    for topic in terms(1000):
        topic_lines.append(f"  {topic.name}:")
        topic_lines += [f'    - "{t}"' for t in topic.any]
    sources = "\n".join(f"  - {{name: feed-{i}, type: feed, url: '{u}'}}" for i, u in enumerate(urls))
    return (
        "store: bench.db\ntopics:\n" + "\n".join(topic_lines) + f"\nsources:\n{sources}\n"
        "defaults:\n  per_host: 2\n  timeout: 30s\n"
    )


async def bare_fetch(urls: list[str], per_host: int) -> float:
    slots: dict[str, asyncio.Semaphore] = {}
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as client:

        async def one(url: str) -> int:
            host = httpx.URL(url).host
            async with slots.setdefault(host, asyncio.Semaphore(per_host)):
                return len((await client.get(url)).content)

        started = time.perf_counter()
        await asyncio.gather(*(one(u) for u in urls))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--hosts", type=int, default=50)
    args = parser.parse_args()
    server = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("feed_server.py")),
            "--hosts",
            str(args.hosts),
            "--feeds",
            str(args.feeds),
            "--items",
            str(args.items),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        urls = [f"http://127.0.0.{i % args.hosts + 1}:{port}/feed/{i}.xml" for i in range(args.feeds)]
        print(f"{args.feeds} feeds x {args.items} items on {args.hosts} loopback hosts, 1,000 terms, per_host 2")
        bare = asyncio.run(bare_fetch(urls, 2))
        print(f"baseline, plain httpx GET of every feed, nothing else: {bare:.2f} s ({args.feeds / bare:,.0f} feeds/s)")
        with tempfile.TemporaryDirectory() as tmp:
            config = parse_config(config_text(urls), base_dir=Path(tmp), source_types=SOURCE_MODELS)
            store = open_store(config.store)
            clock = lambda: datetime.now(UTC)  # noqa: E731
            started = time.perf_counter()
            cold = asyncio.run(poll_once(config, store, config.sources, clock=clock))
            cold_s = time.perf_counter() - started
            posts = store.counts()["posts"]
            failed = [r.result.source for r in cold.results if not r.result.ok]
            print(
                f"cold poll: {cold_s:.2f} s for {posts:,} new posts ({posts / cold_s:,.0f} posts/s, "
                f"{args.feeds / cold_s:,.0f} feeds/s; {cold_s / bare:.1f}x the bare fetch); failed: {failed or 'none'}"
            )
            started = time.perf_counter()
            warm = asyncio.run(poll_once(config, store, config.sources, clock=clock))
            warm_s = time.perf_counter() - started
            written = sum(r.result.new_posts + r.result.updated_posts for r in warm.results)
            not_modified = sum(r.result.not_modified for r in warm.results)
            print(
                f"second poll, unchanged: {warm_s:.2f} s = {args.feeds / warm_s:,.0f} feeds/s; {not_modified} answered "
                f"304; posts written {written}; posts in store {store.counts()['posts']:,}"
            )
            store.close()
        print(f"peak memory (max RSS of this process): {peak_mib():.0f} MiB")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
