"""The demo's local web server: serves a `render.Site` on 127.0.0.1 (a free port) from a thread.

Answers GET with the page, 304 when the client already holds it (If-None-Match), 404 otherwise, and
counts what it served. Bound to loopback only: nothing outside the machine can reach it.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from monitor.demo.render import Site


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    site: Site | None = None
    requests = 0
    not_modified = 0
    lock = threading.Lock()

    def count(self, *, not_modified: bool) -> None:
        with self.lock:
            self.requests += 1
            self.not_modified += not_modified


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # the name http.server calls
        parts = urlsplit(self.path)
        site = self.server.site
        page = site.page(parts.path, dict(parse_qsl(parts.query))) if site is not None else None
        fresh = page is not None and self.headers.get("If-None-Match") == page.etag
        self.server.count(not_modified=fresh)
        if page is None:
            self._reply(404, b"not found\n", "text/plain; charset=utf-8")
        elif fresh:
            self._reply(304, b"", None, etag=page.etag)
        else:
            self._reply(200, page.body, page.content_type, etag=page.etag)

    def _reply(self, status: int, body: bytes, content_type: str | None, *, etag: str | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if etag:
            self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet: the demo prints its own summary
        pass


class LocalSite:
    """The HTTP server; bind first (the pages need the address), then `serve` a site."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> int:
        return self._server.requests

    @property
    def not_modified(self) -> int:
        return self._server.not_modified

    def serve(self, site: Site) -> None:
        self._server.site = site
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-site", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()
