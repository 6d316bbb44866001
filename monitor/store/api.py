"""The store's interface: the `Store` Protocol the rest of `monitor` depends on, and the values that cross it.

`Store` is composed of one small Protocol per domain (sources and the fetch log, posts, queries, the
outbox, the daemon lock), the way reader splits its storage into mixins. The SQLite backend
(`monitor.store.sqlite`) implements it; a second backend implements the same Protocol and no caller
changes. Values are frozen; times are aware UTC datetimes, except in the analyst-facing rows (`PostRow`,
`SearchRow`, `StatsRow`), which carry the stored ISO 8601 text as the contract shows it.

Every failure leaves as `StoreError` or one of its subclasses (monitor.exceptions).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import msgspec

from monitor.exceptions import StoreCorrupt
from monitor.types import (
    AlertKind,
    AlertRow,
    AlertStatus,
    ClusterPost,
    CountSeries,
    DeliveryRow,
    DeliveryUpdate,
    FetchRecord,
    Holder,
    Match,
    MatchedPost,
    NewAlert,
    RobotsRecord,
    SourceState,
    StuckDelivery,
    WindowPost,
)

# `search(order="rank")` ranks only the RANK_POOL most recently stored posts matching the query (the cost of
# ranking grows with the matches: a common word matches half the store); older matches are not returned.
RANK_POOL = 10_000
EXPORT_CHUNK = 256  # rows fetched at a time by `iter_posts`: memory stays flat on any store size
HIGHLIGHT_START = "\x02"  # marks the match in `SearchRow.snippet`: control characters no scraped text keeps
HIGHLIGHT_END = "\x03"
BACKUP_ADVICE = "restore it from your backup (README, Operations: Backups), or move it aside to start a new store"


# ------------------------------------------------------------------------------------------ values
class PostFilter(msgspec.Struct, frozen=True):
    """Which posts a query reads. Built once by the command line, taken by search, stats, export and counts."""

    topics: tuple[str, ...] = ()  # only posts matching one of these topics (their rows still list all topics)
    sources: tuple[str, ...] = ()  # only posts from these sources
    since: datetime | None = None  # published at or after
    until: datetime | None = None  # published at or before
    matching_only: bool = False  # only posts that match some topic (`iter_posts`; stats always counts matches)


ANY_POST = PostFilter()  # no restriction


class KnownPost(msgspec.Struct, frozen=True):
    """What a poll needs to know about a post already stored."""

    id: int
    first_seen_at: datetime
    content_hash: str


class SaveResult(msgspec.Struct, frozen=True):
    """What one `save_poll` wrote."""

    new_posts: int
    updated_posts: int
    matches: int  # (post, topic) pairs written for new or changed posts
    topics: tuple[str, ...]  # topics with new or changed matching posts


class SearchRow(msgspec.Struct, frozen=True):
    """One search result."""

    id: int  # posts.id
    source: str
    url: str | None
    title: str
    published_at: str  # stored ISO 8601 UTC text
    topics: tuple[str, ...]
    snippet: str  # the match between HIGHLIGHT_START and HIGHLIGHT_END
    cluster_id: int | None


class StatsRow(msgspec.Struct, frozen=True):
    """Matching posts of one topic in one bucket."""

    topic: str
    bucket: str  # the bucket's start as ISO text: `2026-03-01T12:00:00Z` (hour) or `2026-03-01` (day, week)
    posts: int
    stories: int  # distinct near-duplicate clusters among them


class PostRow(NamedTuple):
    """One post as `monitor export` writes it (a NamedTuple, not a dataclass: a million of them are built per export,
    and a tuple is the cheapest immutable row). Times are the stored ISO 8601 UTC text."""

    id: int
    source: str
    key: str
    url: str | None
    title: str
    text: str
    author: str | None
    published_at: str
    first_seen_at: str
    updated_at: str | None
    cluster_id: int | None
    parent_id: int | None
    topics: tuple[str, ...]  # the post's topics, sorted
    terms: tuple[str, ...]  # terms[i] is the configured term that matched topics[i]
    extra: str | None  # collector facts as JSON text


class SourceRow(msgspec.Struct, frozen=True):
    """A source as `monitor status` shows it: its state, and what counting the store adds."""

    state: SourceState
    type: str
    url: str | None
    posts: int  # posts stored from it
    last_fetch_at: datetime | None  # the last request made for it


class FailureRun(msgspec.Struct, frozen=True):
    """A source's current or last run of consecutive failed polls (what the recovery email reports)."""

    failures: int  # failed polls in the run (the run that just ended, once the source works again)
    since: datetime | None  # the run's first failure


class StoreSummary(msgspec.Struct, frozen=True):
    """What the store holds, in a few numbers (the demo's summary)."""

    posts: int
    comments: dict[str, int]  # source -> stored posts that are comments (have a parent)
    oldest: datetime | None  # the earliest and latest published_at
    newest: datetime | None
    matches: dict[str, int]  # topic -> matching posts


class Claim(msgspec.Struct, frozen=True):
    """A delivery taken by one owner until `until`: only that owner may finish it."""

    delivery: DeliveryRow  # as claimed: `message_id` is set, and kept for every later attempt
    alert: AlertRow
    owner: Holder
    until: datetime


class DaemonRow(msgspec.Struct, frozen=True):
    """The daemon that last held the store (`daemon` table): who, since when, and its last heartbeat."""

    holder: str  # host:pid:start
    started_at: datetime
    heartbeat_at: datetime  # written by `monitor run` each minute


class RematchBatch(msgspec.Struct, frozen=True):
    """What one `rematch_batch` did."""

    last_id: int  # the highest post id read: the next batch starts after it
    posts: int  # posts read (0: no more)
    added: dict[str, int]  # topic -> matches added
    removed: dict[str, int]  # topic -> matches removed


# ------------------------------------------------------------------------------------------ the Protocol
class SourceLog(Protocol):
    """Sources' state between polls and the fetch log."""

    def source_state(self, name: str) -> SourceState: ...
    def source_states(self) -> list[SourceState]: ...
    def source_types(self) -> dict[str, str]: ...
    def source_rows(self) -> list[SourceRow]: ...
    def failure_runs(self) -> dict[str, FailureRun]: ...
    def record_failure(
        self,
        *,
        state: SourceState,
        source_type: str,
        source_url: str | None,
        fetches: Sequence[FetchRecord],
        now: datetime,
    ) -> None: ...
    def prune_fetches(self, before: datetime, limit: int) -> int:
        """Delete the oldest fetch-log rows started before `before`, at most `limit` of them (one short
        transaction); returns how many. The caller repeats it until fewer than `limit` go."""
        ...

    def robots_since(self, since: datetime) -> list[RobotsRecord]:
        """The origins' robots.txt read at or after `since` (the cache a poll starts from)."""
        ...

    def save_robots(self, records: Sequence[RobotsRecord]) -> None:
        """Keep these, each replacing its origin's row if it was read later than that one."""
        ...


class PostWriter(Protocol):
    """The write path of a poll."""

    def known_posts(self, source: str, keys: Iterable[str]) -> dict[str, KnownPost]: ...
    def known_raw(self, source: str, limit: int) -> dict[bytes, str]:
        """raw digest -> key of the newest `limit` posts of `source` (by published time) that have a digest:
        the feed items a poll need not parse again (feedparse). One statement."""
        ...

    def save_poll(
        self,
        *,
        state: SourceState,
        source_type: str,
        source_url: str | None,
        posts: Sequence[MatchedPost],
        fetches: Sequence[FetchRecord],
        now: datetime,
    ) -> SaveResult: ...


class PostQueries(Protocol):
    """What analysts and the detector read."""

    def search(
        self, query: str | None, where: PostFilter = ..., *, limit: int = 20, order: str = "newest"
    ) -> list[SearchRow]: ...
    def stats(self, where: PostFilter = ..., *, by: str = "hour") -> list[StatsRow]: ...
    def iter_posts(self, where: PostFilter = ..., *, chunk: int = EXPORT_CHUNK) -> Generator[PostRow, None, None]: ...
    def topic_counts(self, topic: str, end: datetime, step: timedelta, buckets: int) -> CountSeries: ...
    def topic_count(self, topic: str, start: datetime, end: datetime) -> tuple[int, int]: ...
    def topic_names(self) -> set[str]: ...
    def window_posts(self, topic: str, start: datetime, end: datetime, limit: int = 500) -> list[WindowPost]: ...
    def fresh_clusters(
        self, since: datetime, *, min_voices: int, topics_only: bool, limit: int = 20_000
    ) -> list[ClusterPost]: ...
    def cluster_posts(self, cluster_id: int, limit: int = 200) -> list[ClusterPost]: ...
    def counts(self) -> dict[str, int]: ...
    def post_count(self) -> int:
        """Posts in the store (one count; what the daemon's periodic figures need, not the fetch log's rows)."""
        ...

    def summary(self) -> StoreSummary: ...


class AlertLog(Protocol):
    """The outbox: alerts, and one delivery per alert and channel, claimed before it is sent."""

    def insert_alert(
        self, alert: NewAlert, *, created_at: datetime, channels: Sequence[str], unrouted: str | None = None
    ) -> AlertRow: ...
    def alert(self, alert_id: int) -> AlertRow: ...
    def alerts(
        self, *, status: AlertStatus | None = None, kind: AlertKind | None = None, limit: int = 1000
    ) -> list[AlertRow]: ...
    def last_alert(
        self, kind: AlertKind, *, topic: str | None = None, source: str | None = None
    ) -> AlertRow | None: ...
    def spike_alerts_between(self, topics: Sequence[str], start: datetime, end: datetime) -> list[AlertRow]: ...
    def campaign_clusters(self, cluster_ids: Sequence[int]) -> set[int]: ...
    def deliveries(self, alert_id: int) -> list[DeliveryRow]: ...
    def deliveries_of(self, alert_ids: Sequence[int]) -> dict[int, list[DeliveryRow]]: ...
    def undelivered(self) -> list[AlertRow]: ...
    def add_deliveries(self, plan: Mapping[int, Sequence[str]], *, unrouted: str) -> int: ...
    def note_undelivered(self, error: str) -> int: ...
    def note_unconfigured(self, channels: Sequence[str], note: str) -> int: ...
    def claim_delivery(
        self, *, channels: Sequence[str], owner: Holder, now: datetime, lease: timedelta, message_id: str
    ) -> Claim | None: ...
    def finish_delivery(self, claim: Claim, update: DeliveryUpdate) -> bool: ...


class DaemonLock(Protocol):
    """One daemon per store: a lock held for the daemon's lifetime (released by the OS if it dies)."""

    def lock_daemon(self, holder: Holder, now: datetime) -> None: ...
    def unlock_daemon(self) -> None: ...
    def daemon_holder(self) -> Holder | None: ...
    def heartbeat(self, now: datetime) -> None: ...


class Operations(Protocol):
    """What `monitor health`, `monitor rematch` and the daemon's metrics read and write."""

    def daemon_row(self) -> DaemonRow | None: ...
    def stuck_deliveries(self, created_before: datetime) -> list[StuckDelivery]: ...
    def match_counts(self) -> dict[str, int]: ...
    def topic_fingerprints(self) -> dict[str, str]: ...
    def record_topic_fingerprints(
        self, fingerprints: Mapping[str, str], now: datetime, *, forget: Sequence[str] = ...
    ) -> None: ...
    def rematch_batch(
        self,
        *,
        after_id: int,
        limit: int,
        topics: Sequence[str],
        since: datetime | None,
        match: Callable[[str, str], tuple[Match, ...]],
    ) -> RematchBatch: ...
    def drop_topic_matches(self, topics: Sequence[str]) -> dict[str, int]: ...


class Store(SourceLog, PostWriter, PostQueries, AlertLog, DaemonLock, Operations, Protocol):
    """The whole store. Not shared across threads: open one per thread or process."""

    @property
    def location(self) -> str:
        """Where the store is, for messages (a path, or a URL without its password)."""
        ...

    def check(self) -> list[str]:
        """A consistency check of the whole store (SQLite's quick_check): an empty list when it is sound."""
        ...

    def damage(self) -> StoreCorrupt | None:
        """The corruption this connection has run into, if any: callers that keep going past a failed write
        (a poll records a store error as a failed source) ask here whether to stop."""
        ...

    def close(self) -> None: ...
    def __enter__(self) -> Store: ...
    def __exit__(self, *exc: object) -> None: ...


# ------------------------------------------------------------------------------------------ scale-out
ScriptPlan = Callable[[set[str]], Sequence[tuple[str, str | None]]]  # names applied -> (name, script or None)


class HostSlots(Protocol):
    """The per-host limit across every process of a cluster: `hold(host)` is held while one request runs."""

    def hold(self, host: str) -> AbstractAsyncContextManager[None]: ...

    def close(self) -> None: ...


class SourceLocks(Protocol):
    """One poll of a source at a time across a cluster: `hold(source)` yields False when another process polls it."""

    def hold(self, source: str) -> AbstractAsyncContextManager[bool]: ...

    def close(self) -> None: ...


class ClusterStore(Store, Protocol):
    """What `monitor worker` and `monitor run --role scheduler` need beyond `Store` (the PostgreSQL backend)."""

    def apply_scripts(self, migration_set: str, plan: ScriptPlan) -> list[str]:
        """Another component's schema, applied once and recorded with the store's migrations; returns the names."""
        ...

    def host_slots(self, per_host: int) -> HostSlots: ...

    def source_locks(self) -> SourceLocks: ...

    def connection_options(self) -> dict[str, Any]:
        """What another component's connections to the store's database are opened with (password, timeouts)."""
        ...
