"""The error tree of `monitor`. Foreign errors are mapped where they enter, `raise ... from exc`.

MonitorError
 +-- ConfigError      the config file is missing, unreadable or invalid (exit status 2)
 +-- FetchError       a request failed: network, timeout, HTTP status, size cap, scheme, robots.txt
 +-- ParseError       a response could not be read as the expected format
 +-- StoreError       the SQLite store could not be opened, migrated, read or written
 +-- MailError        an email could not be composed or delivered
"""

from __future__ import annotations


class MonitorError(Exception):
    """Root of every error `monitor` raises on purpose."""


class ConfigError(MonitorError):
    """The configuration is invalid; `problems` lists every one with its location."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class FetchError(MonitorError):
    """A request failed. `http_status` is set when the server answered; `retry_after` in seconds."""

    def __init__(
        self, message: str, *, http_status: int | None = None, retry_after: float | None = None, bytes_read: int = 0
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.retry_after = retry_after
        self.bytes_read = bytes_read


class ParseError(MonitorError):
    """A response could not be read as the expected format."""


class StoreError(MonitorError):
    """The SQLite store failed."""


class MailError(MonitorError):
    """An email could not be composed or delivered."""
