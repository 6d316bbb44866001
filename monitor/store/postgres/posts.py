"""Posts: the write path of one poll (new and edited posts, their matches, the full-text rows, near-duplicate
clusters), with the SQLite store's rules (sqlite/posts.py) in a few round trips: the stored posts, exact copies
and band candidates are each read in one query (or one pipeline) for the whole poll, and rows go in batches.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import msgspec
import psycopg

from monitor import dedupe
from monitor.store.api import KnownPost, SaveResult
from monitor.store.postgres.base import StoreBase
from monitor.store.postgres.fts import document
from monitor.store.postgres.sources import write_fetches, write_source
from monitor.store.rows import ts
from monitor.types import FetchRecord, MatchedPost, Post, SourceState
from monitor.units import from_iso

MAX_CLUSTER_CANDIDATES = 64  # as the SQLite store: enough for any real story, bounded for boilerplate
REINDEX_BATCH = 500  # posts edited by others' SQL reindexed per poll


def _extra(post: Post) -> str | None:
    return json.dumps(dict(post.extra), ensure_ascii=False, sort_keys=True) if post.extra else None


def _nul_free(post: Post) -> Post:
    """PostgreSQL's text cannot hold NUL (SQLite's can): each becomes U+FFFD. Normalised posts have none."""
    fields = {"key": post.key, "url": post.url, "title": post.title, "text": post.text, "author": post.author}
    bad = {name: value.replace("\x00", "\ufffd") for name, value in fields.items() if value and "\x00" in value}
    return replace(post, **bad) if bad else post  # type: ignore[arg-type]


class PostsMixin(StoreBase):
    def known_posts(self, source: str, keys: Iterable[str]) -> dict[str, KnownPost]:
        wanted = list(dict.fromkeys(keys))
        with self.read(f"read the stored posts of {source}") as conn:
            rows = conn.execute(
                "SELECT id, key, first_seen_at, content_hash FROM posts WHERE source = %s AND key = ANY(%s)",
                (source, wanted),
            ).fetchall()
        return {r[1]: KnownPost(r[0], from_iso(r[2]), r[3]) for r in rows}

    def known_raw(self, source: str, limit: int) -> dict[bytes, str]:
        """raw digest -> key of the newest `limit` posts of `source` that have one (see the store interface)."""
        with self.read(f"read the raw digests of {source}") as conn:
            rows = conn.execute(
                """SELECT raw_digest, key FROM (SELECT raw_digest, key FROM posts WHERE source = %s
                                                ORDER BY published_at DESC LIMIT %s) AS newest
                   WHERE raw_digest IS NOT NULL""",
                (source, limit),
            ).fetchall()
        return {bytes(digest): key for digest, key in rows}

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
        """One transaction: new and changed posts (with matches, index rows, clusters), the fetch log, the source.
        A kill at any moment leaves either all of this poll or none of it."""
        with self.transaction(f"save the poll of {state.name}") as conn:
            result = _save_posts(conn, posts, now)
            fetch_rows = list(fetches)
            if fetch_rows:  # credit the new posts to the last fetch, which delivered them
                fetch_rows[-1] = msgspec.structs.replace(fetch_rows[-1], new_posts=result.new_posts)
            write_fetches(conn, fetch_rows)
            newest = max((p.post.published_at for p in posts), default=None)
            if newest is not None and (state.last_post_at is None or newest > state.last_post_at):
                state = msgspec.structs.replace(state, last_post_at=newest)
            write_source(conn, state, source_type, source_url, now)
            reindex_stale(conn)
            return result


def _save_posts(conn: psycopg.Connection[Any], posts: Sequence[MatchedPost], now: datetime) -> SaveResult:
    by_key: dict[tuple[str, str], MatchedPost] = {}
    for given in posts:  # a feed may list one item twice: the last copy wins
        item = replace(given, post=_nul_free(given.post))
        by_key[(item.post.source, item.post.key)] = item
    stored = _stored(conn, by_key)
    new_items = [(k, item) for k, item in by_key.items() if k not in stored]
    changed = [(k, item) for k, item in by_key.items() if k in stored and stored[k][1] != item.post.content_hash]
    ids: dict[tuple[str, str], int] = {k: row[0] for k, row in stored.items()}
    new_ids = _next_ids(conn, len(new_items))
    clusters = _Clusters(conn, [item for _, item in new_items])
    post_rows: list[tuple[Any, ...]] = []
    topics: set[str] = set()
    for (key, item), post_id in zip(new_items, new_ids, strict=True):
        post = item.post
        cluster = clusters.assign(post_id, item)
        ids[key] = post_id
        post_rows.append(
            (
                post_id,
                post.source,
                post.key,
                post.url,
                post.title,
                post.text,
                post.author,
                ts(post.published_at),
                ts(post.first_seen_at),
                post.content_hash,
                cluster,
                _extra(post),
                post.raw_digest,
            )
        )
    with conn.cursor() as cursor:
        _copy(cursor, "posts (id, source, key, url, title, text, author, published_at, first_seen_at, "
              "content_hash, cluster_id, extra, raw_digest)", post_rows)  # fmt: skip
        cursor.executemany(
            """UPDATE posts SET url = %s, title = %s, text = %s, author = %s, published_at = %s, updated_at = %s,
                                content_hash = %s, extra = %s, raw_digest = %s WHERE id = %s""",
            [
                (
                    item.post.url,
                    item.post.title,
                    item.post.text,
                    item.post.author,
                    ts(item.post.published_at),
                    ts(now),
                    item.post.content_hash,
                    _extra(item.post),
                    item.post.raw_digest,  # follows the content it parsed to
                    ids[key],
                )
                for key, item in changed
            ],
        )
        if changed:
            cursor.execute("DELETE FROM matches WHERE post_id = ANY(%s)", ([ids[key] for key, _ in changed],))
        terms: dict[tuple[int, str], str] = {}  # one row per post and topic (the last match wins)
        carried: dict[
            int, tuple[str | None, int | None]
        ] = {}  # post id -> the published_at and cluster_id its matches carry
        for key, item in [*new_items, *changed]:
            terms.update({(ids[key], m.topic): m.term for m in item.matches})
            topics.update(m.topic for m in item.matches)
            carried[ids[key]] = (ts(item.post.published_at), None)
        carried.update({row[0]: (row[7], row[10]) for row in post_rows})  # an edited post's take theirs by trigger
        _copy(
            cursor,
            "matches (post_id, topic, term, published_at, cluster_id)",
            [(post_id, topic, term, *carried[post_id]) for (post_id, topic), term in terms.items()],
        )
        _copy(
            cursor,
            "posts_fts (post_id, document)",
            [(ids[k], document(i.post.title, i.post.text)) for k, i in new_items],
        )
        cursor.executemany(
            """INSERT INTO posts_fts (post_id, document) VALUES (%s, %s::tsvector)
               ON CONFLICT (post_id) DO UPDATE SET document = excluded.document""",
            [(ids[key], document(item.post.title, item.post.text)) for key, item in changed],
        )
    clusters.write()
    _link_parents(conn, by_key, ids)
    return SaveResult(len(new_items), len(changed), len(terms), tuple(sorted(topics)))


def _stored(
    conn: psycopg.Connection[Any], by_key: dict[tuple[str, str], MatchedPost]
) -> dict[tuple[str, str], tuple[int, str]]:
    """(source, key) -> (id, content_hash) of the poll's posts already stored."""
    keys: dict[str, list[str]] = {}
    for source, key in by_key:
        keys.setdefault(source, []).append(key)
    found: dict[tuple[str, str], tuple[int, str]] = {}
    for source, wanted in keys.items():
        for post_id, key, content_hash in conn.execute(
            "SELECT id, key, content_hash FROM posts WHERE source = %s AND key = ANY(%s)", (source, wanted)
        ):
            found[(source, key)] = (post_id, content_hash)
    return found


def _next_ids(conn: psycopg.Connection[Any], count: int) -> list[int]:
    """Ids for `count` new posts, from the identity's sequence (a post's first cluster is its own id)."""
    if not count:
        return []
    rows = conn.execute(
        "SELECT nextval(pg_get_serial_sequence('posts', 'id')) FROM generate_series(1, %s)", (count,)
    ).fetchall()
    return [int(r[0]) for r in rows]


class _Clusters:
    """Near-duplicate clusters of one poll's new posts: the SQLite store's rule (an exact copy's cluster, else the
    most similar candidate sharing a band at >= dedupe.THRESHOLD), with the stored copies and candidates read for
    the whole poll up front and the poll's own posts looked up in memory."""

    def __init__(self, conn: psycopg.Connection[Any], items: Sequence[MatchedPost]) -> None:
        self.conn = conn
        self.bands = [dedupe.band_keys(item.signature) for item in items]
        hashes = sorted({item.post.content_hash for item in items})
        self.by_hash: dict[str, int] = {}
        if hashes:
            for content_hash, cluster in conn.execute(
                """SELECT DISTINCT ON (content_hash) content_hash, cluster_id FROM posts
                   WHERE content_hash = ANY(%s) AND cluster_id IS NOT NULL ORDER BY content_hash, id""",
                (hashes,),
            ):
                self.by_hash[content_hash] = int(cluster)
        self.stored = self._candidates(items)
        self.signatures: dict[int, tuple[bytes, int]] = {}  # this poll's posts: id -> (signature, cluster)
        self.by_band: dict[int, list[int]] = {}
        self.next = 0

    def _candidates(self, items: Sequence[MatchedPost]) -> list[list[tuple[bytes, int | None]]]:
        """Per item, the stored posts sharing a band (the newest MAX_CLUSTER_CANDIDATES), in one query. The newest of
        each band are read first (a backward scan of the band's index stops after as many): the newest of their
        union are the newest of all, and a band shared by a million posts costs no more than a rare one."""
        found: list[list[tuple[bytes, int | None]]] = [[] for _ in items]
        wanted = [i for i, item in enumerate(items) if self.bands[i] and item.post.content_hash not in self.by_hash]
        if not wanted:
            return found
        index = [i for i in wanted for _ in self.bands[i]]
        bands = [band for i in wanted for band in self.bands[i]]
        for i, signature, cluster in self.conn.execute(
            f"""WITH wanted AS (SELECT i, array_agg(band) AS bands FROM unnest(%s::int[], %s::bigint[]) AS w (i, band)
                                GROUP BY i)
                SELECT w.i, s.signature, p.cluster_id FROM wanted w
                CROSS JOIN LATERAL (
                    SELECT DISTINCT x.post_id FROM unnest(w.bands) AS wb (band)
                    CROSS JOIN LATERAL (SELECT b.post_id FROM post_bands b WHERE b.band = wb.band
                                        ORDER BY b.post_id DESC LIMIT {MAX_CLUSTER_CANDIDATES}) x
                    ORDER BY x.post_id DESC LIMIT {MAX_CLUSTER_CANDIDATES}) c
                JOIN post_signatures s ON s.post_id = c.post_id JOIN posts p ON p.id = c.post_id
                ORDER BY w.i, c.post_id""",
            (index, bands),
        ):
            found[i].append((bytes(signature), cluster))
        return found

    def assign(self, post_id: int, item: MatchedPost) -> int:
        """The cluster of the poll's next new post (items in the order given to the constructor)."""
        index = self.next
        self.next += 1
        bands = self.bands[index]
        cluster = self.by_hash.get(item.post.content_hash)
        if cluster is None and bands:
            mine = {other for band in bands for other in self.by_band.get(band, ())}
            candidates = [*self.stored[index], *(self.signatures[other] for other in sorted(mine))]
            best: tuple[float, int | None] = (0.0, None)
            for other, other_cluster in candidates:
                score = dedupe.similarity(item.signature, other)
                if score >= dedupe.THRESHOLD and score > best[0]:
                    best = (score, other_cluster)
            cluster = best[1]
        cluster = cluster or post_id
        self.by_hash.setdefault(item.post.content_hash, cluster)
        if item.signature:
            self.signatures[post_id] = (item.signature, cluster)
            for band in bands:
                self.by_band.setdefault(band, []).append(post_id)
        return cluster

    def write(self) -> None:
        with self.conn.cursor() as cursor:
            _copy(cursor, "post_signatures (post_id, signature)", [(i, sig) for i, (sig, _) in self.signatures.items()])
            bands = sorted({(band, post_id) for band, ids in self.by_band.items() for post_id in ids})
            _copy(cursor, "post_bands (band, post_id)", bands)


def _copy(cursor: psycopg.Cursor[Any], table: str, rows: Sequence[Sequence[Any]]) -> None:
    """COPY new rows in (a poll's rows are new: no conflicts), several times faster than INSERTs."""
    if not rows:
        return
    with cursor.copy(f"COPY {table} FROM STDIN") as copy:  # our own table names
        for row in rows:
            copy.write_row(row)


def _link_parents(
    conn: psycopg.Connection[Any], by_key: dict[tuple[str, str], MatchedPost], ids: dict[tuple[str, str], int]
) -> None:
    wanted = {
        (source, item.post.parent_key)
        for (source, key), item in by_key.items()
        if item.post.parent_key is not None and (source, key) in ids
    }
    missing = [pair for pair in wanted if pair not in ids]
    parents = dict(ids)
    for source in {s for s, _ in missing}:
        keys = [k for s, k in missing if s == source]
        for post_id, key in conn.execute(
            "SELECT id, key FROM posts WHERE source = %s AND key = ANY(%s)", (source, keys)
        ):
            parents[(source, key)] = post_id
    links = []
    for (source, key), item in by_key.items():
        if item.post.parent_key is None or (source, key) not in ids:
            continue
        parent_id = parents.get((source, item.post.parent_key))
        if parent_id is not None and parent_id != ids[(source, key)]:
            links.append((parent_id, ids[(source, key)], parent_id))
    with conn.cursor() as cursor:
        cursor.executemany("UPDATE posts SET parent_id = %s WHERE id = %s AND parent_id IS DISTINCT FROM %s", links)


def reindex_stale(conn: psycopg.Connection[Any]) -> int:
    """Index again the posts that someone else's SQL inserted or edited (the trigger queued them)."""
    rows = conn.execute(
        """DELETE FROM posts_fts_stale WHERE post_id IN (SELECT post_id FROM posts_fts_stale LIMIT %s)
           RETURNING post_id""",
        (REINDEX_BATCH,),
    ).fetchall()
    if not rows:
        return 0
    posts = conn.execute("SELECT id, title, text FROM posts WHERE id = ANY(%s)", ([r[0] for r in rows],)).fetchall()
    with conn.cursor() as cursor:
        cursor.executemany(
            """INSERT INTO posts_fts (post_id, document) VALUES (%s, %s::tsvector)
               ON CONFLICT (post_id) DO UPDATE SET document = excluded.document""",
            [(post_id, document(title, text)) for post_id, title, text in posts],
        )
    return len(posts)
