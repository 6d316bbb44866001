"""Shared fixtures: the real corpus, a store on a temporary file, loopback HTTP servers, config files."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor.collectors import SOURCE_MODELS
from monitor.config import Config, parse_config
from monitor.store import Store, StoreURL, open_store
from monitor.store.sqlite import SqliteStore, open_sqlite
from tests import pgserver

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


BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pgserver.Cluster]:
    """A throwaway PostgreSQL cluster for the whole session (skipped, saying why, when there is no server)."""
    reason = pgserver.skip_reason()
    if reason:
        pytest.skip(reason)
    cluster = pgserver.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: pgserver.Cluster) -> StoreURL:
    """A fresh, empty database of the session's cluster, as a store URL."""
    return StoreURL(pg_cluster.url(pg_cluster.new_database()))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Path | StoreURL:
    """Where a new store goes, on each backend in turn: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "postgres":
        url: StoreURL = request.getfixturevalue("pg_url")
        return url
    return tmp_path / "monitor.db"


@pytest.fixture
def any_store(backend: Path | StoreURL) -> Iterator[Store]:
    """A new store on each backend in turn."""
    with open_store(backend) as opened:
        yield opened


def sql(store: Store, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run SQL on the store's own database, behind its back (`?` placeholders on both backends): what an
    analyst's tool would do. Returns the rows (none for a statement without a result)."""
    if isinstance(store, SqliteStore):
        return store.conn.execute(query, params).fetchall()
    with store.pool.connection() as conn:  # type: ignore[attr-defined]
        cursor = conn.execute(query.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description else []


def body_of(message: Message, kind: str) -> str:
    """The text of a mail's `plain` or `html` body part (the test fails if there is none)."""
    assert isinstance(message, EmailMessage), "parse the mail with the default policy"
    part = message.get_body((kind,))
    assert part is not None, f"no {kind} part"
    return str(part.get_content())


def make_config(tmp_path: Path, body: str) -> Config:
    return parse_config(
        textwrap.dedent(body), base_dir=tmp_path, path=tmp_path / "config.yaml", source_types=SOURCE_MODELS
    )


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


def run_python(
    script: str, *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -c script args...` in a fresh interpreter (this venv's), its output captured as text."""
    return subprocess.run(
        [sys.executable, "-c", script, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


Handler = Callable[[BaseHTTPRequestHandler], None]


class _LoopbackServer(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: fifty clients connecting at once on a loaded machine overflow it,
    # and a dropped SYN is retried after 1, 3, 7, 15 and 31 s, past a source's 30 s timeout: the likely cause of
    # 12 of 50 sources "timed out after 30s" once in a loaded CI-like run. A real server's backlog is hundreds.
    request_queue_size = 128


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

        self.httpd = _LoopbackServer(("127.0.0.1", 0), _Handler)
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


_RESERVED: dict[int, socket.socket] = {}  # port -> its bound socket, held until the session ends


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (openssl), written under `directory`."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a certificate with")
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def refused_port() -> int:
    """A loopback port that refuses connections and stays ours: bound, never listening, kept open for the whole
    session (no bind-release-reuse race: nothing else can take it). `SmtpServer(port)` may later listen on it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    _RESERVED[port] = sock
    return port


@pytest.fixture(scope="session", autouse=True)
def _release_reserved_ports() -> Iterator[None]:
    yield
    for sock in _RESERVED.values():
        sock.close()
    _RESERVED.clear()


class MailSink:
    """Handler for a real aiosmtpd server on 127.0.0.1 that keeps every accepted message.

    `fail_with` makes it refuse DATA with that reply; `stall_rcpt` makes it sleep while a client waits
    at RCPT (a send in progress that a test can kill)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.fail_with: str | None = None
        self.stall_rcpt = 0.0
        self.on_accept: Callable[[bytes], None] | None = None  # called with each message before the 250 reply
        self.rcpt_seen = threading.Event()  # a client has reached RCPT (a send is under way)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]  # noqa: N802
        self.rcpt_seen.set()
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
        if self.on_accept is not None:
            self.on_accept(envelope.content)
        return "250 Message accepted for delivery"

    def parsed(self) -> list[EmailMessage]:
        import email
        from email import policy

        messages = [email.message_from_bytes(m, policy=policy.default) for m in self.messages]
        return [m for m in messages if isinstance(m, EmailMessage)]  # policy.default parses to EmailMessage


class SmtpServer:
    """A real aiosmtpd server on 127.0.0.1, in a thread of the test process. It listens on a socket bound to port 0
    and kept (or on a `refused_port()` given as `port`: the SMTP server "comes up" on a port that refused before)."""

    def __init__(self, port: int | None = None) -> None:
        self.sink = MailSink()
        self.port = port or refused_port()
        self._sock = _RESERVED.pop(self.port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="smtp-server", daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> SmtpServer:
        from aiosmtpd.smtp import SMTP

        self._thread.start()

        async def create() -> asyncio.AbstractServer:
            return await self._loop.create_server(lambda: SMTP(self.sink, hostname="127.0.0.1"), sock=self._sock)

        self._server = asyncio.run_coroutine_threadsafe(create(), self._loop).result(10)
        return self

    def settle(self) -> None:
        """Return once the server has handled what clients sent before now (one SMTP round trip through its loop)."""
        import smtplib

        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
            client.noop()

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._sock.close()
        self._loop.close()


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

        self.httpd = _LoopbackServer(("127.0.0.1", 0), _Handler)
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
                found[name] = bytes(payload).decode("utf-8")
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


def cli(config: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Any:
    """`monitor --config CONFIG ARGS` in this process with click's CliRunner (no subprocess where no signal or
    kill is needed), run from `cwd` (default: the config's directory). Exceptions propagate (a traceback fails
    the test); the root logger and the working directory are restored. Returns click's Result."""
    from click.testing import CliRunner

    from monitor.cli import main

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    here = Path.cwd()
    try:
        os.chdir(cwd or config.parent)
        return CliRunner().invoke(
            main, ["--config", str(config), *args], catch_exceptions=False, env=env, prog_name="monitor"
        )
    finally:
        os.chdir(here)
        root.handlers[:] = handlers
        root.setLevel(level)


def invoke(
    config: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`cli` with `run_monitor`'s answer (returncode, stdout, stderr): the in-process twin of a subprocess."""
    result = cli(config, *args, cwd=cwd, env=env)
    return subprocess.CompletedProcess(["monitor", *args], result.exit_code, result.stdout, result.stderr)


def sqlite_file(config: Any) -> Path:
    """The SQLite file of a test config's store (tests that read the file itself)."""
    assert isinstance(config.store, Path), f"a SQLite store expected, not {config.store}"
    return config.store


def start_daemon(config: Path, log: Path, *options: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`monitor [options] run` on `config` in a session of its own (the daemon and its worker process are killed
    together by the `daemons` fixture), its output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            monitor_cmd(config, *options, "run"),
            cwd=config.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})},
            start_new_session=True,
        )


def wait_for(condition: Callable[[], bool], what: str, log: Path | None = None, timeout: float = 60.0) -> None:
    """Poll `condition` until it holds (bounded by `timeout`); on failure, say what and show the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    tail = f"; log:\n{log.read_text(errors='replace')[-3000:]}" if log is not None and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}{tail}")


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Daemon processes a test starts (each in its own session); killed with their children at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
