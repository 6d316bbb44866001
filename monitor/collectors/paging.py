"""One way for a collector to read several pages (or threads) in one poll.

`Pages` holds what a poll has read so far and decides, the same way for every source type:

* the poll's first request (`first`) fails the poll: its FetchError or ParseError goes up;
* a later request's failure (fetch or parse) is a warning, and what was read is kept;
* a server that asks us to wait (Retry-After, or rate-limit headers at zero) sets `retry_at` and stops
  the poll's further requests; so does a site in trouble (timeouts, 5xx: `FetchError.site_trouble`);
* a poll that reached its page cap says so in a warning (`capped`), so that a cut is never silent.

`collected()` turns it into the `Collected` the pipeline stores. The parse step runs through
`Session.parse`: in a worker process, bounded in time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.collectors.jsonapi import epoch_time, number_text
from monitor.dates import parse_date
from monitor.exceptions import FetchError, ParseError
from monitor.types import Collected, RawItem

if TYPE_CHECKING:  # httpx is loaded to poll, not to read the config
    from monitor.collectors.fetch import Response, Session

__all__ = ["DEFAULT_RATE_WAIT", "Pages", "rate_limit_until"]

T = TypeVar("T")
DEFAULT_RATE_WAIT = timedelta(minutes=1)  # "0 requests left" without saying until when
_EPOCH_FROM = 1_000_000_000  # a reset header above this is an epoch time, below it seconds from now


def rate_limit_until(headers: Mapping[str, str], now: datetime) -> datetime | None:
    """When a server that says no requests are left (``X-RateLimit-Remaining`` below 1) takes them again:
    ``X-RateLimit-Reset`` as seconds (Reddit), an epoch time (GitHub style) or a date (Mastodon).
    None while requests are left or the server says nothing. `headers` has lower-case names."""
    remaining = number_text(headers.get("x-ratelimit-remaining"))
    if remaining is None or remaining >= 1:
        return None
    raw = (headers.get("x-ratelimit-reset") or "").strip()
    seconds = number_text(raw)
    if seconds is not None and seconds > _EPOCH_FROM:
        reset = epoch_time(seconds)  # None past the calendar: the default wait
    elif seconds is not None:
        reset = now + timedelta(seconds=seconds) if seconds > 0 else None
    else:
        reset = parse_date(raw) if raw else None
    return reset if reset is not None and reset > now else now + DEFAULT_RATE_WAIT


@dataclass
class Pages:
    """What one poll has read over its pages so far, its warnings, and whether it must stop asking."""

    session: Session
    now: datetime
    items: list[RawItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    retry_at: datetime | None = None  # the server asked for no request before this time
    health: str | None = None
    stopped: bool = False  # rate-limited, or the site is in trouble: no more requests in this poll
    requests: int = 0
    _first: Response | None = None

    async def first(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Response:
        """The poll's first request: its FetchError goes up (nothing was read, the poll fails)."""
        self.requests += 1
        resp = await self.session.get(url, etag=etag, last_modified=last_modified, headers=headers)
        self._first = resp
        self._check_rate_limit(resp)
        return resp

    async def get(self, url: str, *, what: str = "page", headers: Mapping[str, str] | None = None) -> Response | None:
        """A later request: a failure is a warning and None; None without a request once the poll stopped."""
        if self.stopped:
            return None
        self.requests += 1
        try:
            resp = await self.session.get(url, headers=headers)
        except FetchError as exc:
            self.failed(what, url, exc)
            return None
        self._check_rate_limit(resp)
        return resp

    async def parse(self, resp: Response, fn: Callable[..., T], /, *, what: str = "page", **kwargs: Any) -> T | None:
        """`fn(resp.body, **kwargs)` through the session (a worker process). A ParseError on the first
        response goes up; on a later one it is a warning and None."""
        try:
            return await self.session.parse(fn, resp.body, **kwargs)
        except ParseError as exc:
            if resp is self._first:
                raise
            self.warnings.append(f"could not read {what} {resp.url}: {exc}")
            return None

    def _check_rate_limit(self, resp: Response) -> None:
        until = rate_limit_until(resp.headers, self.now)
        if until is not None:
            self.wait_until(until)

    def failed(self, what: str, url: str, exc: FetchError) -> None:
        """A later request failed: a warning; a wait the server asked for, or trouble on the site, stops the poll."""
        self.warnings.append(f"could not read {what} {url}: {exc}")
        if exc.retry_after is not None:
            self.retry_at = max(self.retry_at or self.now, self.now + timedelta(seconds=exc.retry_after))
        if exc.site_trouble:
            self.stopped = True

    def wait_until(self, until: datetime) -> None:
        """The server's rate limit is used up: no request before `until`, and none more in this poll."""
        self.retry_at = max(self.retry_at or until, until)
        self.health = f"rate-limited until {self.retry_at:%Y-%m-%d %H:%M:%SZ}"
        self.stopped = True

    def capped(self, message: str) -> None:
        """The poll stopped at its page cap: say so (what is left, and when it will be read)."""
        self.warnings.append(message)

    def collected(self, **fields: Any) -> Collected:
        """The poll's `Collected`: its items, warnings, health and retry_at, plus the collector's own fields."""
        fields.setdefault("health", self.health)
        return Collected(items=tuple(self.items), warnings=tuple(self.warnings), retry_at=self.retry_at, **fields)
