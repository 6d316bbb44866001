"""Posts: the write path of one poll (new and edited posts, their matches, the FTS rows, near-duplicate clusters).

The store only writes what it is handed: posts arrive normalised and matched; clusters are found here
because they need the stored signatures.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from monitor import dedupe
from monitor.store.api import KnownPost, SaveResult
from monitor.store.rows import ts
from monitor.store.sqlite.base import StoreBase
from monitor.store.sqlite.sources import write_fetches, write_source
from monitor.types import FetchRecord, MatchedPost, Post, SourceState
from monitor.units import from_iso

# Candidates read per new post from the band index: enough for any real story, bounded for boilerplate.
MAX_CLUSTER_CANDIDATES = 64


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
                fetch_rows[-1] = replace(fetch_rows[-1], new_posts=result.new_posts)
            write_fetches(conn, fetch_rows)
            newest = max((p.post.published_at for p in posts), default=None)
            if newest is not None and (state.last_post_at is None or newest > state.last_post_at):
                state = replace(state, last_post_at=newest)
            write_source(conn, state, source_type, source_url, now)
            return result

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
                        ts(post.published_at),
                        ts(post.first_seen_at),
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
                        ts(post.published_at),
                        ts(now),
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
