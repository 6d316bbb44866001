"""Values passed between the stages of `monitor`: frozen msgspec structs, UTC datetimes.

Nothing here does I/O. Change a value with `msgspec.structs.replace`, never by mutation. Structs, not dataclasses:
a frozen dataclass takes 0.6-1.1 ms to define (its methods are generated and compiled at import), a struct 15 us,
and a poll process defined 61 dataclasses before its first request (bench/record_cost.py). The values the parse
worker handles are dataclasses in `monitor.worktypes`, re-exported here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

import msgspec

from monitor.worktypes import Match, MatchedPost, Post, RawItem, TopicSpec

__all__ = ["Match", "MatchedPost", "Post", "RawItem", "TopicSpec"]  # re-exported: defined where the worker reads them


class FetchStatus(StrEnum):
    """Outcome of one fetch, as written to `fetches.status`."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    ERROR = "error"
    SKIPPED = "skipped"  # backoff or Retry-After still running, or robots.txt disallows


class FetchRecord(msgspec.Struct, frozen=True):
    """One HTTP request made for a source, one row of the `fetches` table."""

    source: str
    url: str
    started_at: datetime
    status: FetchStatus
    http_status: int | None = None
    bytes: int = 0
    duration_ms: int = 0
    items: int = 0
    new_posts: int = 0
    error: str | None = None
    warning: str | None = None  # what was kept despite a fault (items cut at a cap, a feed read leniently, ...)


class SourceState(msgspec.Struct, frozen=True):
    """What the store remembers about a source between polls (the `sources` row)."""

    name: str
    etag: str | None = None
    last_modified: str | None = None
    last_ok_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    failures: int = 0  # consecutive failed polls
    next_poll_at: datetime | None = None  # backoff after failures: the daemon waits until then
    retry_at: datetime | None = None  # the server's Retry-After: no request at all before this time
    cursor: str | None = None  # collector paging state (since_id, last message id, ...)
    last_post_at: datetime | None = None  # newest published_at seen from this source
    health: str | None = None  # collector-specific health note (e.g. "selector .body matched nothing")
    warnings: tuple[str, ...] = ()  # the last successful poll's warnings (shown by `monitor status`)


class RobotsRecord(msgspec.Struct, frozen=True):
    """An origin's robots.txt as last read, kept in the store (`robots`) so that the next poll process, within
    the fetcher's ROBOTS_TTL, reads it from there instead of asking the site again."""

    origin: str  # scheme://host[:port], lower case
    body: bytes | None  # the file (at most ROBOTS_MAX_BYTES); None: the site has none (4xx), everything allowed
    fetched_at: datetime  # aware UTC


class Collected(msgspec.Struct, frozen=True):
    """What one collector run produced for one source."""

    items: tuple[RawItem, ...]
    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = None
    not_modified: bool = False  # every request answered 304: nothing new, cheaply
    unchanged: int = 0  # items not parsed, already stored byte for byte (distinct posts): duplicates
    warnings: tuple[str, ...] = ()  # e.g. a selector that matched nothing
    health: str | None = None  # collector-specific health note kept in `sources.health`
    retry_at: datetime | None = None  # the server's rate-limit headers ask for no request before this time


class RunResult(msgspec.Struct, frozen=True):
    """The outcome of polling one source once; a failure is a value here, never a crash."""

    source: str
    ok: bool
    items: int = 0  # items the collector read
    new_posts: int = 0  # posts stored for the first time
    updated_posts: int = 0  # posts whose content changed since last seen
    matches: int = 0  # (post, topic) pairs stored for new or changed posts
    not_modified: bool = False
    skipped: bool = False  # not fetched: backoff, Retry-After or robots.txt
    error: str | None = None
    warnings: tuple[str, ...] = ()
    duration_ms: int = 0
    topics: tuple[str, ...] = msgspec.field(default_factory=tuple)  # topics with new matches


class CountSeries(msgspec.Struct, frozen=True):
    """A topic's matching posts counted in equal buckets that end at `end`, oldest first: the detector's input.

    Bucket i (0-based) covers (end - (n - i) * step, end - (n - i - 1) * step], so the last one ends at `end`.
    """

    end: datetime  # aware UTC
    step: timedelta
    counts: tuple[int, ...]


class Spike(msgspec.Struct, frozen=True):
    """A topic whose count in the current window is improbably high against its baseline."""

    topic: str
    window_start: datetime  # aware UTC
    window_end: datetime  # aware UTC; the evaluation time
    count: int  # matching posts in the window
    expected: float  # the baseline's typical count for one window
    score: float  # how improbable: higher is more surprising (see spikes.py)


class EmailBody(msgspec.Struct, frozen=True):
    """One email's content: a plain-text part, an HTML part and inline PNG images referenced by cid."""

    subject: str
    text: str
    html: str
    images: tuple[tuple[str, bytes], ...] = ()  # (content-id without <>, PNG bytes)


class AlertKind(StrEnum):
    """What an alert is about, as written to `alerts.kind`."""

    SPIKE = "spike"  # a topic's window count is improbably high
    HEALTH = "health"  # a source broke, or works again (`source` set)
    DIGEST = "digest"  # the daily summary
    CAMPAIGN = "campaign"  # a near-duplicate cluster spread by many voices (`cluster_id` set)


class AlertStatus(StrEnum):
    """Where a delivery stands (`deliveries.status`), and the alert's summary over its deliveries (`alerts.status`)."""

    PENDING = "pending"  # not sent yet (due now, or retried at `next_attempt_at`)
    SENT = "sent"  # the server accepted it
    FAILED = "failed"  # given up: stale, cannot be composed, or `max_attempts` failed tries


class HealthState(StrEnum):
    """What a health alert says about its source."""

    BROKEN = "broken"
    RECOVERED = "recovered"


class HealthDetails(msgspec.Struct, frozen=True):
    """`alerts.details` of a health alert."""

    state: HealthState
    source_type: str
    failures: int  # broken: failed polls in a row so far; recovered: failed polls in a row before it worked again
    error: str | None = None  # broken: the last error (or the collector's health note)
    since: datetime | None = None  # the first failure of that run of failures


class DigestDetails(msgspec.Struct, frozen=True):
    """`alerts.details` of a digest alert."""

    day: str  # the local date (ISO) the digest covers up to


class CampaignDetails(msgspec.Struct, frozen=True):
    """`alerts.details` of a campaign alert: the posts that made it one."""

    first_post: int  # posts.id of the cluster's first post (by published time)
    crossing_post: int  # posts.id of the post by which `voices` distinct voices were reached
    voices: int  # distinct (source, author) voices at that moment
    posts: tuple[int, ...] = ()  # posts.id of each voice's first post, in order, up to the crossing post


AlertDetails = HealthDetails | DigestDetails | CampaignDetails | None


class NewAlert(msgspec.Struct, frozen=True):
    """An alert to add to the outbox (what the pure decisions in `alerts.py` return)."""

    kind: AlertKind
    topic: str | None = None
    source: str | None = None
    cluster_id: int | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    count: int | None = None
    expected: float | None = None
    score: float | None = None
    details: AlertDetails = None


class AlertRow(msgspec.Struct, frozen=True):
    """One row of the `alerts` table (the outbox). Status, attempts, sent_at, error, next_attempt_at and
    message_id summarise the alert's deliveries (one per channel)."""

    id: int
    kind: AlertKind
    topic: str | None
    source: str | None
    window_start: datetime | None
    window_end: datetime | None
    count: int | None
    expected: float | None
    score: float | None
    created_at: datetime
    status: AlertStatus
    attempts: int
    sent_at: datetime | None
    error: str | None
    next_attempt_at: datetime | None
    message_id: str | None
    details: AlertDetails
    cluster_id: int | None = None


class DeliveryRow(msgspec.Struct, frozen=True):
    """One row of the `deliveries` table: one alert on one channel (`email`, or a notify channel's name)."""

    id: int
    alert_id: int
    channel: str
    status: AlertStatus
    attempts: int  # sends tried
    next_attempt_at: datetime | None  # a failed try is retried from then
    sent_at: datetime | None
    error: str | None  # the last try's error (or a note, such as recipients the server refused)
    message_id: str | None  # assigned when first claimed; every resend uses it
    claimed_by: str | None  # the owner (host:pid:start) sending it now, if any
    claim_until: datetime | None  # the owner's lease


class DeliveryUpdate(msgspec.Struct, frozen=True):
    """What one delivery step writes (decided by `monitor.delivery`)."""

    status: AlertStatus
    attempts: int
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None
    error: str | None = None


class Holder(msgspec.Struct, frozen=True):
    """A process that holds something in the store (the daemon lock, a delivery claim): who, where, since when."""

    host: str
    pid: int
    started: int  # the process's start time (clock ticks since boot on Linux; 0 when unknown): pids are reused

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.started}"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        host, _, rest = text.rpartition(":")
        host, _, pid = host.rpartition(":")
        if not host or not pid.isdigit() or not rest.isdigit():
            return None
        return cls(host=host, pid=int(pid), started=int(rest))


class WindowPost(msgspec.Struct, frozen=True):
    """A topic's matching post in an alert's window, with the term that matched (what the email lists)."""

    id: int
    source: str
    url: str | None
    title: str
    text: str
    published_at: datetime
    cluster_id: int | None
    term: str


class StuckDelivery(msgspec.Struct, frozen=True):
    """A delivery still pending (first try or retrying) and the age of its alert (what `monitor health` reports)."""

    alert_id: int
    channel: str
    kind: str
    created_at: datetime  # the alert's
    attempts: int
    error: str | None


class StoreURL(msgspec.Struct, frozen=True):
    """A store on a PostgreSQL server (`store: postgresql://user@host/db` in the config). Never holds a password:
    that comes from MONITOR_STORE_PASSWORD or libpq's environment."""

    url: str  # postgresql://..., as configured

    def __str__(self) -> str:
        return self.url


class ClusterPost(msgspec.Struct, frozen=True):
    """One post of a near-duplicate cluster, as the campaign rule and the campaign message read it."""

    id: int  # posts.id
    cluster_id: int
    source: str
    author: str | None
    published_at: datetime  # aware UTC
    first_seen_at: datetime  # aware UTC: when a poll first stored it
    url: str | None
    title: str
    text: str
    content_hash: str  # equal hashes: the same wording (after normalisation)
    topics: tuple[str, ...] = ()  # the topics it matches, sorted
