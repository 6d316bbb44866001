"""Values passed between the stages of `monitor`: frozen dataclasses, UTC datetimes.

Nothing here does I/O. Change a value with `dataclasses.replace`, never by mutation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


@dataclass(frozen=True)
class RawItem:
    """One post as a collector read it, before normalisation."""

    guid: str | None  # the item's own identifier (RSS guid, Atom id, status id), if it has one
    url: str | None  # absolute link to the item, as published
    title: str  # plain text, may be empty
    text: str  # plain text (HTML already turned into text), may be empty
    author: str | None = None
    published: datetime | None = None  # aware UTC; None when the source gives no usable date
    parent_ref: str | None = None  # comments: the guid (else url) of the article item they belong to
    extra: tuple[tuple[str, str], ...] = ()  # collector-specific facts (views, forwarded_from, ...)
    raw_digest: bytes | None = None  # feeds: digest of the item's raw bytes and context (feedparse), 16 bytes


@dataclass(frozen=True)
class Post:
    """A normalised post, ready to match and store; identity is (source, key)."""

    source: str  # the configured source name
    key: str  # guid when the item has one, else its canonical URL, else a content hash
    url: str | None  # canonical URL
    title: str
    text: str
    author: str | None
    published_at: datetime  # aware UTC; missing or future times become first_seen_at
    first_seen_at: datetime  # aware UTC; the time of the poll that first saw it
    content_hash: str  # hex digest of the normalised title + text: detects edits and exact copies
    parent_key: str | None = None  # comments: key of the article post in the same source
    extra: tuple[tuple[str, str], ...] = ()  # collector-specific facts (views, forwarded_from ...), stored as JSON
    raw_digest: bytes | None = None  # the item's raw digest (feeds): a later poll skips it unparsed while unchanged


@dataclass(frozen=True)
class Match:
    """One topic matched by one post, with the configured term that matched first."""

    topic: str
    term: str


@dataclass(frozen=True)
class MatchedPost:
    """A post with its topic matches and its near-duplicate signature, as the store receives it."""

    post: Post
    matches: tuple[Match, ...]
    signature: bytes  # MinHash signature from `dedupe.signature`; empty when the text is too short


class FetchStatus(StrEnum):
    """Outcome of one fetch, as written to `fetches.status`."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    ERROR = "error"
    SKIPPED = "skipped"  # backoff or Retry-After still running, or robots.txt disallows


@dataclass(frozen=True)
class FetchRecord:
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


@dataclass(frozen=True)
class SourceState:
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


@dataclass(frozen=True)
class Collected:
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


@dataclass(frozen=True)
class RunResult:
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
    topics: tuple[str, ...] = field(default_factory=tuple)  # topics with new matches


@dataclass(frozen=True)
class TopicSpec:
    """One configured topic: a post matches if any `any` term, every `all` term and no `none` term match."""

    name: str
    any: tuple[str, ...]
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    transliterate: bool = False  # Cyrillic terms also match their Latin renderings (Kazakh and Russian)


@dataclass(frozen=True)
class CountSeries:
    """A topic's matching posts counted in equal buckets that end at `end`, oldest first: the detector's input.

    Bucket i (0-based) covers (end - (n - i) * step, end - (n - i - 1) * step], so the last one ends at `end`.
    """

    end: datetime  # aware UTC
    step: timedelta
    counts: tuple[int, ...]


@dataclass(frozen=True)
class Spike:
    """A topic whose count in the current window is improbably high against its baseline."""

    topic: str
    window_start: datetime  # aware UTC
    window_end: datetime  # aware UTC; the evaluation time
    count: int  # matching posts in the window
    expected: float  # the baseline's typical count for one window
    score: float  # how improbable: higher is more surprising (see spikes.py)


@dataclass(frozen=True)
class EmailBody:
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


@dataclass(frozen=True)
class HealthDetails:
    """`alerts.details` of a health alert."""

    state: HealthState
    source_type: str
    failures: int  # broken: failed polls in a row so far; recovered: failed polls in a row before it worked again
    error: str | None = None  # broken: the last error (or the collector's health note)
    since: datetime | None = None  # the first failure of that run of failures


@dataclass(frozen=True)
class DigestDetails:
    """`alerts.details` of a digest alert."""

    day: str  # the local date (ISO) the digest covers up to


@dataclass(frozen=True)
class CampaignDetails:
    """`alerts.details` of a campaign alert: the posts that made it one."""

    first_post: int  # posts.id of the cluster's first post (by published time)
    crossing_post: int  # posts.id of the post by which `voices` distinct voices were reached
    voices: int  # distinct (source, author) voices at that moment
    posts: tuple[int, ...] = ()  # posts.id of each voice's first post, in order, up to the crossing post


AlertDetails = HealthDetails | DigestDetails | CampaignDetails | None


@dataclass(frozen=True)
class NewAlert:
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


@dataclass(frozen=True)
class AlertRow:
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


@dataclass(frozen=True)
class DeliveryRow:
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


@dataclass(frozen=True)
class DeliveryUpdate:
    """What one delivery step writes (decided by `monitor.delivery`)."""

    status: AlertStatus
    attempts: int
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class Holder:
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


@dataclass(frozen=True)
class WindowPost:
    """A topic's matching post in an alert's window, with the term that matched (what the email lists)."""

    id: int
    source: str
    url: str | None
    title: str
    text: str
    published_at: datetime
    cluster_id: int | None
    term: str


@dataclass(frozen=True)
class StuckDelivery:
    """A delivery still pending (first try or retrying) and the age of its alert (what `monitor health` reports)."""

    alert_id: int
    channel: str
    kind: str
    created_at: datetime  # the alert's
    attempts: int
    error: str | None


@dataclass(frozen=True)
class StoreURL:
    """A store on a PostgreSQL server (`store: postgresql://user@host/db` in the config). Never holds a password:
    that comes from MONITOR_STORE_PASSWORD or libpq's environment."""

    url: str  # postgresql://..., as configured

    def __str__(self) -> str:
        return self.url


@dataclass(frozen=True)
class ClusterPost:
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
