"""Shared fixtures: the real corpus, a store on a temporary file, loopback HTTP servers, config files."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Config, parse_config
from monitor.store import Store
from monitor.store.sqlite import SqliteStore, open_sqlite

REPO = Path(__file__).resolve().parents[1]
# The capture corpus ships with the tests (tests/corpus/PROVENANCE.md); MONITOR_CORPUS points elsewhere.
CORPUS = Path(os.environ.get("MONITOR_CORPUS", REPO / "tests" / "corpus"))
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ["no_proxy"] = os.environ["NO_PROXY"]


@pytest.fixture
def corpus() -> Path:
    assert CORPUS.is_dir(), f"the capture corpus is missing at {CORPUS}"
    return CORPUS


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with open_sqlite(tmp_path / "monitor.db") as opened:
        yield opened


def make_config(tmp_path: Path, body: str) -> Config:
    return parse_config(textwrap.dedent(body), base_dir=tmp_path, path=tmp_path / "config.yaml")


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def monitor_cmd(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "monitor", "--config", str(config), *args]


def run_monitor(
    config: Path, *args: str, timeout: float = 120, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        monitor_cmd(config, *args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or config.parent,
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})},
        check=False,
    )


Handler = Callable[[BaseHTTPRequestHandler], None]


class RawServer:
    """A stdlib HTTP server on 127.0.0.1 for behaviour pytest-httpserver cannot script (slow, endless,
    broken responses). `routes` maps a path to a function that writes the whole response itself."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    handler = server.routes.get(path)
                    if handler is None:
                        self.send_response(404)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    else:
                        handler(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server._lock:
                        server.active -= 1

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


def respond(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None, delay: float = 0.0) -> Handler:
    def handler(req: BaseHTTPRequestHandler) -> None:
        if delay:
            time.sleep(delay)
        req.send_response(status)
        for name, value in (headers or {}).items():
            req.send_header(name, value)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    return handler


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MailSink:
    """Handler for a real aiosmtpd server on 127.0.0.1 that keeps every accepted message.

    `fail_with` makes it refuse DATA with that reply; `stall_rcpt` makes it sleep while a client waits
    at RCPT (a send in progress that a test can kill)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.fail_with: str | None = None
        self.stall_rcpt = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]  # noqa: N802
        if self.stall_rcpt:
            import asyncio

            await asyncio.sleep(self.stall_rcpt)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        if self.fail_with:
            return self.fail_with
        self.messages.append(envelope.content)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def parsed(self) -> list[object]:
        import email
        from email import policy

        return [email.message_from_bytes(m, policy=policy.default) for m in self.messages]


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        from aiosmtpd.controller import Controller

        self.sink = MailSink()
        self.port = port or closed_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def collect_once(
    collect: Any, source: Any, state: Any = None, *, limits: Any, now: datetime = NOW
) -> tuple[Any, list[Any]]:
    """Run one collector once against real HTTP: (Collected or the FetchError it raised, the fetch records)."""
    from monitor.collectors.fetch import Fetcher
    from monitor.exceptions import FetchError
    from monitor.types import SourceState

    async def go() -> tuple[Any, list[Any]]:
        async with Fetcher(user_agent="t", clock=lambda: now) as fetcher:
            session = fetcher.session(source.name, limits)
            try:
                return await collect(source, session, state or SourceState(source.name), now), session.records
            except FetchError as exc:
                return exc, session.records

    return asyncio.run(go())


def run_once(source: Any, store: Store, now: datetime = NOW) -> Any:
    """One whole poll of `source` through the real pipeline (fetcher, empty matcher, store)."""
    from monitor.collectors.fetch import Fetcher
    from monitor.match import Matcher
    from monitor.pipeline import run_source

    async def go() -> Any:
        async with Fetcher(user_agent="t", clock=lambda: now) as fetcher:
            return await run_source(source, fetcher=fetcher, store=store, matcher=Matcher(()), now=now)

    return asyncio.run(go())


class HookServer:
    """A webhook receiver on 127.0.0.1 for Apprise's `json://`, `form://` and `ntfy://` (an ntfy-compatible
    endpoint): every POST/PUT it accepts is kept, parsed to (path, title, message, files).

    `status` is the reply (200 accepts; anything else refuses and keeps nothing). `hold`, when set, runs before
    the reply (a slow or stalled service); a request it returns False for is refused with 503."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.refused = 0
        self.status = 200
        self.hold: Callable[[dict[str, Any]], bool] | None = None
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _receive(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                message = parse_hook(self.path, self.headers.get("Content-Type", ""), body)
                accepted = server.status == 200 and (server.hold is None or server.hold(message))
                with server._lock:
                    if accepted:
                        server.messages.append(message)
                    else:
                        server.refused += 1
                reply = b'{"ok": true}' if accepted else b'{"error": "unavailable"}'
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the sender was killed meanwhile
                    self.send_response(200 if accepted else (server.status if server.status != 200 else 503))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)

            def do_POST(self) -> None:  # the stdlib's handler names
                self._receive()

            def do_PUT(self) -> None:
                self._receive()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, scheme: str, path: str) -> str:
        """An Apprise URL for this receiver: `json`, `form` or `ntfy` (then `path` is the ntfy topic)."""
        return f"{scheme}://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def parse_hook(path: str, content_type: str, body: bytes) -> dict[str, Any]:
    import base64
    import email
    import json
    from email import policy
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(path)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    found: dict[str, Any] = {"path": parts.path, "title": "", "message": "", "files": {}}
    if content_type.startswith("application/json"):
        data = json.loads(body)
        found["title"], found["message"] = data.get("title", ""), data.get("message", "")
        found["topic"] = data.get("topic")  # ntfy without an attachment posts JSON naming its topic
        for item in data.get("attachments") or ():
            found["files"][item["filename"]] = base64.b64decode(item["base64"])
    elif content_type.startswith("multipart/form-data"):
        parsed = email.message_from_bytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=policy.default
        )
        for part in parsed.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True)
            if filename:
                found["files"][filename] = payload
            elif name in ("title", "message"):
                found[name] = payload.decode("utf-8")
    else:  # ntfy with an attachment: the file is the body, the text rides in the query
        found["title"], found["message"] = query.get("title", ""), query.get("message", "")
        if "filename" in query:
            found["files"][query["filename"]] = body
    return found


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer()
    yield server
    server.close()
