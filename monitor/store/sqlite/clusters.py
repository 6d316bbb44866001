"""Near-duplicate clusters of one poll's new posts: candidates read once per poll, bounded per band bucket.

A new post joins the cluster of a stored (or same-poll) post with the same content hash, else of the most
similar candidate at or above `dedupe.THRESHOLD`. Candidates are the posts sharing an LSH band with it, but
only the `BAND_CANDIDATES` newest of each band bucket: boilerplate sentences fill some buckets with thousands
of unrelated posts, and reading them all made a poll's cost grow with the store. A real copy shares several
bands with its original (at similarity 0.9, 4 of the 10 on average), so it is still found through the
buckets that boilerplate has not filled. A post is compared with at most `MAX_CANDIDATES` others.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence

from monitor import dedupe
from monitor.store.sqlite import bands as band_levels

BAND_CANDIDATES = 8  # newest members of one band bucket that a new post is compared with
MAX_CANDIDATES = dedupe.BANDS * BAND_CANDIDATES
_CHUNK = 500  # bound parameters per IN (...) list

# Two statements for all the poll's bands: each band's newest members across the band levels (bands.py), then the
# signatures of their union, each read once and in id order. Not the candidates' clusters: that is a random page
# of posts per candidate, and only the few candidates a new post joins need theirs (`_cluster_of`). Measured at a
# million posts, 1,000 bands: 40-50 ms, against 80-190 ms for one statement joining members, signatures and posts
# per band row.
_SIGNATURES = "SELECT post_id, signature FROM post_signatures WHERE post_id IN (SELECT value FROM json_each(?1))"


class Candidate:
    __slots__ = ("cluster", "post_id", "signature")

    def __init__(self, post_id: int, signature: bytes, cluster: int | None) -> None:
        self.post_id = post_id
        self.signature = signature
        self.cluster = cluster  # None for a stored post until a new post joins it (read then)


class PollClusters:
    """Finds each new post's cluster for one poll, then writes the poll's signature and band rows in one pass.

    `load` reads, for every content hash and band of the poll's new posts, what the store holds (two or three
    statements per poll, not per post); `cluster_for` then reads only the cluster of a stored post a new one joins,
    and sees the poll's earlier posts.
    """

    def __init__(self) -> None:
        self.by_hash: dict[str, int] = {}  # content hash -> cluster (stored, then this poll's)
        self.stored: dict[int, list[Candidate]] = {}  # band -> its newest stored members, newest first
        self.batch: dict[int, list[Candidate]] = {}  # band -> this poll's members, oldest first
        self.new_rows: list[tuple[int, bytes]] = []
        self.conn: sqlite3.Connection | None = None

    def load(self, conn: sqlite3.Connection, hashes: Iterable[str], bands: Iterable[int]) -> None:
        self.conn = conn
        wanted = list(dict.fromkeys(hashes))
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for content_hash, cluster, _ in conn.execute(
                f"""SELECT content_hash, cluster_id, min(id) FROM posts
                    WHERE content_hash IN ({marks}) AND cluster_id IS NOT NULL GROUP BY content_hash""",
                chunk,
            ):
                self.by_hash[content_hash] = int(cluster)
        band_list = sorted(set(bands))
        if not band_list:
            return
        members = dict(band_levels.newest_members(conn, band_list, BAND_CANDIDATES))
        wanted_ids = sorted({post_id for ids in members.values() for post_id in ids})
        found = {
            post_id: Candidate(post_id, signature, None)
            for post_id, signature in conn.execute(_SIGNATURES, (json.dumps(wanted_ids),))
        }
        for band, ids in members.items():  # newest first; a post whose signature is gone (deleted) is left out
            stored = [found[i] for i in sorted(ids, reverse=True) if i in found]
            if stored:
                self.stored[band] = stored

    def candidates(self, bands: Sequence[int]) -> list[Candidate]:
        """The newest `BAND_CANDIDATES` members of each band (this poll's first: they are newer), deduplicated."""
        found: dict[int, Candidate] = {}
        for band in bands:
            batch, stored = self.batch.get(band), self.stored.get(band)
            if batch is None and stored is None:
                continue  # most bands of a post are its own: nothing to merge
            members = [*reversed(batch or ()), *(stored or ())][:BAND_CANDIDATES]
            for member in members:
                found.setdefault(member.post_id, member)
        return list(found.values())

    def cluster_for(self, post_id: int, content_hash: str, signature: bytes, bands: Sequence[int]) -> int:
        """The cluster of post `post_id` (its own id when nothing is near), remembered for the poll's later posts."""
        cluster = self.by_hash.get(content_hash)
        found = self.candidates(bands) if cluster is None and signature else None
        if found:  # most posts share no band with any other: nothing to compare
            at, score = dedupe.best_match(signature, [c.signature for c in found])
            if score >= dedupe.THRESHOLD:
                cluster = self._cluster_of(found[at])
        cluster = cluster if cluster is not None else post_id
        self.by_hash.setdefault(content_hash, cluster)
        if signature:
            self.new_rows.append((post_id, signature))
            member = Candidate(post_id, signature, cluster)
            for band in bands:
                self.batch.setdefault(band, []).append(member)
        return cluster

    def _cluster_of(self, member: Candidate) -> int:
        """The cluster of a candidate, read from posts the first time a stored one is joined."""
        if member.cluster is None:
            assert self.conn is not None  # stored candidates come from `load`
            row = self.conn.execute("SELECT cluster_id FROM posts WHERE id = ?", (member.post_id,)).fetchone()
            member.cluster = row[0] if row is not None and row[0] is not None else member.post_id
        return member.cluster

    def write(self, conn: sqlite3.Connection) -> None:
        """The poll's signature and band rows (sorted band keys touch each index page once, not once per post)."""
        conn.executemany("INSERT INTO post_signatures (post_id, signature) VALUES (?, ?)", self.new_rows)
        band_levels.write(conn, sorted((band, m.post_id) for band, members in self.batch.items() for m in members))
