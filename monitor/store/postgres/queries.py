"""Queries: full-text search, stats, export, the detector's counts by bucket, an alert window's posts.

The SQLite store's queries (sqlite/queries.py) in PostgreSQL's SQL, over the same ISO 8601 text times.
Search runs the query as a `tsquery` over `posts_fts` (fts.py) and cuts its snippets in Python with the
same tokens; `--sort rank` orders by ts_rank_cd (SQLite's is bm25: the order of equal hits may differ).
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from monitor.store.api import (
    ANY_POST,
    EXPORT_CHUNK,
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    RANK_POOL,
    PostFilter,
    PostRow,
    SearchRow,
    StatsRow,
    StoreSummary,
)
from monitor.store.buckets import period_buckets
from monitor.store.postgres.base import StoreBase
from monitor.store.postgres.errors import wrapped
from monitor.store.postgres.fts import parse_query, snippet
from monitor.store.rows import CLUSTER_POST_COLUMNS, WINDOW_POST_COLUMNS, cluster_post_of, dt, ts, window_post_of
from monitor.types import ClusterPost, CountSeries, WindowPost

_BUCKETS = {
    "hour": "substr({m}.published_at, 1, 13) || ':00:00Z'",
    "day": "substr({m}.published_at, 1, 10)",
    "week": "to_char(date_trunc('week', substr({m}.published_at, 1, 10)::date), 'YYYY-MM-DD')",
}
# The distinct topics by a loose index scan: one index seek per topic instead of reading every match.
_TOPICS = """WITH RECURSIVE t(topic) AS (
                 SELECT min(topic) FROM matches
                 UNION ALL
                 SELECT (SELECT min(topic) FROM matches WHERE topic > t.topic) FROM t WHERE t.topic IS NOT NULL)
             SELECT topic FROM t WHERE topic IS NOT NULL"""
_US = 1_000_000
_PREVIEW = 160  # characters of text shown for a post listed without a query


class _Where:
    """The WHERE clause of one query, built from a PostFilter (posts are `p`)."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def any_of(self, clause: str, values: Sequence[str]) -> None:
        """Add `clause` (with `%s` for the array of values) when `values` restricts the query."""
        if values:
            self.add(clause, list(values))

    def published(self, where: PostFilter) -> None:
        if where.since:
            self.add("p.published_at >= %s", ts(where.since))
        if where.until:
            self.add("p.published_at <= %s", ts(where.until))

    def sql(self) -> str:
        return " AND ".join(self.clauses) or "TRUE"


class QueriesMixin(StoreBase):
    _carried: bool | None = None  # whether matches carry published_at and cluster_id (see _match_fields)

    def search(
        self, query: str | None, where: PostFilter = ANY_POST, *, limit: int = 20, order: str = "newest"
    ) -> list[SearchRow]:
        """Full-text search, newest first (or by rank); without a query, what the filter selects, newest first.
        Raises QueryError for a query FTS5 would not parse (before any SQL runs). By rank, only the `RANK_POOL`
        most recently stored matches are ranked, as in the SQLite store."""
        parsed = parse_query(query) if query else None
        if parsed is not None and parsed.tsquery is None:
            return []  # only phrases without words: FTS5 matches nothing either
        clause = _Where()
        if parsed is not None:
            clause.add("f.document @@ %s::tsquery", parsed.tsquery)
        clause.any_of("p.id IN (SELECT post_id FROM matches WHERE topic = ANY(%s))", where.topics)
        clause.any_of("p.source = ANY(%s)", where.sources)
        clause.published(where)
        if where.matching_only and not where.topics:
            clause.add("EXISTS (SELECT 1 FROM matches m WHERE m.post_id = p.id)")
        if parsed is not None and order == "rank":  # as SQLite's: the RANK_POOL newest matches are ranked
            with self.read("search") as conn:
                oldest = conn.execute(
                    """SELECT post_id FROM posts_fts WHERE document @@ %s::tsquery
                       ORDER BY post_id DESC OFFSET %s LIMIT 1""",
                    (parsed.tsquery, max(RANK_POOL, limit) - 1),
                ).fetchone()
            if oldest is not None:
                clause.add("f.post_id >= %s", oldest[0])
        params = list(clause.params)
        if parsed is not None and order == "rank":
            order_by = "ts_rank_cd(f.document, %s::tsquery) DESC, p.published_at DESC, p.id DESC"
            params.append(parsed.tsquery)
        else:
            order_by = "p.published_at DESC, p.id DESC"
        source = "posts_fts f JOIN posts p ON p.id = f.post_id" if parsed else "posts p"
        sql = f"""SELECT p.id, p.source, p.url, p.title, p.published_at, p.cluster_id, p.text,
                         (SELECT string_agg(topic, ',') FROM matches m WHERE m.post_id = p.id) AS topics
                  FROM {source} WHERE {clause.sql()} ORDER BY {order_by} LIMIT %s"""
        with self.read("search") as conn:
            rows = conn.execute(sql, (*params, limit)).fetchall()
        return [
            SearchRow(
                id=r[0],
                source=r[1],
                url=r[2],
                title=r[3],
                published_at=r[4],
                cluster_id=r[5],
                snippet=snippet(r[3] or "", r[6] or "", parsed.terms, HIGHLIGHT_START, HIGHLIGHT_END)
                if parsed
                else _preview(r[6] or ""),
                topics=tuple(sorted(r[7].split(","))) if r[7] else (),
            )
            for r in rows
        ]

    @wrapped("count the posts per bucket")
    def stats(self, where: PostFilter = ANY_POST, *, by: str = "hour") -> list[StatsRow]:
        """As the SQLite store's: counted from the matches' own time and cluster (index matches_topic_published),
        a bucket at a time (see buckets.py); posts are read only to filter by source."""
        m = self._match_fields()
        if m == "m" and not where.sources:
            counted = self._stats_by_bucket(where, by)
            if counted is not None:
                return counted
        clause = _Where()
        clause.any_of("m.topic = ANY(%s)", where.topics)
        clause.any_of("p.source = ANY(%s)", where.sources)
        if where.since:
            clause.add(f"{m}.published_at >= %s", ts(where.since))
        if where.until:
            clause.add(f"{m}.published_at <= %s", ts(where.until))
        source = "matches m" if m == "m" and not where.sources else "matches m JOIN posts p ON p.id = m.post_id"
        with self.read("count the posts per bucket") as conn:
            rows = conn.execute(
                f"""SELECT m.topic, {_BUCKETS[by].format(m=m)} AS bucket, count(*) AS posts,
                           count(DISTINCT {m}.cluster_id) AS stories
                    FROM {source} WHERE {clause.sql()}
                    GROUP BY m.topic, bucket ORDER BY m.topic, bucket""",
                clause.params,
            ).fetchall()
        return [StatsRow(topic=r[0], bucket=r[1], posts=r[2], stories=r[3]) for r in rows]

    def _stats_by_bucket(self, where: PostFilter, by: str) -> list[StatsRow] | None:
        """As the SQLite store's: one range of matches_topic_published per topic and bucket (a lateral join);
        None past buckets.MAX_BUCKETS."""
        since, until = ts(where.since) if where.since else None, ts(where.until) if where.until else None
        with self.read("count the posts per bucket") as conn:
            bounds = conn.execute(
                "SELECT (SELECT min(published_at) FROM posts), (SELECT max(published_at) FROM posts)"
            ).fetchone()
            first, last = bounds if bounds is not None else (None, None)
            periods = period_buckets(by, first, last, since, until)
            if not periods:  # None past MAX_BUCKETS (the caller groups instead), [] for an empty store or period
                return None if periods is None else []
            count = "m.topic = t.topic AND m.published_at >= b.label AND m.published_at < b.following"
            count += " AND m.published_at >= %(since)s" if since else ""
            count += " AND m.published_at <= %(until)s" if until else ""
            topics = "SELECT DISTINCT unnest(%(topics)s::text[])" if where.topics else _TOPICS
            rows = conn.execute(
                f"""WITH t(topic) AS ({topics}),
                         b(label, following) AS (SELECT * FROM unnest(%(labels)s::text[], %(following)s::text[]))
                    SELECT t.topic, b.label, c.posts, c.stories FROM t CROSS JOIN b CROSS JOIN LATERAL (
                        SELECT count(*) AS posts, count(DISTINCT m.cluster_id) AS stories FROM matches m
                        WHERE {count}) AS c
                    WHERE c.posts > 0 ORDER BY t.topic, b.label""",
                {
                    "topics": list(where.topics),
                    "labels": [label for label, _ in periods],
                    "following": [following for _, following in periods],
                    "since": since,
                    "until": until,
                },
            ).fetchall()
        return [StatsRow(topic=r[0], bucket=r[1], posts=r[2], stories=r[3]) for r in rows]

    def _match_fields(self) -> str:
        """The alias whose published_at and cluster_id a count reads: "m" where matches carry them (migration
        0005), "p" on a store of an older version opened read-only (not migrated: the join to posts)."""
        if self._carried is None:
            with self.read("read the schema") as conn:
                row = conn.execute(
                    """SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                       AND table_name = 'matches' AND column_name = 'published_at'"""
                ).fetchone()
            self._carried = row is not None
        return "m" if self._carried else "p"

    def iter_posts(self, where: PostFilter = ANY_POST, *, chunk: int = EXPORT_CHUNK) -> Generator[PostRow, None, None]:
        """Posts with their topics and terms, oldest first, streamed `chunk` rows at a time through a server-side
        cursor: one SELECT, so the rows are one consistent snapshot even while the daemon writes."""
        clause = _Where()
        clause.any_of("EXISTS (SELECT 1 FROM matches m WHERE m.post_id = p.id AND m.topic = ANY(%s))", where.topics)
        if where.matching_only and not where.topics:
            clause.add("EXISTS (SELECT 1 FROM matches m WHERE m.post_id = p.id)")
        clause.any_of("p.source = ANY(%s)", where.sources)
        clause.published(where)
        sql = f"""SELECT p.id, p.source, p.key, p.url, p.title, p.text, p.author, p.published_at, p.first_seen_at,
                         p.updated_at, p.cluster_id, p.parent_id, p.extra,
                         (SELECT array_agg(ARRAY[m.topic, m.term] ORDER BY m.topic, m.term)
                          FROM matches m WHERE m.post_id = p.id)
                  FROM posts p WHERE {clause.sql()} ORDER BY p.published_at, p.id"""
        with self.read("read the posts") as conn, conn.cursor(name="monitor_export") as cursor:
            cursor.itersize = chunk
            cursor.execute(sql, clause.params)
            for r in cursor:
                pairs = r[13] or ()
                topics, terms = tuple(t for t, _ in pairs), tuple(term for _, term in pairs)
                yield PostRow._make((*r[:12], topics, terms, r[12]))

    @wrapped("count the topic's posts")
    def topic_counts(self, topic: str, end: datetime, step: timedelta, buckets: int) -> CountSeries:
        """As the SQLite store's: bucket i covers (end - (n - i) * step, end - (n - i - 1) * step]."""
        end_us = round(end.timestamp() * _US)
        step_us = round(step.total_seconds() * _US)
        if step_us <= 0 or buckets <= 0:
            raise ValueError("step and buckets must be positive")
        start = datetime.fromtimestamp((end_us - step_us * buckets) // _US, end.tzinfo)
        m = self._match_fields()
        with self.read("count the topic's posts") as conn:
            rows = conn.execute(
                f"""SELECT (%(end)s::bigint - extract(epoch FROM {m}.published_at::timestamptz)::bigint * 1000000)
                          / %(step)s::bigint AS back, count(*)
                   FROM matches m {"" if m == "m" else "JOIN posts p ON p.id = m.post_id"}
                   WHERE m.topic = %(topic)s AND {m}.published_at > %(start)s AND {m}.published_at <= %(last)s
                   GROUP BY back""",
                {
                    "end": end_us,
                    "step": step_us,
                    "topic": topic,
                    "start": ts(start),
                    "last": ts(datetime.fromtimestamp(end_us // _US, end.tzinfo)),
                },
            ).fetchall()
        counts = [0] * buckets
        for back, count in rows:
            if 0 <= back < buckets:
                counts[buckets - 1 - back] += count
        return CountSeries(end=end, step=step, counts=tuple(counts))

    @wrapped("count the topic's posts")
    def topic_count(self, topic: str, start: datetime, end: datetime) -> tuple[int, int]:
        m = self._match_fields()
        with self.read("count the topic's posts") as conn:
            row = conn.execute(
                f"""SELECT count(*), count(DISTINCT {m}.cluster_id)
                   FROM matches m {"" if m == "m" else "JOIN posts p ON p.id = m.post_id"}
                   WHERE m.topic = %s AND {m}.published_at >= %s AND {m}.published_at <= %s""",
                (topic, ts(start), ts(end)),
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    @wrapped("read the topics")
    def topic_names(self) -> set[str]:
        with self.read("read the topics") as conn:
            return {r[0] for r in conn.execute(_TOPICS)}

    @wrapped("read the alert's posts")
    def window_posts(self, topic: str, start: datetime, end: datetime, limit: int = 500) -> list[WindowPost]:
        with self.read("read the alert's posts") as conn:
            rows = conn.execute(
                f"""SELECT {WINDOW_POST_COLUMNS}
                   FROM matches m JOIN posts p ON p.id = m.post_id
                   WHERE m.topic = %s AND p.published_at >= %s AND p.published_at <= %s
                   ORDER BY p.published_at, p.id LIMIT %s""",
                (topic, ts(start), ts(end), limit),
            ).fetchall()
        return [window_post_of(r) for r in rows]

    @wrapped("read the near-duplicate clusters")
    def fresh_clusters(
        self, since: datetime, *, min_voices: int, topics_only: bool, limit: int = 20_000
    ) -> list[ClusterPost]:
        """The SQLite store's fresh_clusters (sqlite/queries.py) in PostgreSQL's SQL."""
        topic_clause = (
            "AND EXISTS (SELECT 1 FROM posts t JOIN matches m ON m.post_id = t.id WHERE t.cluster_id = f.cluster_id)"
            if topics_only
            else ""
        )
        with self.read("read the near-duplicate clusters") as conn:
            rows = conn.execute(
                f"""WITH fresh AS (
                      SELECT f.cluster_id FROM posts f
                      WHERE f.published_at >= %(since)s AND f.cluster_id IS NOT NULL
                      GROUP BY f.cluster_id
                      HAVING count(DISTINCT f.source || chr(31) || coalesce(f.author, '')) >= %(voices)s
                         AND NOT EXISTS (
                           SELECT 1 FROM posts o WHERE o.cluster_id = f.cluster_id AND o.published_at < %(since)s)
                         {topic_clause}
                    )
                    SELECT {_CLUSTER_COLUMNS} FROM posts p WHERE p.cluster_id IN (SELECT cluster_id FROM fresh)
                    ORDER BY p.cluster_id, p.published_at, p.id LIMIT %(limit)s""",
                {"since": ts(since), "voices": min_voices, "limit": limit},
            ).fetchall()
        return [cluster_post_of(r) for r in rows]

    @wrapped("read the cluster's posts")
    def cluster_posts(self, cluster_id: int, limit: int = 200) -> list[ClusterPost]:
        """The cluster's first `limit` posts in published order (what a campaign message shows)."""
        with self.read("read the cluster's posts") as conn:
            rows = conn.execute(
                f"""SELECT {_CLUSTER_COLUMNS} FROM posts p WHERE p.cluster_id = %s
                    ORDER BY p.published_at, p.id LIMIT %s""",
                (cluster_id, limit),
            ).fetchall()
        return [cluster_post_of(r) for r in rows]

    @wrapped("count the rows")
    def counts(self) -> dict[str, int]:
        with self.read("count the rows") as conn:
            tables = ("posts", "matches", "alerts", "fetches")
            return {table: _scalar(conn, f"SELECT count(*) FROM {table}") for table in tables}

    @wrapped("count the posts")
    def post_count(self) -> int:
        with self.read("count the posts") as conn:
            return _scalar(conn, "SELECT count(*) FROM posts")

    @wrapped("summarise the store")
    def summary(self) -> StoreSummary:
        with self.read("summarise the store") as conn:
            comments = {r[0]: r[1] for r in conn.execute("SELECT source, count(parent_id) FROM posts GROUP BY source")}
            totals = conn.execute("SELECT count(*), min(published_at), max(published_at) FROM posts").fetchone()
            matches = {r[0]: r[1] for r in conn.execute("SELECT topic, count(*) FROM matches GROUP BY topic")}
        assert totals is not None
        posts, oldest, newest = totals
        return StoreSummary(posts=posts, comments=comments, oldest=dt(oldest), newest=dt(newest), matches=matches)


_CLUSTER_COLUMNS = f"""{CLUSTER_POST_COLUMNS},
    (SELECT string_agg(m.topic, chr(31)) FROM matches m WHERE m.post_id = p.id)"""


def _scalar(conn: psycopg.Connection[Any], sql: str) -> int:
    with contextlib.closing(conn.execute(sql)) as cursor:
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _preview(text: str) -> str:
    return text[:_PREVIEW] + ("…" if len(text) > _PREVIEW else "")
