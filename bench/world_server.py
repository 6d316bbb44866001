"""A loopback world of template-style feeds for the benchmarks, run as a process of its own.

    python bench/world_server.py --hosts 1 --feeds 200 --items 50 [--seed 0] [--log FILE] [--port 0]

Serves `/feed/<n>.xml` (feed n on host 127.0.0.<n % hosts + 1>, all on one port) as RSS 2.0 from
bench/template_gen.py, with ETag and Last-Modified (304 for a matching If-None-Match or
If-Modified-Since), keep-alive, and `/robots.txt` (everything allowed but /private/). Prints
`ready <port>` when listening. Loopback addresses only.

Control (the bench drives the world through these, on any host):
    /_control/round?n=R              every feed now holds items R*items .. (R+1)*items-1: all new posts
    /_control/spike?feed=K&term=W&posts=N   N new posts published now on feed K, each containing word W
    /_control/flush                  flush the request log
With `--log FILE`, each request is one line `unix_time host path status`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import socket
import sys
import time
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import template_gen as gen

ROBOTS = b"User-agent: *\nDisallow: /private/\n"


class World:
    def __init__(self, feeds: int, items: int, seed: int, span_days: float) -> None:
        self.feeds, self.items, self.seed = feeds, items, seed
        self.now = gen.now_utc()
        self.span = timedelta(days=span_days)
        self.round = 0
        self.extra: dict[int, list[gen.Item]] = {}  # spike posts per feed, newest first
        self.cache: dict[int, tuple[bytes, str, str]] = {}
        self.spiked = 0

    def body(self, feed: int) -> tuple[bytes, str, str]:
        """(body, etag, last_modified) of one feed now."""
        if feed not in self.cache:
            start = self.round * self.items
            entries = gen.items(feed, self.items, self.now, seed=self.seed, span=self.span, start=start)
            body = gen.rss(feed, self.extra.get(feed, []) + entries)
            etag = '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"'
            self.cache[feed] = (body, etag, format_datetime(self.now, usegmt=True))
        return self.cache[feed]

    def set_round(self, n: int) -> None:
        self.round = n
        self.now = gen.now_utc()
        self.cache.clear()

    def spike(self, feed: int, term: str, posts: int) -> float:
        at = gen.now_utc()
        rng = random.Random(f"spike-{self.seed}-{self.spiked}")
        fresh = []
        for i in range(posts):
            title, sentences = gen.story(rng, topical=False)
            words = f"{sentences[0]} Reports mention {term} again." if i % 2 else f"{term}: {sentences[0]}"
            fresh.append(
                gen.Item(f"https://site{feed}.example/spike/{self.spiked}/{i}", title, (words,), at, True, None)
            )
        self.spiked += 1
        self.extra[feed] = fresh + self.extra.get(feed, [])
        self.cache.pop(feed, None)
        return time.time()


async def serve(args: argparse.Namespace) -> None:
    world = World(args.feeds, args.items, args.seed, args.span_days)
    log: IO[str] | None = Path(args.log).open("a", buffering=1 << 16) if args.log else None  # noqa: SIM115

    def respond(host: str, target: str, headers: dict[str, str]) -> tuple[int, bytes, list[str]]:
        url = urlsplit(target)
        path, query = url.path, {k: v[0] for k, v in parse_qs(url.query).items()}
        if path == "/robots.txt":
            return 200, ROBOTS, ["Content-Type: text/plain"]
        if path.startswith("/_control/"):
            answer: dict[str, object] = {}
            if path == "/_control/round":
                world.set_round(int(query["n"]))
            elif path == "/_control/spike":
                answer["at"] = world.spike(int(query["feed"]), query["term"], int(query.get("posts", "5")))
            elif path == "/_control/flush" and log is not None:
                log.flush()
            return 200, json.dumps(answer).encode(), ["Content-Type: application/json"]
        name = path.removeprefix("/feed/").removesuffix(".xml")
        if not (path.startswith("/feed/") and name.isdigit() and int(name) < world.feeds):
            return 404, b"", []
        body, etag, modified = world.body(int(name))
        meta = [f"ETag: {etag}", f"Last-Modified: {modified}"]
        if headers.get("if-none-match") == etag or (
            "if-none-match" not in headers and headers.get("if-modified-since") == modified
        ):
            return 304, b"", meta
        return 200, body, ["Content-Type: application/rss+xml; charset=utf-8", *meta]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                status, body, extra = respond(host, target, headers)
                reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}[status]
                head_out = "\r\n".join([f"HTTP/1.1 {status} {reason}", *extra, f"Content-Length: {len(body)}"])
                writer.write(head_out.encode() + b"\r\n\r\n" + body)
                if log is not None and not target.startswith("/_control/"):
                    log.write(f"{time.time():.3f} {host} {target} {status}\n")
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError, KeyError):
            pass
        finally:
            writer.close()

    async def flusher() -> None:
        while log is not None:
            await asyncio.sleep(1)
            log.flush()

    first = await asyncio.start_server(handle, "127.0.0.1", args.port, backlog=1024)
    port = first.sockets[0].getsockname()[1]
    servers = [first]
    for host in range(2, args.hosts + 1):
        servers.append(await asyncio.start_server(handle, f"127.0.0.{host}", port, family=socket.AF_INET, backlog=1024))
    print(f"ready {port}", flush=True)
    await asyncio.gather(flusher(), *(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=1)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--span-days", type=float, default=7.0, help="items are published over this many days")
    parser.add_argument("--log", help="append one line per request to this file")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if not 1 <= args.hosts <= 254:
        parser.error("--hosts must be 1..254 (127.0.0.1 .. 127.0.0.254)")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
