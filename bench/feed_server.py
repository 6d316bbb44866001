"""A loopback feed server for the poll benchmark, run as its own process so it does not share a core's GIL.

    python bench/feed_server.py --hosts 50 --feeds 200 --items 50 --port 0

Serves `/feed/<n>.xml` on 127.0.0.1 ... 127.0.0.<hosts> (feed n on host n % hosts + 1), with an ETag
and 304 for a matching If-None-Match, keep-alive, and 404 for anything else (robots.txt included).
Prints `ready <port>` when listening. Loopback addresses only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus_gen import NOW, feed


async def serve(hosts: int, feeds: int, items: int, port: int) -> None:
    bodies = {f"/feed/{i}.xml": feed(i, items, NOW, seed=7) for i in range(feeds)}
    tags = {path: '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"' for path, body in bodies.items()}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1].split("?")[0]
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                if path not in bodies:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                elif headers.get("if-none-match") == tags[path]:
                    writer.write(
                        f"HTTP/1.1 304 Not Modified\r\nETag: {tags[path]}\r\nContent-Length: 0\r\n\r\n".encode()
                    )
                else:
                    body = bodies[path]
                    writer.write(
                        f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nETag: {tags[path]}\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    first = await asyncio.start_server(handle, "127.0.0.1", port)
    chosen = first.sockets[0].getsockname()[1]
    servers = [first]
    for host in range(2, hosts + 1):
        servers.append(await asyncio.start_server(handle, f"127.0.0.{host}", chosen, family=socket.AF_INET))
    print(f"ready {chosen}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.hosts, args.feeds, args.items, args.port))


if __name__ == "__main__":
    main()
