"""One poll of one source: collect -> normalise -> match -> sign -> store, returning a `RunResult`.

A failing source is a value in the result (its error, its backoff), never an exception out of here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import msgspec

from monitor.collectors import SOURCE_TYPES
from monitor.collectors.fetch import ROBOTS_TTL, Fetcher, HostGate, RequestLimits, Session, backoff_delay
from monitor.config import Config, SourceConfig
from monitor.exceptions import FetchError, MonitorError, ParseError, RobotsDisallowed, StoreError
from monitor.match import Matcher
from monitor.prepare import Known, prepare, unique_items
from monitor.store import Store
from monitor.types import Collected, FetchRecord, FetchStatus, MatchedPost, RawItem, RunResult, SourceState
from monitor.workers import Workers

log = logging.getLogger("monitor.pipeline")

MAX_CONCURRENT_SOURCES = 16  # sources polled at once by one pass (memory: each holds its response and items)


def open_fetcher(
    config: Config, workers: Workers, *, clock: Callable[[], datetime], host_gate: HostGate | None = None
) -> Fetcher:
    """The one place a Fetcher is composed (daemon, `monitor poll`, `check --probe`, `monitor worker`): the config's
    per-host limit and user agent, the workers that parse off the event loop, bounded in time, and for `monitor
    worker` the cluster-wide hold on a host's slot."""
    return Fetcher(
        per_host=config.defaults.per_host,
        user_agent=config.defaults.user_agent,
        clock=clock,
        offload=workers.parse,
        host_gate=host_gate,
    )


class Unrecorded(msgspec.Struct, frozen=True):
    """A failed poll the store could not take either (a full disk): written before that source's next poll."""

    state: SourceState
    source_type: str
    source_url: str | None
    fetches: tuple[FetchRecord, ...]
    now: datetime


# (store, source) -> its last failure not yet written. Per process, one per source (the latest), so it is bounded.
_unrecorded: dict[tuple[str, str], Unrecorded] = {}


def limits_of(source: SourceConfig) -> RequestLimits:
    return RequestLimits(
        timeout=source.timeout,
        max_bytes=source.max_bytes,
        user_agent=source.user_agent,
        robots=source.robots,
        allow_private=source.allow_private,
    )


async def run_source(
    source: SourceConfig,
    *,
    fetcher: Fetcher,
    store: Store,
    matcher: Matcher,
    now: datetime,
    respect_backoff: bool = True,
    workers: Workers | None = None,
) -> RunResult:
    """Poll `source` once and store what is new. `respect_backoff=False` (monitor poll) ignores our own
    failure backoff, never the server's Retry-After. With `workers`, large batches are prepared in a
    worker process (their matcher is built from the same topics)."""
    started = time.monotonic()
    _record_unrecorded(store, source.name)
    state = store.source_state(source.name)
    session = fetcher.session(
        source.name, limits_of(source), known_raw=lambda limit: store.known_raw(source.name, limit)
    )
    waiting = _waiting_until(state, now, respect_backoff)
    if waiting is not None:
        return RunResult(source.name, ok=True, skipped=True, error=f"waiting until {waiting:%Y-%m-%d %H:%M:%SZ}")
    kind = SOURCE_TYPES.get(source.type)
    if kind is None:
        return RunResult(source.name, ok=False, error=f"no collector for source type {source.type!r} in this version")
    try:
        collected = await kind.collect(source, session, state, now)
        items, keys = unique_items(collected.items)
        known = _known(store, source.name, keys)
        matched = (
            await workers.prepare(items, source.name, known, now, keys)
            if workers is not None
            else prepare(items, source.name, known, now, matcher, keys)
        )
        saved = store.save_poll(
            state=_succeeded(state, collected, now),
            source_type=source.type,
            source_url=source.url,
            posts=matched,
            fetches=_with_warnings(session.records, collected.warnings),
            now=now,
        )
    except RobotsDisallowed as exc:
        return _skip(source, store, state, session, exc, now, started)
    except (FetchError, ParseError) as exc:
        return _fail(source, store, state, session, exc, now, started)
    except StoreError as exc:  # the poll went fine, the store could not take it (a full disk): a failure of the poll
        log.error("store_failed source=%s error=%s", source.name, exc)
        return _fail(source, store, state, session, exc, now, started, prefix="store: ")
    except Exception as exc:  # a bug in a collector must not stop the other sources
        log.exception("collector_crashed source=%s", source.name)
        return _fail(source, store, state, session, exc, now, started, prefix="internal error: ")
    result = RunResult(
        source.name,
        ok=True,
        items=len(items) + collected.unchanged,  # an item skipped unparsed is a duplicate, counted as ever
        new_posts=saved.new_posts,
        updated_posts=saved.updated_posts,
        matches=saved.matches,
        not_modified=collected.not_modified,
        warnings=collected.warnings,
        duration_ms=_ms(started),
        topics=saved.topics,
    )
    log.info(
        "collected source=%s items=%d new=%d updated=%d matches=%d%s ms=%d",
        source.name,
        result.items,
        result.new_posts,
        result.updated_posts,
        result.matches,
        " not_modified=1" if result.not_modified else "",
        result.duration_ms,
    )
    for warning in collected.warnings:
        log.warning("source_warning source=%s warning=%r", source.name, warning)
    return result


def _waiting_until(state: SourceState, now: datetime, respect_backoff: bool) -> datetime | None:
    if state.retry_at is not None and now < state.retry_at:
        return state.retry_at
    if respect_backoff and state.next_poll_at is not None and now < state.next_poll_at:
        return state.next_poll_at
    return None


def prepare_posts(
    items: Sequence[RawItem], source: str, *, store: Store, matcher: Matcher, now: datetime
) -> list[MatchedPost]:
    """Normalise, then match and sign only the posts that are new or changed since the last poll (inline)."""
    unique, keys = unique_items(items)
    return prepare(unique, source, _known(store, source, keys), now, matcher, keys)


def _known(store: Store, source: str, keys: Sequence[str]) -> Known:
    return {key: (seen.first_seen_at, seen.content_hash) for key, seen in store.known_posts(source, keys).items()}


def _succeeded(state: SourceState, collected: Collected, now: datetime) -> SourceState:
    return msgspec.structs.replace(
        state,
        etag=collected.etag,
        last_modified=collected.last_modified,
        last_ok_at=now,
        failures=0,
        next_poll_at=None,
        retry_at=collected.retry_at,
        last_error=None,
        cursor=collected.cursor if collected.cursor is not None else state.cursor,
        health=collected.health,
        warnings=collected.warnings,
    )


def _with_warnings(records: Sequence[FetchRecord], warnings: Sequence[str]) -> list[FetchRecord]:
    """The poll's warnings go on its last fetch row, the one whose answer they are about."""
    rows = list(records)
    if rows and warnings:
        rows[-1] = msgspec.structs.replace(rows[-1], warning="; ".join(warnings))
    return rows


def _skip(
    source: SourceConfig,
    store: Store,
    state: SourceState,
    session: Session,
    exc: RobotsDisallowed,
    now: datetime,
    started: float,
) -> RunResult:
    """robots.txt refuses the source's address: a skip, not a failure. No failure is counted, no backoff
    starts, so no health alert follows; `last_error` says why (shown by `monitor status`) until a poll
    succeeds again."""
    skipped = msgspec.structs.replace(state, last_error=f"skipped by robots.txt: {exc}", last_error_at=now)
    try:
        store.record_failure(
            state=skipped, source_type=source.type, source_url=source.url, fetches=session.records, now=now
        )
    except MonitorError as store_exc:
        log.error("store_failed source=%s error=%s", source.name, store_exc)
    log.warning("source_skipped source=%s reason=%r", source.name, str(exc))
    return RunResult(source.name, ok=True, skipped=True, error=str(exc), duration_ms=_ms(started))


def _fail(
    source: SourceConfig,
    store: Store,
    state: SourceState,
    session: Session,
    exc: Exception,
    now: datetime,
    started: float,
    prefix: str = "",
) -> RunResult:
    message = f"{prefix}{exc}" if str(exc) else f"{prefix}{type(exc).__name__}"
    failures = state.failures + 1
    retry_after = exc.retry_after if isinstance(exc, FetchError) else None
    failed = msgspec.structs.replace(
        state,
        failures=failures,
        last_error=message,
        last_error_at=now,
        next_poll_at=now + backoff_delay(failures, source.interval),
        retry_at=now + timedelta(seconds=retry_after) if retry_after else None,
    )
    records = _mark_last_failed(session.records, message, source, now)
    try:
        store.record_failure(state=failed, source_type=source.type, source_url=source.url, fetches=records, now=now)
    except MonitorError as store_exc:  # kept, and written before the source's next poll (once space returns)
        log.error("store_failed source=%s error=%s: the failure is written at its next poll", source.name, store_exc)
        _unrecorded[(store.location, source.name)] = Unrecorded(failed, source.type, source.url, tuple(records), now)
    log.warning("source_failed source=%s failures=%d error=%r", source.name, failures, message)
    return RunResult(source.name, ok=False, error=message, duration_ms=_ms(started))


def _record_unrecorded(store: Store, name: str) -> None:
    """Write the source's failure that the store could not take last time, if any (and if it can now)."""
    pending = _unrecorded.get((store.location, name))
    if pending is None:
        return
    try:
        store.record_failure(
            state=pending.state,
            source_type=pending.source_type,
            source_url=pending.source_url,
            fetches=pending.fetches,
            now=pending.now,
        )
    except MonitorError as exc:
        log.warning("store_failed source=%s error=%s: the earlier failure is still unwritten", name, exc)
        return
    del _unrecorded[(store.location, name)]
    log.info("failure_recorded source=%s at=%s (the store takes writes again)", name, pending.now.isoformat())


def _mark_last_failed(
    records: Sequence[FetchRecord], message: str, source: SourceConfig, now: datetime
) -> list[FetchRecord]:
    """A parse error happens after a fetch that went fine: the fetch log must still say the poll failed."""
    rows = list(records)
    if not rows:
        return [FetchRecord(source.name, source.url or "", now, FetchStatus.ERROR, error=message)]
    if rows[-1].status is not FetchStatus.ERROR and rows[-1].error is None:
        rows[-1] = msgspec.structs.replace(rows[-1], status=FetchStatus.ERROR, error=message)
    return rows


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


async def poll_sources(
    sources: Sequence[SourceConfig],
    *,
    fetcher: Fetcher,
    store: Store,
    matcher: Matcher,
    clock: Callable[[], datetime],
    respect_backoff: bool = True,
    workers: Workers | None = None,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Poll several sources concurrently (the fetcher keeps each host to its limit), at most
    `MAX_CONCURRENT_SOURCES` at once so that memory stays bounded however many sources there are."""
    slots = asyncio.Semaphore(MAX_CONCURRENT_SOURCES)
    recall_robots(fetcher, store, clock())

    async def one(source: SourceConfig) -> RunResult:
        async with slots:
            result = await run_source(
                source,
                fetcher=fetcher,
                store=store,
                matcher=matcher,
                now=clock(),
                respect_backoff=respect_backoff,
                workers=workers,
            )
        if on_result is not None:
            on_result(result)
        return result

    try:
        return list(await asyncio.gather(*(one(s) for s in sources)))
    finally:
        keep_robots(fetcher, store)


def recall_robots(fetcher: Fetcher, store: Store, now: datetime) -> None:
    """The robots.txt files an earlier poll read, so that this one does not ask each host again (a cache: a store
    that cannot give them costs a request per host, no more)."""
    try:
        fetcher.remember_robots(store.robots_since(now - ROBOTS_TTL))
    except StoreError as exc:
        log.warning("robots_cache_unread error=%s", exc)


def keep_robots(fetcher: Fetcher, store: Store) -> None:
    """What the fetcher read of robots.txt since the last call, into the store for the next process."""
    try:
        store.save_robots(fetcher.robots_read())
    except StoreError as exc:
        log.warning("robots_cache_unsaved error=%s", exc)
