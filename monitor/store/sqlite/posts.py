"""Posts: the write path of one poll (new and edited posts, their matches, the FTS rows, near-duplicate clusters).

The store only writes what it is handed: posts arrive normalised and matched; clusters are found here
because they need the stored signatures.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime

import msgspec

from monitor import dedupe
from monitor.store.api import KnownPost, SaveResult
from monitor.store.rows import ts
from monitor.store.sqlite import fts
from monitor.store.sqlite.base import StoreBase
from monitor.store.sqlite.clusters import PollClusters
from monitor.store.sqlite.sources import write_fetches, write_source
from monitor.types import FetchRecord, MatchedPost, Post, SourceState
from monitor.units import from_iso


def _extra(post: Post) -> str | None:
    return json.dumps(dict(post.extra), ensure_ascii=False, sort_keys=True) if post.extra else None


class PostsMixin(StoreBase):
    def known_posts(self, source: str, keys: Iterable[str]) -> dict[str, KnownPost]:
        """The stored posts of `source` among `keys`: what a poll needs to skip unchanged items."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, KnownPost] = {}
        with self.mapped(f"read the stored posts of {source}"):
            for start in range(0, len(wanted), 500):  # SQLite caps bound parameters per statement
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in self.conn.execute(
                    f"SELECT id, key, first_seen_at, content_hash FROM posts WHERE source = ? AND key IN ({marks})",
                    (source, *chunk),
                ):
                    found[row[1]] = KnownPost(row[0], from_iso(row[2]), row[3])
        return found

    def known_raw(self, source: str, limit: int) -> dict[bytes, str]:
        """raw digest -> key of the newest `limit` posts of `source` that have one (see the store interface)."""
        with self.mapped(f"read the raw digests of {source}"):
            rows = self.conn.execute(
                """SELECT raw_digest, key FROM (SELECT raw_digest, key FROM posts WHERE source = ?
                                                ORDER BY published_at DESC LIMIT ?)
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
        """One transaction: new and changed posts (with matches, FTS, clusters), the fetch log, the source row.

        A kill at any moment leaves either all of this poll or none of it.
        """
        with self.transaction(f"save the poll of {state.name}") as conn:
            result = self._save_posts(conn, posts, now)
            fetch_rows = list(fetches)
            if fetch_rows:  # credit the new posts to the last fetch, which delivered them
                fetch_rows[-1] = msgspec.structs.replace(fetch_rows[-1], new_posts=result.new_posts)
            write_fetches(conn, fetch_rows)
            newest = max((p.post.published_at for p in posts), default=None)
            if newest is not None and (state.last_post_at is None or newest > state.last_post_at):
                state = msgspec.structs.replace(state, last_post_at=newest)
            write_source(conn, state, source_type, source_url, now)
            return result

    def _save_posts(self, conn: sqlite3.Connection, posts: Sequence[MatchedPost], now: datetime) -> SaveResult:
        """A poll's posts in a few statements, whatever their number: one lookup of the stored rows, one read of
        the near-duplicate candidates, then each table written with one executemany."""
        if not posts:  # a 304 or an empty feed: no statement to run (a re-poll of 200 feeds ran 1,200 of them)
            return SaveResult(0, 0, 0, ())
        by_key: dict[tuple[str, str], MatchedPost] = {}
        for item in posts:  # a feed may list one item twice: the last copy wins
            by_key[(item.post.source, item.post.key)] = item
        stored = _stored_rows(conn, by_key)
        new_items = [(sk, item) for sk, item in by_key.items() if sk not in stored]
        changed = [
            (stored[sk][0], item)
            for sk, item in by_key.items()
            if sk in stored and stored[sk][1] != item.post.content_hash
        ]
        ids = {sk: row[0] for sk, row in stored.items()}
        bands = {sk: dedupe.band_keys(item.signature) for sk, item in new_items}
        clusters = PollClusters()
        if new_items:
            clusters.load(
                conn, (item.post.content_hash for _, item in new_items), (b for keys in bands.values() for b in keys)
            )
        next_id = (conn.execute("SELECT coalesce(max(id), 0) FROM posts").fetchone()[0]) + 1
        post_rows, fts_rows = [], []
        stamps: dict[datetime, str | None] = {}  # a poll's posts share their first_seen_at, often their times
        for offset, (sk, item) in enumerate(new_items):
            post, post_id = item.post, next_id + offset
            ids[sk] = post_id
            cluster = clusters.cluster_for(post_id, post.content_hash, item.signature, bands[sk])
            post_rows.append(
                (
                    post_id,
                    *sk,
                    post.url,
                    post.title,
                    post.text,
                    post.author,
                    _stamp(stamps, post.published_at),
                    _stamp(stamps, post.first_seen_at),
                    post.content_hash,
                    cluster,
                    _extra(post),
                    post.raw_digest,
                )
            )
            fts_rows.append((post_id, post.title, post.text))
        conn.executemany(
            """INSERT INTO posts (id, source, key, url, title, text, author, published_at,
                                  first_seen_at, content_hash, cluster_id, extra, raw_digest)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            post_rows,
        )
        if changed:
            conn.executemany(
                """UPDATE posts SET url = ?, title = ?, text = ?, author = ?, published_at = ?, updated_at = ?,
                                    content_hash = ?, extra = ?, raw_digest = ? WHERE id = ?""",
                [  # the digest follows the content it parsed to: an older one is no longer known
                    (
                        p.url,
                        p.title,
                        p.text,
                        p.author,
                        ts(p.published_at),
                        ts(now),
                        p.content_hash,
                        _extra(p),
                        p.raw_digest,
                        post_id,
                    )
                    for post_id, p in ((post_id, item.post) for post_id, item in changed)
                ],
            )
            conn.executemany("DELETE FROM matches WHERE post_id = ?", [(post_id,) for post_id, _ in changed])
        cluster_of = {row[0]: row[10] for row in post_rows}  # an edited post's matches take theirs by trigger
        written = [(ids[sk], item) for sk, item in new_items] + changed
        match_rows = [
            (post_id, m.topic, m.term, _stamp(stamps, item.post.published_at), cluster_of.get(post_id))
            for post_id, item in written
            for m in item.matches
        ]
        conn.executemany(
            "INSERT OR REPLACE INTO matches (post_id, topic, term, published_at, cluster_id) VALUES (?, ?, ?, ?, ?)",
            match_rows,
        )

        conn.executemany("INSERT INTO posts_fts (rowid, title, text) VALUES (?, ?, ?)", fts_rows)
        if fts_rows:  # new segments: merge the index once they hold a quarter of it (fts.py)
            fts.compact_if_due(conn)
        clusters.write(conn)
        self._link_parents(conn, by_key, ids, {ids[sk] for sk, _ in new_items} | {i for i, _ in changed})
        topics = {m.topic for _, item in written for m in item.matches}
        return SaveResult(len(new_items), len(changed), len(match_rows), tuple(sorted(topics)))

    def _link_parents(
        self,
        conn: sqlite3.Connection,
        by_key: dict[tuple[str, str], MatchedPost],
        ids: dict[tuple[str, str], int],
        written: set[int],
    ) -> None:
        """Comments (posts with a parent key) point at their article: in this poll, else stored before."""
        children = [
            (sk, item.post.parent_key)
            for sk, item in by_key.items()
            if item.post.parent_key is not None and ids.get(sk) in written
        ]
        if not children:
            return
        missing = {(sk[0], parent) for sk, parent in children if (sk[0], parent) not in ids}
        ids = {**ids, **{sk: row[0] for sk, row in _stored_rows(conn, dict.fromkeys(missing)).items()}}
        links = [
            (ids[(sk[0], parent)], ids[sk], ids[(sk[0], parent)])
            for sk, parent in children
            if (sk[0], parent) in ids and ids[(sk[0], parent)] != ids[sk]
        ]
        conn.executemany("UPDATE posts SET parent_id = ? WHERE id = ? AND parent_id IS NOT ?", links)


def _stamp(stamps: dict[datetime, str | None], when: datetime) -> str | None:
    """`ts(when)`, remembered for the rest of the poll."""
    text = stamps.get(when)
    if text is None:
        text = stamps[when] = ts(when)
    return text


def _stored_rows(conn: sqlite3.Connection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, str]]:
    """(id, content_hash) of the stored posts among (source, key) pairs: one statement per source and 500 keys."""
    by_source: dict[str, list[str]] = {}
    for source, key in keys:
        by_source.setdefault(source, []).append(key)
    found: dict[tuple[str, str], tuple[int, str]] = {}
    for source, wanted in by_source.items():
        for start in range(0, len(wanted), 500):  # SQLite caps bound parameters per statement
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for post_id, key, content_hash in conn.execute(
                f"SELECT id, key, content_hash FROM posts WHERE source = ? AND key IN ({marks})", (source, *chunk)
            ):
                found[(source, key)] = (post_id, content_hash)
    return found
