"""The demo's SMTP server: a minimal receiver on 127.0.0.1 (a free port) that keeps what it is sent.

Enough of RFC 5321 for a mail client such as the one in monitor/mail.py: EHLO/HELO, MAIL, RCPT, DATA
(with dot-unstuffing), RSET, NOOP, QUIT; no relaying, no authentication, no TLS. The standard library
has no SMTP server any more (`smtpd` is gone from Python 3.12), and this one is small enough to own.
Every read is bounded (line length, message size, commands per connection) and times out.
"""

from __future__ import annotations

import socketserver
import threading

MAX_LINE = 1000 + 2  # RFC 5321 4.5.3.1.6, with CRLF
MAX_MESSAGE = 32_000_000  # bytes
MAX_COMMANDS = 200  # per connection
TIMEOUT_S = 30.0


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Session)
        self.messages: list[bytes] = []
        self.received = threading.Event()
        self.lock = threading.Lock()

    def keep(self, message: bytes) -> None:
        with self.lock:
            self.messages.append(message)
        self.received.set()


class _Session(socketserver.StreamRequestHandler):
    server: _Server
    timeout = TIMEOUT_S

    def handle(self) -> None:
        try:
            self._converse()
        except (EOFError, OSError):  # the client went away or stalled past the timeout
            return

    def _converse(self) -> None:
        self._say("220 127.0.0.1 monitor demo mailbox ready")
        sender: str | None = None
        recipients: list[str] = []
        for _ in range(MAX_COMMANDS):
            line = self.rfile.readline(MAX_LINE)
            if not line:
                return
            verb = line[:4].decode("ascii", "replace").upper()
            if verb == "EHLO":
                self._say("250-127.0.0.1 hello", "250 8BITMIME")
            elif verb == "HELO":
                self._say("250 127.0.0.1 hello")
            elif verb == "MAIL":
                sender, recipients = line.decode("utf-8", "replace").strip(), []
                self._say("250 OK")
            elif verb == "RCPT":
                if sender is None:
                    self._say("503 MAIL first")
                    continue
                recipients.append(line.decode("utf-8", "replace").strip())
                self._say("250 OK")
            elif verb == "DATA":
                if not recipients:
                    self._say("503 RCPT first")
                    continue
                self._say("354 End data with <CR><LF>.<CR><LF>")
                message = self._data()
                if message is None:
                    self._say("552 message too large")
                    return
                self.server.keep(message)
                sender, recipients = None, []
                self._say("250 OK: queued")
            elif verb in ("RSET", "NOOP"):
                if verb == "RSET":
                    sender, recipients = None, []
                self._say("250 OK")
            elif verb == "QUIT":
                self._say("221 Bye")
                return
            else:
                self._say("502 command not implemented")

    def _data(self) -> bytes | None:
        """The message up to the lone "." line, dots unstuffed; None when it is over MAX_MESSAGE."""
        lines: list[bytes] = []
        size = 0
        while size <= MAX_MESSAGE:  # bounded: every pass reads at least one byte or raises
            line = self.rfile.readline(MAX_LINE)
            if not line:
                raise EOFError("the client closed the connection inside DATA")
            if line in (b".\r\n", b".\n"):
                return b"".join(lines)
            if line.startswith(b"."):
                line = line[1:]
            size += len(line)
            lines.append(line)
        return None

    def _say(self, *lines: str) -> None:
        self.wfile.write("".join(f"{line}\r\n" for line in lines).encode("ascii"))
        self.wfile.flush()


class Mailbox:
    """The SMTP server on its own thread (the poll delivers from the event loop's thread, blocking)."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-smtp", daemon=True)

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def messages(self) -> list[bytes]:
        with self._server.lock:
            return list(self._server.messages)

    def start(self) -> None:
        self._thread.start()

    def wait(self, seconds: float) -> bool:
        """Whether a message has arrived, waiting up to `seconds` for the first."""
        return self._server.received.wait(seconds)

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()
