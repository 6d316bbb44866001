"""The SQLite store: opening (WAL, busy timeout, migrations), writing one source poll atomically, queries.

The store only writes what it is handed: posts arrive normalised and matched, clusters are found here
because they need the stored signatures. Every `sqlite3.Error` leaves as `StoreError`.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from monitor import dedupe
from monitor.exceptions import StoreError
from monitor.schema import MIGRATION_SET, STEPS, migrations
from monitor.types import AlertRow, FetchRecord, MatchedPost, Post, SourceState
from monitor.units import from_iso, iso

BUSY_TIMEOUT_S = 30.0
CACHE_KIB = 8_000  # SQLite page cache per connection
# Candidates read per new post from the band index: enough for any real story, bounded for boilerplate.
MAX_CLUSTER_CANDIDATES = 64


@dataclass(frozen=True)
class KnownPost:
    """What a poll needs to know about a post already stored."""

    id: int
    first_seen_at: datetime
    content_hash: str


@dataclass(frozen=True)
class SaveResult:
    new_posts: int
    updated_posts: int
    matches: int  # (post, topic) pairs written for new or changed posts
    topics: tuple[str, ...]  # topics with new or changed matching posts


@dataclass(frozen=True)
class SearchRow:
    id: int
    source: str
    url: str | None
    title: str
    published_at: str
    topics: tuple[str, ...]
    snippet: str  # the match between HIGHLIGHT_START and HIGHLIGHT_END
    cluster_id: int | None


@dataclass(frozen=True)
class StatsRow:
    topic: str
    bucket: str
    posts: int
    stories: int


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


EXPORT_CHUNK = 256  # rows fetched from SQLite at a time by `iter_posts`: memory stays flat on any store size


HIGHLIGHT_START = "\x02"  # control characters no scraped text keeps (clean_text drops them)
HIGHLIGHT_END = "\x03"
# FTS5 marks each token of a phrase apart; "Халық" "кеңесі" reads better as one highlight.
_ADJACENT_HIGHLIGHTS = re.compile(f"{HIGHLIGHT_END}(\\s+){HIGHLIGHT_START}")


def _ts(when: datetime | None) -> str | None:
    return iso(when.replace(microsecond=0)) if when is not None else None


def _where_in(where: list[str], params: list[Any], clause: str, values: Sequence[str]) -> None:
    """Add `clause` (with `{}` for the placeholders) when `values` restricts the query."""
    if values:
        where.append(clause.format(",".join("?" * len(values))))
        params.extend(values)


def _where_published(where: list[str], params: list[Any], since: datetime | None, until: datetime | None) -> None:
    if since:
        where.append("p.published_at >= ?")
        params.append(_ts(since))
    if until:
        where.append("p.published_at <= ?")
        params.append(_ts(until))


def _extra(post: Post) -> str | None:
    return json.dumps(dict(post.extra), ensure_ascii=False, sort_keys=True) if post.extra else None


def _dt(text: str | None) -> datetime | None:
    return from_iso(text) if text else None


class Store:
    """One connection to the store. Not shared across threads; open one per thread or process."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: the write lock is taken up front, so a poll is all or nothing."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot start a write: {exc}") from exc
        try:
            yield self.conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise StoreError(f"{self.path}: commit failed: {exc}") from exc

    # ------------------------------------------------------------------ sources
    def source_state(self, name: str) -> SourceState:
        row = self._one("SELECT * FROM sources WHERE name = ?", (name,))
        if row is None:
            return SourceState(name=name)
        return SourceState(
            name=name,
            etag=row["etag"],
            last_modified=row["last_modified"],
            last_ok_at=_dt(row["last_ok_at"]),
            last_error=row["last_error"],
            last_error_at=_dt(row["last_error_at"]),
            failures=row["failures"] or 0,
            next_poll_at=_dt(row["next_poll_at"]),
            retry_at=_dt(row["retry_at"]),
            cursor=row["cursor"],
            last_post_at=_dt(row["last_post_at"]),
            health=row["health"],
            warnings=tuple(json.loads(row["warnings"])) if row["warnings"] else (),
        )

    def source_states(self) -> list[SourceState]:
        """Every source's state, without counting anything: cheap enough for the daemon's every-minute checks."""
        return [self.source_state(row["name"]) for row in self._all("SELECT name FROM sources ORDER BY name")]

    def source_types(self) -> dict[str, str]:
        return {row["name"]: row["type"] or "" for row in self._all("SELECT name, type FROM sources")}

    def prune_fetches(self, before: datetime) -> int:
        """Delete fetch-log rows started before `before`; returns how many (the log would grow without end)."""
        try:
            with self.transaction() as conn:
                return conn.execute("DELETE FROM fetches WHERE started_at < ?", (_ts(before),)).rowcount
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot prune the fetch log: {exc}") from exc

    def source_rows(self) -> list[dict[str, Any]]:
        """Every `sources` row with its post count and last fetch, for `monitor status` (counts every post)."""
        return self._all(
            """SELECT s.*,
                      (SELECT count(*) FROM posts p WHERE p.source = s.name) AS posts,
                      (SELECT max(f.started_at) FROM fetches f WHERE f.source = s.name) AS last_fetch_at
               FROM sources s ORDER BY s.name"""
        )

    def _write_source(
        self, conn: sqlite3.Connection, state: SourceState, kind: str, url: str | None, now: datetime
    ) -> None:
        conn.execute(
            """INSERT INTO sources (name, type, url, etag, last_modified, last_ok_at, last_error, last_error_at,
                                    failures, next_poll_at, retry_at, cursor, last_post_at, health, warnings,
                                    updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET
                 type = excluded.type, url = excluded.url, etag = excluded.etag,
                 last_modified = excluded.last_modified, last_ok_at = excluded.last_ok_at,
                 last_error = excluded.last_error, last_error_at = excluded.last_error_at,
                 failures = excluded.failures, next_poll_at = excluded.next_poll_at,
                 retry_at = excluded.retry_at, cursor = excluded.cursor,
                 last_post_at = excluded.last_post_at, health = excluded.health, warnings = excluded.warnings,
                 updated_at = excluded.updated_at""",
            (
                state.name,
                kind,
                url,
                state.etag,
                state.last_modified,
                _ts(state.last_ok_at),
                state.last_error,
                _ts(state.last_error_at),
                state.failures,
                _ts(state.next_poll_at),
                _ts(state.retry_at),
                state.cursor,
                _ts(state.last_post_at),
                state.health,
                json.dumps(list(state.warnings), ensure_ascii=False) if state.warnings else None,
                _ts(now),
            ),
        )

    # ------------------------------------------------------------------ posts
    def known_posts(self, source: str, keys: Iterable[str]) -> dict[str, KnownPost]:
        """The stored posts of `source` among `keys`: what a poll needs to skip unchanged items."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, KnownPost] = {}
        for start in range(0, len(wanted), 500):  # SQLite caps bound parameters per statement
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._all(
                f"SELECT id, key, first_seen_at, content_hash FROM posts WHERE source = ? AND key IN ({marks})",
                (source, *chunk),
            ):
                found[row["key"]] = KnownPost(row["id"], from_iso(row["first_seen_at"]), row["content_hash"])
        return found

    def save_poll(
        self,
        *,
        state: SourceState,
        source_type: str,
        source_url: str | None,
        posts: Sequence[MatchedPost],
        fetches: Sequence[FetchRecord],
        now: datetime,
    ) -> SaveResult:
        """One transaction: new and changed posts (with matches, FTS, clusters), the fetch log, the source row.

        A kill at any moment leaves either all of this poll or none of it.
        """
        try:
            with self.transaction() as conn:
                result = self._save_posts(conn, posts, now)
                fetch_rows = list(fetches)
                if fetch_rows:  # credit the new posts to the last fetch, which delivered them
                    last = fetch_rows[-1]
                    fetch_rows[-1] = replace(last, new_posts=result.new_posts)
                conn.executemany(
                    """INSERT INTO fetches (source, url, started_at, status, http_status, bytes, duration_ms,
                                            items, new_posts, error, warning)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [
                        (
                            f.source,
                            f.url,
                            _ts(f.started_at),
                            f.status.value,
                            f.http_status,
                            f.bytes,
                            f.duration_ms,
                            f.items,
                            f.new_posts,
                            f.error,
                            f.warning,
                        )
                        for f in fetch_rows
                    ],
                )
                newest = max((p.post.published_at for p in posts), default=None)
                if newest is not None and (state.last_post_at is None or newest > state.last_post_at):
                    state = replace(state, last_post_at=newest)
                self._write_source(conn, state, source_type, source_url, now)
                return result
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot save poll of {state.name}: {exc}") from exc

    def _save_posts(self, conn: sqlite3.Connection, posts: Sequence[MatchedPost], now: datetime) -> SaveResult:
        by_key: dict[tuple[str, str], MatchedPost] = {}
        for item in posts:  # a feed may list one item twice: the last copy wins
            by_key[(item.post.source, item.post.key)] = item
        new = updated = matches = 0
        topics: set[str] = set()
        ids: dict[tuple[str, str], int] = {}
        fts_rows: list[tuple[int, str, str]] = []  # new posts' index rows, loaded in one go (faster than a trigger)
        batch = _NearDuplicates()
        next_id = (conn.execute("SELECT coalesce(max(id), 0) FROM posts").fetchone()[0]) + 1
        for (source, key), item in by_key.items():
            post = item.post
            row = conn.execute(
                "SELECT id, content_hash FROM posts WHERE source = ? AND key = ?", (source, key)
            ).fetchone()
            if row is None:
                post_id = next_id
                next_id += 1
                bands = dedupe.band_keys(item.signature)
                cluster = self._cluster_for(conn, post, item.signature, bands, batch) or post_id
                conn.execute(
                    """INSERT INTO posts (id, source, key, url, title, text, author, published_at,
                                          first_seen_at, content_hash, cluster_id, extra)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        post_id,
                        source,
                        key,
                        post.url,
                        post.title,
                        post.text,
                        post.author,
                        _ts(post.published_at),
                        _ts(post.first_seen_at),
                        post.content_hash,
                        cluster,
                        _extra(post),
                    ),
                )
                batch.add(post_id, item.signature, bands, cluster)
                fts_rows.append((post_id, post.title, post.text))
                new += 1
            elif row[1] != post.content_hash:
                post_id = row[0]
                conn.execute(
                    """UPDATE posts SET url = ?, title = ?, text = ?, author = ?, published_at = ?, updated_at = ?,
                                        content_hash = ?, extra = ? WHERE id = ?""",
                    (
                        post.url,
                        post.title,
                        post.text,
                        post.author,
                        _ts(post.published_at),
                        _ts(now),
                        post.content_hash,
                        _extra(post),
                        post_id,
                    ),
                )
                conn.execute("DELETE FROM matches WHERE post_id = ?", (post_id,))
                updated += 1
            else:
                ids[(source, key)] = row[0]
                continue
            ids[(source, key)] = post_id
            conn.executemany(
                "INSERT OR REPLACE INTO matches (post_id, topic, term) VALUES (?, ?, ?)",
                [(post_id, m.topic, m.term) for m in item.matches],
            )
            matches += len(item.matches)
            topics.update(m.topic for m in item.matches)
        conn.executemany("INSERT INTO posts_fts (rowid, title, text) VALUES (?, ?, ?)", fts_rows)
        batch.write(conn)
        self._link_parents(conn, by_key, ids)
        return SaveResult(new, updated, matches, tuple(sorted(topics)))

    def _link_parents(
        self, conn: sqlite3.Connection, by_key: dict[tuple[str, str], MatchedPost], ids: dict[tuple[str, str], int]
    ) -> None:
        for (source, key), item in by_key.items():
            parent_key = item.post.parent_key
            if parent_key is None or (source, key) not in ids:
                continue
            parent_id = ids.get((source, parent_key))
            if parent_id is None:
                row = conn.execute("SELECT id FROM posts WHERE source = ? AND key = ?", (source, parent_key)).fetchone()
                parent_id = row[0] if row else None
            if parent_id is not None and parent_id != ids[(source, key)]:
                conn.execute(
                    "UPDATE posts SET parent_id = ? WHERE id = ? AND parent_id IS NOT ?",
                    (parent_id, ids[(source, key)], parent_id),
                )

    def _cluster_for(
        self, conn: sqlite3.Connection, post: Post, signature: bytes, bands: tuple[int, ...], batch: _NearDuplicates
    ) -> int | None:
        """The cluster of an identical or near-identical stored post, if any."""
        row = conn.execute(
            "SELECT cluster_id FROM posts WHERE content_hash = ? LIMIT 1", (post.content_hash,)
        ).fetchone()
        if row is not None and row[0] is not None:
            return int(row[0])
        if not bands:
            return None
        marks = ",".join("?" * len(bands))
        candidates = conn.execute(
            f"""SELECT s.signature, p.cluster_id FROM post_signatures s JOIN posts p ON p.id = s.post_id
                WHERE s.post_id IN (SELECT DISTINCT post_id FROM post_bands WHERE band IN ({marks})
                                    ORDER BY post_id DESC LIMIT {MAX_CLUSTER_CANDIDATES})""",
            bands,
        ).fetchall()
        best: tuple[float, int | None] = (0.0, None)
        for other, cluster in [*candidates, *batch.candidates(bands)]:
            score = dedupe.similarity(signature, other)
            if score >= dedupe.THRESHOLD and score > best[0]:
                best = (score, cluster)
        return best[1]

    def record_failure(
        self,
        *,
        state: SourceState,
        source_type: str,
        source_url: str | None,
        fetches: Sequence[FetchRecord],
        now: datetime,
    ) -> None:
        """A failed or skipped poll: the fetch log and the source row, nothing else."""
        self.save_poll(state=state, source_type=source_type, source_url=source_url, posts=(), fetches=fetches, now=now)

    # ------------------------------------------------------------------ queries
    def topic_times(self, topic: str, since: datetime, until: datetime) -> list[datetime]:
        """Published times of the topic's matching posts in [since, until]: the spike detector's input."""
        rows = self.conn.execute(
            """SELECT p.published_at FROM matches m JOIN posts p ON p.id = m.post_id
               WHERE m.topic = ? AND p.published_at >= ? AND p.published_at <= ? ORDER BY p.published_at""",
            (topic, _ts(since), _ts(until)),
        ).fetchall()
        return [from_iso(r[0]) for r in rows]

    def search(
        self,
        query: str | None,
        *,
        topics: Sequence[str] = (),
        sources: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 20,
        order: str = "newest",
    ) -> list[SearchRow]:
        """FTS5 search, newest first (or by rank); without a query, the posts the filters select, newest first.
        Raises StoreError('bad query: ...') for a malformed query."""
        where: list[str] = ["posts_fts MATCH ?"] if query else []
        params: list[Any] = [query] if query else []
        _where_in(where, params, "p.id IN (SELECT post_id FROM matches WHERE topic IN ({}))", topics)
        _where_in(where, params, "p.source IN ({})", sources)
        _where_published(where, params, since, until)
        order_by = "posts_fts.rank" if order == "rank" and query else "p.published_at DESC, p.id DESC"
        snippet = (
            f"snippet(posts_fts, -1, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}', '…', 24)"
            if query
            else "substr(p.text, 1, 160) || CASE WHEN length(p.text) > 160 THEN '…' ELSE '' END"
        )
        source = "posts_fts JOIN posts p ON p.id = posts_fts.rowid" if query else "posts p"
        sql = f"""SELECT p.id, p.source, p.url, p.title, p.published_at, p.cluster_id, {snippet} AS snippet,
                         (SELECT group_concat(topic, ',') FROM matches m WHERE m.post_id = p.id) AS topics
                  FROM {source}
                  WHERE {" AND ".join(where) or "1 = 1"} ORDER BY {order_by} LIMIT ?"""
        try:
            rows = self.conn.execute(sql, (*params, limit)).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreError(f"bad query: {exc}") from exc
        return [
            SearchRow(
                id=r[0],
                source=r[1],
                url=r[2],
                title=r[3],
                published_at=r[4],
                cluster_id=r[5],
                snippet=_ADJACENT_HIGHLIGHTS.sub(r"\1", r[6] or ""),
                topics=tuple(sorted((r[7] or "").split(","))) if r[7] else (),
            )
            for r in rows
        ]

    def stats(
        self,
        *,
        topics: Sequence[str] = (),
        by: str = "hour",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[StatsRow]:
        """Matching posts and distinct stories (clusters) per topic per hour, day or week (by published time)."""
        bucket = {
            "hour": "substr(p.published_at, 1, 13) || ':00:00Z'",
            "day": "substr(p.published_at, 1, 10)",
            "week": "date(substr(p.published_at, 1, 10), 'weekday 0', '-6 days')",
        }[by]
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        _where_in(where, params, "m.topic IN ({})", topics)
        _where_published(where, params, since, until)
        rows = self.conn.execute(
            f"""SELECT m.topic, {bucket} AS bucket, count(*) AS posts, count(DISTINCT p.cluster_id) AS stories
                FROM matches m JOIN posts p ON p.id = m.post_id WHERE {" AND ".join(where)}
                GROUP BY m.topic, bucket ORDER BY m.topic, bucket""",
            params,
        ).fetchall()
        return [StatsRow(topic=r[0], bucket=r[1], posts=r[2], stories=r[3]) for r in rows]

    def counts(self) -> dict[str, int]:
        return {
            table: self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("posts", "matches", "alerts", "fetches")
        }

    # ------------------------------------------------------------------ alerts (the outbox)
    def insert_alert(
        self,
        *,
        kind: str,
        created_at: datetime,
        topic: str | None = None,
        source: str | None = None,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        count: int | None = None,
        expected: float | None = None,
        score: float | None = None,
        details: str | None = None,
    ) -> int:
        try:
            with self.transaction() as conn:
                cursor = conn.execute(
                    """INSERT INTO alerts (kind, topic, source, window_start, window_end, count, expected, score,
                                           created_at, status, attempts, details)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?)""",
                    (
                        kind,
                        topic,
                        source,
                        _ts(window_start),
                        _ts(window_end),
                        count,
                        expected,
                        score,
                        _ts(created_at),
                        details,
                    ),
                )
                return int(cursor.lastrowid or 0)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot record alert: {exc}") from exc

    def alerts(self, *, status: str | None = None, kind: str | None = None, limit: int = 1000) -> list[AlertRow]:
        where, params = ["1 = 1"], []
        if status:
            where.append("status = ?")
            params.append(status)
        if kind:
            where.append("kind = ?")
            params.append(kind)
        rows = self._all(f"SELECT * FROM alerts WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?", (*params, limit))
        return [_alert(r) for r in rows]

    def alert(self, alert_id: int) -> AlertRow:
        row = self._one("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        if row is None:
            raise StoreError(f"no alert #{alert_id}")
        return _alert(row)

    def due_alerts(self, now: datetime) -> list[AlertRow]:
        """Pending alerts whose next attempt is due, oldest first."""
        rows = self._all(
            """SELECT * FROM alerts WHERE status = 'pending'
                            AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY id""",
            (_ts(now),),
        )
        return [_alert(r) for r in rows]

    def last_alert(self, kind: str, *, topic: str | None = None, source: str | None = None) -> AlertRow | None:
        row = self._one(
            """SELECT * FROM alerts WHERE kind = ? AND (? IS NULL OR topic = ?) AND (? IS NULL OR source = ?)
               ORDER BY id DESC LIMIT 1""",
            (kind, topic, topic, source, source),
        )
        return _alert(row) if row else None

    def update_alert(self, alert_id: int, **changes: Any) -> None:
        """Set outbox columns (status, attempts, sent_at, error, next_attempt_at, message_id); one commit."""
        allowed = {"status", "attempts", "sent_at", "error", "next_attempt_at", "message_id"}
        if not changes or set(changes) - allowed:
            raise ValueError(f"cannot update alert columns {sorted(set(changes) - allowed)}")
        values = [_ts(v) if isinstance(v, datetime) else v for v in changes.values()]
        try:
            with self.transaction() as conn:
                conn.execute(
                    f"UPDATE alerts SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?", (*values, alert_id)
                )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot update alert #{alert_id}: {exc}") from exc

    def window_posts(self, topic: str, start: datetime, end: datetime, limit: int = 500) -> list[dict[str, Any]]:
        """The topic's matching posts published in [start, end], with each post's cluster and term."""
        return self._all(
            """SELECT p.id, p.source, p.url, p.title, p.text, p.published_at, p.cluster_id, m.term
               FROM matches m JOIN posts p ON p.id = m.post_id
               WHERE m.topic = ? AND p.published_at >= ? AND p.published_at <= ?
               ORDER BY p.published_at, p.id LIMIT ?""",
            (topic, _ts(start), _ts(end), limit),
        )

    def topic_names(self) -> set[str]:
        """Topics that have matches in the store (a topic removed from the config keeps its old matches)."""
        return {r[0] for r in self.conn.execute("SELECT DISTINCT topic FROM matches")}

    def topic_count(self, topic: str, start: datetime, end: datetime) -> tuple[int, int]:
        """(posts, distinct stories) of the topic published in [start, end]."""
        row = self.conn.execute(
            """SELECT count(*), count(DISTINCT p.cluster_id) FROM matches m JOIN posts p ON p.id = m.post_id
               WHERE m.topic = ? AND p.published_at >= ? AND p.published_at <= ?""",
            (topic, _ts(start), _ts(end)),
        ).fetchone()
        return int(row[0]), int(row[1])

    # ------------------------------------------------------------------ analyst exports and charts
    def iter_posts(
        self,
        *,
        topics: Sequence[str] = (),
        sources: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        matching_only: bool = True,
        chunk: int = EXPORT_CHUNK,
    ) -> Generator[PostRow, None, None]:
        """Posts with their topics and terms, oldest first (published_at, then id), streamed `chunk` rows at a time.

        `topics`: only posts matching one of them (their row still lists all their topics); otherwise
        `matching_only` keeps posts matching any topic, and False gives every post. One SELECT: the rows are one
        consistent snapshot even while the daemon writes (WAL)."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        _where_in(where, params, "EXISTS (SELECT 1 FROM matches m WHERE m.post_id = p.id AND m.topic IN ({}))", topics)
        if matching_only and not topics:
            where.append("EXISTS (SELECT 1 FROM matches m WHERE m.post_id = p.id)")
        _where_in(where, params, "p.source IN ({})", sources)
        _where_published(where, params, since, until)
        sql = f"""SELECT p.id, p.source, p.key, p.url, p.title, p.text, p.author, p.published_at, p.first_seen_at,
                         p.updated_at, p.cluster_id, p.parent_id, p.extra,
                         (SELECT json_group_array(json_array(m.topic, m.term)) FROM matches m WHERE m.post_id = p.id)
                  FROM posts p WHERE {" AND ".join(where)} ORDER BY p.published_at, p.id"""
        try:
            cursor = self.conn.execute(sql, params)
            try:
                for rows in iter(lambda: cursor.fetchmany(chunk), []):
                    for r in rows:
                        pairs = sorted(json.loads(r[13])) if r[13] != "[]" else ()
                        topics, terms = tuple(t for t, _ in pairs), tuple(term for _, term in pairs)
                        yield PostRow._make((*r[:12], topics, terms, r[12]))
            finally:
                with contextlib.suppress(sqlite3.Error):  # the connection may be closed before the generator
                    cursor.close()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot read posts: {exc}") from exc

    def spike_alerts_between(self, topics: Sequence[str], start: datetime, end: datetime) -> list[AlertRow]:
        """Spike alerts of these topics that fired (window_end) in [start, end], oldest first."""
        if not topics:
            return []
        rows = self._all(
            f"""SELECT * FROM alerts WHERE kind = 'spike' AND topic IN ({",".join("?" * len(topics))})
                AND coalesce(window_end, created_at) >= ? AND coalesce(window_end, created_at) <= ?
                ORDER BY coalesce(window_end, created_at), id""",
            (*topics, _ts(start), _ts(end)),
        )
        return [_alert(r) for r in rows]

    # ------------------------------------------------------------------ helpers
    def _one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            cursor = self.conn.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class _NearDuplicates:
    """The near-duplicate index rows of one poll's new posts: looked up in memory while the poll is stored,
    written in one sorted pass at its end (sorted keys touch each index page once, not once per post)."""

    def __init__(self) -> None:
        self.signatures: dict[int, tuple[bytes, int]] = {}  # post id -> (signature, cluster)
        self.by_band: dict[int, list[int]] = {}

    def add(self, post_id: int, signature: bytes, bands: tuple[int, ...], cluster: int) -> None:
        if not signature:
            return
        self.signatures[post_id] = (signature, cluster)
        for band in bands:
            self.by_band.setdefault(band, []).append(post_id)

    def candidates(self, bands: tuple[int, ...]) -> list[tuple[bytes, int]]:
        ids = {post_id for band in bands for post_id in self.by_band.get(band, ())}
        return [self.signatures[post_id] for post_id in sorted(ids)]

    def write(self, conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO post_signatures (post_id, signature) VALUES (?, ?)",
            [(post_id, sig) for post_id, (sig, _) in self.signatures.items()],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO post_bands (band, post_id) VALUES (?, ?)",
            sorted((band, post_id) for band, ids in self.by_band.items() for post_id in ids),
        )


def _alert(row: dict[str, Any]) -> AlertRow:
    return AlertRow(
        id=row["id"],
        kind=row["kind"],
        topic=row["topic"],
        source=row["source"],
        window_start=_dt(row["window_start"]),
        window_end=_dt(row["window_end"]),
        count=row["count"],
        expected=row["expected"],
        score=row["score"],
        created_at=from_iso(row["created_at"]),
        status=row["status"],
        attempts=row["attempts"],
        sent_at=_dt(row["sent_at"]),
        error=row["error"],
        next_attempt_at=_dt(row["next_attempt_at"]),
        message_id=row["message_id"],
        details=row["details"],
    )


def open_store(path: Path, *, create: bool = True) -> Store:
    """Open (and create, migrate) the store: WAL so analysts can read while the daemon writes."""
    if not create and not path.exists():
        raise StoreError(f"{path}: no store yet (run `monitor poll` or `monitor run` first)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"{path}: cannot open the store: {exc}") from exc
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: a killed process loses no committed transaction
        conn.execute("PRAGMA foreign_keys = ON")
        # Each poll dirties pages all over the near-duplicate index; checkpointing every 40 MB of WAL rather than
        # every 4 MB writes each page back once per many polls (measured: +36% posts/s with the larger cache).
        conn.execute("PRAGMA wal_autocheckpoint = 10000")
        conn.execute("PRAGMA journal_size_limit = 67108864")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        store = Store(conn, path)
        _migrate(store)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path}: not a usable SQLite store: {exc}") from exc
    return store


def _migrate(store: Store) -> None:
    if not _pending(store.conn):
        return
    from sqlite_utils import Database  # noqa: PLC0415  # only when a store needs migrating

    with store.transaction():  # BEGIN IMMEDIATE: one process migrates, the others wait and find nothing pending
        migrations().apply(Database(store.conn, execute_plugins=False))  # each step in a savepoint inside this


def _pending(conn: sqlite3.Connection) -> bool:
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_sqlite_migrations'").fetchone() is None:
        return True
    applied = {
        r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ?", (MIGRATION_SET,))
    }
    return not set(STEPS) <= applied
