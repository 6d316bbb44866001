"""A loopback SMTP server for the benches (aiosmtpd in a thread of the bench process) that keeps every message
with the time it arrived. Binds port 0 and keeps the socket (no bind-release-reuse race).
"""

from __future__ import annotations

import asyncio
import email
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from typing import Any


@dataclass(frozen=True)
class Received:
    at: float  # time.time() when DATA was accepted
    message_id: str
    subject: str
    recipients: tuple[str, ...]
    alert: str = ""  # the X-Monitor-Alert header: which alert this copy is ("spike #12")


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self.on_accept: Callable[[Received], None] | None = None  # called with each message before the 250 reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's hook name)
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        received = Received(
            time.time(),
            str(message.get("Message-ID", "")),
            str(message.get("Subject", "")),
            tuple(envelope.rcpt_tos),
            str(message.get("X-Monitor-Alert", "")),
        )
        with self._lock:
            self.messages.append(received)
        if self.on_accept is not None:
            self.on_accept(received)
        return "250 Message accepted for delivery"

    def start(self) -> SmtpSink:
        from aiosmtpd.smtp import SMTP

        self._thread.start()

        async def create() -> asyncio.AbstractServer:
            return await self._loop.create_server(lambda: SMTP(self, hostname="bench.local"), sock=self._sock)

        self._server = asyncio.run_coroutine_threadsafe(create(), self._loop).result(10)
        return self

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def settle(self) -> None:
        """Return once the server has handled what clients sent before now (SMTP round trips through its loop)."""
        import smtplib

        for _ in range(2):
            with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
                client.noop()

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._sock.close()
