"""The error tree of `monitor`. Foreign errors are mapped where they enter, `raise ... from exc`.

MonitorError
 +-- ConfigError                the config file is missing, unreadable or invalid (exit status 2)
 +-- FetchError                 a request for a source failed (collectors/fetch.py maps httpx and OS errors)
 |    +-- FetchTimeout          no whole answer within the source's `timeout`
 |    +-- NetworkError          DNS, connection refused or reset, TLS, a server breaking HTTP
 |    +-- HTTPStatusError       the server answered 4xx/5xx: `http_status`, and `retry_after` on 429/503
 |    +-- APIError              an API answered 200 with an error inside (VK): `code`, maybe `retry_after`
 |    +-- ResponseTooLarge      the body passed the source's `max_bytes`
 |    +-- TooManyRedirects      more than 5 redirects
 |    +-- UnsupportedAddress    not an http(s) address, or a redirect to one (javascript:, file:, ...)
 |    +-- PrivateAddressRefused a private or loopback address while `allow_private` is false
 |    +-- RobotsDisallowed      robots.txt refuses the address: the poll is skipped, not failed
 |    +-- DecodeError           the body's content encoding (gzip, deflate) is broken
 +-- ParseError                 a response could not be read as the expected format
 |    +-- ParseTimeout          parsing took longer than its limit (the worker was stopped and replaced)
 +-- StoreError                 the store could not be opened, migrated, read or written
 |    +-- StoreCorrupt          the file is damaged or not a store: restore from a backup
 |    +-- StoreBusy             another connection held the store's write lock past the busy timeout
 |    +-- StoreReadOnly         the file or its directory cannot be written (readers still work)
 |    +-- StoreFull             the disk (or the store's size limit) is full
 |    +-- StoreLocked           another daemon holds the store (`holder` names it)
 |    +-- QueryError            a full-text query FTS5 cannot parse (exit status 2)
 +-- MailError                  an email could not be composed or delivered
 +-- NotifyError                a notice could not be delivered on a notify channel (Apprise)

Callers decide by class and by two facts every FetchError carries, never by status code: `retry_after`
(the server asked us to wait) and `site_trouble` (the site is failing or limiting us, so that the rest
of this poll's requests to it would be wasted).
"""

from __future__ import annotations

from typing import Any


class MonitorError(Exception):
    """Root of every error `monitor` raises on purpose."""


class ConfigError(MonitorError):
    """The configuration is invalid; `problems` lists every one with its location."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class FetchError(MonitorError):
    """A request failed: the message is one line. `url` is the address asked for (when known),
    `http_status` is set when the server answered, `retry_after` (seconds) when it asked us to wait,
    `bytes_read` counts the body read before the failure."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
        bytes_read: int = 0,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.http_status = http_status
        self.retry_after = retry_after
        self.bytes_read = bytes_read

    @property
    def site_trouble(self) -> bool:
        """The site is failing or limiting us: further requests to it in this poll are not worth making."""
        return self.retry_after is not None

    def __reduce__(self) -> tuple[Any, ...]:  # keep the keyword fields across pickling (worker processes)
        return (_rebuild, (type(self), str(self), self.__dict__))


def _rebuild(cls: type[FetchError], message: str, fields: dict[str, Any]) -> FetchError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(fields)
    return error


class FetchTimeout(FetchError):
    """No whole answer within the source's timeout (connect, each read, and the request in total)."""

    @property
    def site_trouble(self) -> bool:
        return True


class NetworkError(FetchError):
    """The host could not be reached or broke the protocol: DNS, refused, reset, TLS."""

    @property
    def site_trouble(self) -> bool:
        return True


class HTTPStatusError(FetchError):
    """The server answered with a 4xx or 5xx status (`http_status`); `retry_after` on 429 and 503."""

    @property
    def site_trouble(self) -> bool:
        # 429 and the gateway errors speak for the whole site; a 404 or a 500 is about one page.
        return self.http_status in (429, 502, 503, 504) or self.retry_after is not None


class APIError(FetchError):
    """An API answered with an error in its body (VK answers errors with HTTP 200): `code`."""

    def __init__(self, message: str, *, code: int | None = None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.code = code


class ResponseTooLarge(FetchError):
    """The body (decoded from gzip/br) passed the source's `max_bytes`."""


class TooManyRedirects(FetchError):
    """More redirects than the fetcher follows."""


class UnsupportedAddress(FetchError):
    """Not an http(s) address: configured, linked, or the target of a redirect."""


class PrivateAddressRefused(FetchError):
    """A private, loopback or link-local address while `allow_private` is false."""


class RobotsDisallowed(FetchError):
    """robots.txt does not let our user agent fetch the address: a skip, not a failure of the source."""


class DecodeError(FetchError):
    """The body's content encoding could not be undone (broken gzip, deflate or br)."""


class ParseError(MonitorError):
    """A response could not be read as the expected format."""


class ParseTimeout(ParseError):
    """Parsing took longer than its limit; the worker doing it was stopped and replaced."""


class StoreError(MonitorError):
    """The store failed."""


class StoreCorrupt(StoreError):  # named for what happened, as the error tree shows
    """The store's file is damaged, or is not a store at all."""


class StoreBusy(StoreError):  # named for what happened, as the error tree shows
    """The store stayed locked by another writer past the busy timeout."""


class StoreReadOnly(StoreError):  # named for what happened, as the error tree shows
    """The store cannot be written: only reading commands work."""


class StoreFull(StoreError):  # named for what happened, as the error tree shows
    """The disk holding the store is full."""


class StoreLocked(StoreError):  # named for what happened, as the error tree shows
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
