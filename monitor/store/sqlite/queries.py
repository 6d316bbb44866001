"""Queries: full-text search, stats, export, the detector's counts by bucket, an alert window's posts.

Each takes a `PostFilter` where it selects posts. Counting is done in SQL: the detector reads bucket
counts, never every timestamp of its baseline.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sqlite3
from collections.abc import Generator, Sequence
from datetime import datetime, timedelta
from typing import Any

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
from monitor.store.rows import CLUSTER_POST_COLUMNS, WINDOW_POST_COLUMNS, cluster_post_of, dt, ts, window_post_of
from monitor.store.sqlite.base import StoreBase
from monitor.store.sqlite.errors import wrapped
from monitor.types import ClusterPost, CountSeries, WindowPost

# FTS5 marks each token of a phrase apart; "Халық" "кеңесі" reads better as one highlight.
_ADJACENT_HIGHLIGHTS = re.compile(f"{HIGHLIGHT_END}(\\s+){HIGHLIGHT_START}")
_BUCKETS = {
    "hour": "substr({m}.published_at, 1, 13) || ':00:00Z'",
    "day": "substr({m}.published_at, 1, 10)",
    "week": "date(substr({m}.published_at, 1, 10), 'weekday 0', '-6 days')",
}
_US = 1_000_000
# The distinct topics by a loose index scan: one index seek per topic instead of reading every match.
_TOPICS = """WITH RECURSIVE t(topic) AS (
                 SELECT min(topic) FROM matches
                 UNION ALL
                 SELECT (SELECT min(topic) FROM matches WHERE topic > t.topic) FROM t WHERE t.topic IS NOT NULL)
             SELECT topic FROM t WHERE topic IS NOT NULL"""
_FTS_SOURCE = "posts_fts JOIN posts p ON p.id = posts_fts.rowid"
_WALK_POSTS = 5_000  # newest posts a newest-first search walks before it reads every match instead
_WALK_MIN_MATCHES = 500
_WALK_MAX_LIMIT = 100
_HITS_MIN_MATCHES = 200


class _Where:
    """The WHERE clause of one query, built from a PostFilter (posts are `p`)."""

    def __init__(self, *clauses: str) -> None:
        self.clauses = list(clauses)
        self.params: list[Any] = []

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def any_of(self, clause: str, values: Sequence[str]) -> None:
        """Add `clause` (with `{}` for the placeholders) when `values` restricts the query."""
        if values:
            self.add(clause.format(",".join("?" * len(values))), *values)

    def published(self, where: PostFilter) -> None:
        if where.since:
            self.add("p.published_at >= ?", ts(where.since))
        if where.until:
            self.add("p.published_at <= ?", ts(where.until))

    def sql(self) -> str:
        return " AND ".join(self.clauses) or "1 = 1"


class QueriesMixin(StoreBase):
    _carried: bool | None = None  # whether matches carry published_at and cluster_id (see _match_fields)

    def search(
        self, query: str | None, where: PostFilter = ANY_POST, *, limit: int = 20, order: str = "newest"
    ) -> list[SearchRow]:
        """FTS5 search, newest first (or by rank); without a query, the posts the filter selects, newest first.
        Raises QueryError for a query FTS5 cannot parse (any other failure is a StoreError).

        Newest first, a common word (one in every few posts) is found by walking the newest posts and testing
        each against the index, which stops after `limit` hits; a rarer word's matching ids are read and the posts
        walked newest first until `limit` of them; a rare word's matches are all read and sorted (`_newest_plan`).
        By rank, bm25 orders the `RANK_POOL` most recently stored matches (the cost of ranking grows with the
        matches: a common word matches half the store)."""
        clause = _Where()
        clause.any_of("p.id IN (SELECT post_id FROM matches WHERE topic IN ({}))", where.topics)
        clause.any_of("p.source IN ({})", where.sources)
        clause.published(where)
        if where.matching_only and not where.topics:
            clause.add("EXISTS (SELECT 1 FROM matches m WHERE m.post_id = p.id)")
        with self.mapped("search", fts_query=bool(query)):
            if not query:
                return self._search_rows(None, "posts p", clause, "p.published_at DESC, p.id DESC", limit)
            if order == "rank":
                ranked = _Where("posts_fts MATCH ?", *clause.clauses)
                ranked.params = [query, *clause.params]
                oldest = self.conn.execute(
                    "SELECT rowid FROM posts_fts WHERE posts_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
                    (query, max(RANK_POOL, limit) - 1),
                ).fetchone()
                if oldest is not None:  # more matches than the pool: rank the newest stored ones
                    ranked.add("posts_fts.rowid >= ?", oldest[0])
                return self._search_rows(query, _FTS_SOURCE, ranked, "posts_fts.rank", limit)
            newest = "p.published_at DESC, p.id DESC"
            plan = self._newest_plan(query, limit)
            if plan == "walk":
                walk = _Where(
                    "p.published_at >= coalesce((SELECT published_at FROM posts ORDER BY published_at DESC "
                    "LIMIT 1 OFFSET ?), '')",
                    "EXISTS (SELECT 1 FROM posts_fts f WHERE posts_fts MATCH ? AND f.rowid = p.id)",
                    *clause.clauses,
                )
                walk.params = [_WALK_POSTS, query, *clause.params]
                rows = self._search_rows(query, "posts p", walk, newest, limit, join_fts=True)
                if len(rows) >= limit:  # the newest posts held `limit` hits: nothing older can come first
                    return rows
            if plan != "sort":  # the unary + keeps the planner walking posts_published_at, not the hits
                hits = _Where("+p.id IN (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ?)", *clause.clauses)
                hits.params = [query, *clause.params]
                return self._search_rows(query, "posts p", hits, newest, limit, join_fts=True)
            # Sorted by SQLite, whose rows carry their columns into the sort: the ids first, then the snippets of
            # those alone (one statement cut a snippet for every match it sorted, some 14,000 at 1M posts).
            ids = self.conn.execute(
                f"SELECT p.id FROM {_FTS_SOURCE} WHERE posts_fts MATCH ? AND {clause.sql()} ORDER BY {newest} LIMIT ?",
                [query, *clause.params, limit],
            ).fetchall()
            picked = _Where("p.id IN (SELECT value FROM json_each(?))")
            picked.params = [json.dumps([r[0] for r in ids])]
            return self._search_rows(query, "posts p", picked, newest, limit, join_fts=True)

    def _newest_plan(self, query: str, limit: int) -> str:
        """How to find the newest `limit` posts matching the query among n posts, from its m matches:
        - "walk" when m >= sqrt(200 n): walk the newest posts testing each against the index (some ten row reads
          a test, about limit * n / m tests), which beats reading the m matches;
        - "hits" when m >= sqrt(limit * n / 25): read the m matching ids into a temporary index (cheap: FTS5 reads
          them in order) and walk posts_published_at newest first, probing it, until `limit` hit (about
          limit * n / m index entries, each a fraction of a row read);
        - "sort" below that: read each match's row and sort (a row read per match, a random page at a million
          posts: 30-300 ms for 4,000 matches, against 1-15 ms walking the hits)."""
        posts = self.conn.execute("SELECT coalesce(max(id), 0) FROM posts").fetchone()[0]
        enough = max(_WALK_MIN_MATCHES, math.isqrt(200 * posts)) if limit <= _WALK_MAX_LIMIT else None
        hits_from = max(_HITS_MIN_MATCHES, math.isqrt(limit * posts // 25))
        found = self.conn.execute(
            "SELECT count(*) FROM (SELECT rowid FROM posts_fts WHERE posts_fts MATCH ? LIMIT ?)",
            (query, max(enough or 0, hits_from)),
        ).fetchone()[0]
        if enough is not None and found >= enough:
            return "walk"
        return "hits" if found >= hits_from else "sort"

    def _search_rows(
        self, query: str | None, source: str, clause: _Where, order_by: str, limit: int, *, join_fts: bool = False
    ) -> list[SearchRow]:
        if query and join_fts:  # walked posts: the snippet needs this post's row of the index
            snippet = (
                f"(SELECT snippet(posts_fts, -1, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}', '…', 24) FROM posts_fts "
                "WHERE posts_fts MATCH ? AND posts_fts.rowid = p.id)"
            )
            params: list[Any] = [query, *clause.params, limit]
        elif query:
            snippet = f"snippet(posts_fts, -1, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}', '…', 24)"
            params = [*clause.params, limit]
        else:
            snippet = "substr(p.text, 1, 160) || CASE WHEN length(p.text) > 160 THEN '…' ELSE '' END"
            params = [*clause.params, limit]
        sql = f"""SELECT p.id, p.source, p.url, p.title, p.published_at, p.cluster_id, {snippet} AS snippet,
                         (SELECT group_concat(topic, ',') FROM matches m WHERE m.post_id = p.id) AS topics
                  FROM {source} WHERE {clause.sql()} ORDER BY {order_by} LIMIT ?"""
        rows = self.conn.execute(sql, params).fetchall()
        return [
            SearchRow(
                id=r[0],
                source=r[1],
                url=r[2],
                title=r[3],
                published_at=r[4],
                cluster_id=r[5],
                snippet=_ADJACENT_HIGHLIGHTS.sub(r"\1", r[6] or ""),
                topics=tuple(sorted(r[7].split(","))) if r[7] else (),
            )
            for r in rows
        ]

    @wrapped("count the posts per bucket")
    def stats(self, where: PostFilter = ANY_POST, *, by: str = "hour") -> list[StatsRow]:
        """Matching posts and distinct stories (clusters) per topic per hour, day or week (by published time).
        Counted from the matches' own time and cluster (index matches_topic_published), a bucket at a time (see
        buckets.py); posts are read only to filter by source."""
        m = self._match_fields()
        if m == "m" and not where.sources:
            counted = self._stats_by_bucket(where, by)
            if counted is not None:
                return counted
        clause = _Where()
        clause.any_of("m.topic IN ({})", where.topics)
        if not where.topics and m == "m":  # one range of the index per topic, not a scan of every match
            clause.add(f"m.topic IN ({_TOPICS})")
        clause.any_of("p.source IN ({})", where.sources)
        if where.since:
            clause.add(f"{m}.published_at >= ?", ts(where.since))
        if where.until:
            clause.add(f"{m}.published_at <= ?", ts(where.until))
        source = "matches m" if m == "m" and not where.sources else "matches m JOIN posts p ON p.id = m.post_id"
        rows = self.conn.execute(
            f"""SELECT m.topic, {_BUCKETS[by].format(m=m)} AS bucket, count(*) AS posts,
                       count(DISTINCT {m}.cluster_id) AS stories
                FROM {source} WHERE {clause.sql()}
                GROUP BY m.topic, bucket ORDER BY m.topic, bucket""",
            clause.params,
        ).fetchall()
        return [StatsRow(topic=r[0], bucket=r[1], posts=r[2], stories=r[3]) for r in rows]

    def _stats_by_bucket(self, where: PostFilter, by: str) -> list[StatsRow] | None:
        """`stats` read one range of matches_topic_published per topic and bucket (no sort of the period's
        matches); None past buckets.MAX_BUCKETS."""
        first, last = self.conn.execute(
            "SELECT (SELECT min(published_at) FROM posts), (SELECT max(published_at) FROM posts)"
        ).fetchone()
        since, until = ts(where.since) if where.since else None, ts(where.until) if where.until else None
        periods = period_buckets(by, first, last, since, until)
        if not periods:  # None past MAX_BUCKETS (the caller groups instead), [] for an empty store or period
            return None if periods is None else []
        count = "m.topic = t.topic AND m.published_at >= b.label AND m.published_at < b.following"
        count += " AND m.published_at >= :since" if since else ""
        count += " AND m.published_at <= :until" if until else ""
        topics = "SELECT DISTINCT value FROM json_each(:topics)" if where.topics else _TOPICS
        rows = self.conn.execute(  # both counts from one read of the range, as a JSON pair
            f"""WITH t(topic) AS MATERIALIZED ({topics}),
                     b(label, following) AS (
                         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(:buckets))
                SELECT t.topic, b.label,
                       (SELECT json_array(count(*), count(DISTINCT m.cluster_id)) FROM matches m WHERE {count})
                FROM t, b ORDER BY t.topic, b.label""",
            {"topics": json.dumps(list(where.topics)), "buckets": json.dumps(periods), "since": since, "until": until},
        ).fetchall()
        counted = ((topic, bucket, *json.loads(pair)) for topic, bucket, pair in rows)
        return [StatsRow(topic=t, bucket=b, posts=n, stories=k) for t, b, n, k in counted if n]

    def _match_fields(self) -> str:
        """The alias whose published_at and cluster_id a count reads: "m" where matches carry them (migration
        0005), "p" on a store of an older version opened read-only (not migrated: the join to posts)."""
        if self._carried is None:
            columns = {r[1] for r in self.conn.execute("PRAGMA table_info(matches)")}
            self._carried = "published_at" in columns
        return "m" if self._carried else "p"

    def iter_posts(self, where: PostFilter = ANY_POST, *, chunk: int = EXPORT_CHUNK) -> Generator[PostRow, None, None]:
        """Posts with their topics and terms, oldest first (published_at, then id), streamed `chunk` rows at a time.

        `where.topics`: only posts matching one of them (their row still lists all their topics); otherwise
        `where.matching_only` keeps posts matching any topic. One SELECT: the rows are one consistent snapshot
        even while the daemon writes (WAL)."""
        clause = _Where()
        clause.any_of("EXISTS (SELECT 1 FROM matches m WHERE m.post_id = p.id AND m.topic IN ({}))", where.topics)
        if where.matching_only and not where.topics:
            clause.add("EXISTS (SELECT 1 FROM matches m WHERE m.post_id = p.id)")
        clause.any_of("p.source IN ({})", where.sources)
        clause.published(where)
        sql = f"""SELECT p.id, p.source, p.key, p.url, p.title, p.text, p.author, p.published_at, p.first_seen_at,
                         p.updated_at, p.cluster_id, p.parent_id, p.extra,
                         (SELECT json_group_array(json_array(m.topic, m.term)) FROM matches m WHERE m.post_id = p.id)
                  FROM posts p WHERE {clause.sql()} ORDER BY p.published_at, p.id"""
        with self.mapped("read the posts"):
            cursor = self.conn.execute(sql, clause.params)
            try:
                for rows in iter(lambda: cursor.fetchmany(chunk), []):
                    for r in rows:
                        pairs = sorted(json.loads(r[13])) if r[13] != "[]" else ()
                        topics, terms = tuple(t for t, _ in pairs), tuple(term for _, term in pairs)
                        yield PostRow._make((*r[:12], topics, terms, r[12]))
            finally:
                with contextlib.suppress(sqlite3.Error):  # the connection may be closed before the generator
                    cursor.close()

    @wrapped("count the topic's posts")
    def topic_counts(self, topic: str, end: datetime, step: timedelta, buckets: int) -> CountSeries:
        """The topic's matching posts counted in `buckets` buckets of `step` ending at `end` (see CountSeries:
        bucket i covers (end - (n - i) * step, end - (n - i - 1) * step]), counted in SQL, in whole microseconds."""
        end_us = round(end.timestamp() * _US)
        step_us = round(step.total_seconds() * _US)
        if step_us <= 0 or buckets <= 0:
            raise ValueError("step and buckets must be positive")
        start = datetime.fromtimestamp((end_us - step_us * buckets) // _US, end.tzinfo)
        # Stored times are whole seconds, so `> start` (start rounded down) is the open left edge.
        m = self._match_fields()
        rows = self.conn.execute(
            f"""SELECT (?1 - unixepoch({m}.published_at) * 1000000) / ?2 AS back, count(*)
               FROM matches m {"" if m == "m" else "JOIN posts p ON p.id = m.post_id"}
               WHERE m.topic = ?3 AND {m}.published_at > ?4 AND {m}.published_at <= ?5
               GROUP BY back""",
            (end_us, step_us, topic, ts(start), ts(datetime.fromtimestamp(end_us // _US, end.tzinfo))),
        ).fetchall()
        counts = [0] * buckets
        for back, count in rows:
            if 0 <= back < buckets:
                counts[buckets - 1 - back] += count
        return CountSeries(end=end, step=step, counts=tuple(counts))

    @wrapped("count the topic's posts")
    def topic_count(self, topic: str, start: datetime, end: datetime) -> tuple[int, int]:
        """(posts, distinct stories) of the topic published in [start, end]."""
        m = self._match_fields()
        row = self.conn.execute(
            f"""SELECT count(*), count(DISTINCT {m}.cluster_id)
               FROM matches m {"" if m == "m" else "JOIN posts p ON p.id = m.post_id"}
               WHERE m.topic = ? AND {m}.published_at >= ? AND {m}.published_at <= ?""",
            (topic, ts(start), ts(end)),
        ).fetchone()
        return int(row[0]), int(row[1])

    @wrapped("read the topics")
    def topic_names(self) -> set[str]:
        """Topics that have matches in the store (a topic removed from the config keeps its old matches)."""
        return {r[0] for r in self.conn.execute(_TOPICS)}

    @wrapped("read the alert's posts")
    def window_posts(self, topic: str, start: datetime, end: datetime, limit: int = 500) -> list[WindowPost]:
        """The topic's matching posts published in [start, end], oldest first, with each post's cluster and term."""
        rows = self.conn.execute(
            f"""SELECT {WINDOW_POST_COLUMNS}
               FROM matches m JOIN posts p ON p.id = m.post_id
               WHERE m.topic = ? AND p.published_at >= ? AND p.published_at <= ?
               ORDER BY p.published_at, p.id LIMIT ?""",
            (topic, ts(start), ts(end), limit),
        ).fetchall()
        return [window_post_of(r) for r in rows]

    @wrapped("read the near-duplicate clusters")
    def fresh_clusters(
        self, since: datetime, *, min_voices: int, topics_only: bool, limit: int = 20_000
    ) -> list[ClusterPost]:
        """The posts of every cluster whose first post was published at or after `since` and that has at least
        `min_voices` distinct (source, author) pairs (and a post matching a topic, with `topics_only`), in
        published order. Authors are compared as stored here, so this is a superset of what the rule counts.
        The recent posts are read by published time: the unary `+` keeps the planner from walking the whole
        cluster index to save a sort (0.2-0.7 s a call at 300,000 posts, every minute; 1-10 ms this way)."""
        topic_clause = (
            "AND EXISTS (SELECT 1 FROM posts t JOIN matches m ON m.post_id = t.id WHERE t.cluster_id = f.cluster_id)"
            if topics_only
            else ""
        )
        rows = self.conn.execute(
            f"""WITH fresh AS (
                  SELECT f.cluster_id FROM posts f
                  WHERE f.published_at >= ?1 AND +f.cluster_id IS NOT NULL
                  GROUP BY +f.cluster_id
                  HAVING count(DISTINCT f.source || char(31) || coalesce(f.author, '')) >= ?2
                     AND NOT EXISTS (SELECT 1 FROM posts o WHERE o.cluster_id = f.cluster_id AND o.published_at < ?1)
                     {topic_clause}
                )
                SELECT {_CLUSTER_COLUMNS} FROM posts p WHERE p.cluster_id IN (SELECT cluster_id FROM fresh)
                ORDER BY p.cluster_id, p.published_at, p.id LIMIT ?3""",
            (ts(since), min_voices, limit),
        ).fetchall()
        return [cluster_post_of(r) for r in rows]

    @wrapped("read the cluster's posts")
    def cluster_posts(self, cluster_id: int, limit: int = 200) -> list[ClusterPost]:
        """The cluster's first `limit` posts in published order (what a campaign message shows)."""
        rows = self.conn.execute(
            f"""SELECT {_CLUSTER_COLUMNS} FROM posts p WHERE p.cluster_id = ?
                ORDER BY p.published_at, p.id LIMIT ?""",
            (cluster_id, limit),
        ).fetchall()
        return [cluster_post_of(r) for r in rows]

    @wrapped("count the rows")
    def counts(self) -> dict[str, int]:
        return {
            table: self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("posts", "matches", "alerts", "fetches")
        }

    @wrapped("count the posts")
    def post_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM posts").fetchone()[0])

    @wrapped("summarise the store")
    def summary(self) -> StoreSummary:
        comments = dict(self.conn.execute("SELECT source, count(parent_id) FROM posts GROUP BY source").fetchall())
        posts, oldest, newest = self.conn.execute(
            "SELECT count(*), min(published_at), max(published_at) FROM posts"
        ).fetchone()
        matches = dict(self.conn.execute("SELECT topic, count(*) FROM matches GROUP BY topic").fetchall())
        return StoreSummary(posts=posts, comments=comments, oldest=dt(oldest), newest=dt(newest), matches=matches)


_CLUSTER_COLUMNS = f"""{CLUSTER_POST_COLUMNS},
    (SELECT group_concat(m.topic, char(31)) FROM matches m WHERE m.post_id = p.id)"""
