"""The error tree of `monitor`. Foreign errors are mapped where they enter, `raise ... from exc`.

MonitorError
 +-- ConfigError      the config file is missing, unreadable or invalid (exit status 2)
 +-- FetchError       a request failed: network, timeout, HTTP status, size cap, scheme, robots.txt
 +-- ParseError       a response could not be read as the expected format
 +-- StoreError       the store could not be opened, migrated, read or written
 |    +-- StoreCorrupt     the file is damaged or not a store: restore from a backup
 |    +-- StoreBusy        another connection held the store's write lock past the busy timeout
 |    +-- StoreReadOnly    the file or its directory cannot be written (readers still work)
 |    +-- StoreFull        the disk (or the store's size limit) is full
 |    +-- StoreLocked      another daemon holds the store (`holder` names it)
 |    +-- QueryError       a full-text query FTS5 cannot parse (exit status 2)
 +-- MailError        an email could not be composed or delivered
 +-- NotifyError      a notice could not be delivered on a notify channel (Apprise)
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
    """The store failed."""


class StoreCorrupt(StoreError):  # noqa: N818  # named for what happened, as the error tree shows
    """The store's file is damaged, or is not a store at all."""


class StoreBusy(StoreError):  # noqa: N818  # named for what happened, as the error tree shows
    """The store stayed locked by another writer past the busy timeout."""


class StoreReadOnly(StoreError):  # noqa: N818  # named for what happened, as the error tree shows
    """The store cannot be written: only reading commands work."""


class StoreFull(StoreError):  # noqa: N818  # named for what happened, as the error tree shows
    """The disk holding the store is full."""


class StoreLocked(StoreError):  # noqa: N818  # named for what happened, as the error tree shows
    """Another daemon holds the store; `holder` says who (host:pid:start), when known."""

    def __init__(self, message: str, *, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class QueryError(StoreError):
    """A full-text query that FTS5 cannot parse."""


class MailError(MonitorError):
    """An email could not be composed or delivered."""


class NotifyError(MonitorError):
    """A notice could not be delivered on a notify channel; the message never carries the channel's URL."""
