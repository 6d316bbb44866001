"""Band rows written behind: a poll's LSH band rows go to a small level first and reach the big index in bulk.

At a million posts, the ten band rows of each new post landed at random places of a B-tree of ten million rows,
so a poll dirtied thousands of its pages (its COMMIT cost ~320 µs per new post). Now a poll writes its rows into
`post_bands_recent`, a level small enough to stay in cache. When that holds more than `RECENT_SPAN` posts'
rows, they all move to `post_bands_mid`, and when that holds more than `MID_SPAN` posts', it all moves into
`post_bands`. A move is one INSERT ... SELECT in band order and one DELETE: sorted, it touches each page of
the level below once, not once per row. Moves run in the poll's own transaction: a kill leaves all or none.

Every level has post_bands' shape, (band, post_id) WITHOUT ROWID. A post's rows are in exactly one level, and
as a move takes a whole level, each level's posts are newer than those of the level below: a band's newest
members are read level by level, newest level first (`NEWEST_PER_BAND`).
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence

from monitor import dedupe

LEVELS = ("post_bands_recent", "post_bands_mid", "post_bands")  # newest first; each moves into the next
RECENT_SPAN = 2_000  # posts whose rows stay in the recent level before they move down
MID_SPAN = 100_000  # posts whose rows stay in the middle level before they move into post_bands

# The newest ?2 members of each band in ?1 (a JSON list), across the levels: each level's newest ?2 (a backward
# read of that many index rows, however full the bucket), newest level first, the first ?2 of them kept. As a
# level's posts are all newer than the next level's and no row is in two, that is exactly what one table holding
# every row answers. No ORDER BY over the union: its sorter per band cost a third more than the three reads (at a
# million posts, a poll of 50 posts: 5.5 ms against 4.5 ms without it and 3.8 ms for one table).
_LEVEL_NEWEST = "SELECT * FROM (SELECT post_id FROM {} WHERE band = j.value ORDER BY post_id DESC LIMIT ?2)"


@functools.cache
def newest_per_band_sql(levels: tuple[str, ...] = LEVELS) -> str:
    """The statement reading the newest members of each band from `levels` (see above)."""
    return f"""
    SELECT j.value, (SELECT json_group_array(x.post_id) FROM
                        ({" UNION ALL ".join(map(_LEVEL_NEWEST.format, levels))} LIMIT ?2) AS x)
    FROM json_each(?1) AS j"""


NEWEST_PER_BAND = newest_per_band_sql()


def newest_members(conn: sqlite3.Connection, bands: Sequence[int], limit: int) -> Iterator[tuple[int, list[int]]]:
    """(band, its newest `limit` member ids) for each of `bands` that has members. Levels with no rows are left
    out of the statement, and bands with no members are dropped before decoding: a cold poll's store has no
    bottom level yet, and most bands of a new post are its own (a third of the seeks and most of the rows)."""
    if not bands:
        return
    levels = tuple(level for level in LEVELS if conn.execute(f"SELECT 1 FROM {level} LIMIT 1").fetchone())
    if not levels:
        return
    for band, ids in conn.execute(newest_per_band_sql(levels), (json.dumps(list(bands)), limit)):
        if ids != "[]":
            yield band, json.loads(ids)


def write(conn: sqlite3.Connection, rows: Iterable[tuple[int, int]]) -> None:
    """A poll's (band, post_id) rows into the recent level, then the moves that are due (in the caller's
    transaction). Rows sorted by band touch each page of the level once."""
    conn.executemany(f"INSERT OR IGNORE INTO {LEVELS[0]} (band, post_id) VALUES (?, ?)", rows)
    if _rows_in(conn, LEVELS[0]) > RECENT_SPAN * dedupe.BANDS:
        _move(conn, LEVELS[0], LEVELS[1])
        if _rows_in(conn, LEVELS[1]) > MID_SPAN * dedupe.BANDS:
            _move(conn, LEVELS[1], LEVELS[2])


def _rows_in(conn: sqlite3.Connection, level: str) -> int:
    # A signed post has one row per band: rows stand for posts without a scan for distinct ids.
    return int(conn.execute(f"SELECT count(*) FROM {level}").fetchone()[0])


def _move(conn: sqlite3.Connection, level: str, into: str) -> None:
    conn.execute(
        f"INSERT OR IGNORE INTO {into} (band, post_id) SELECT band, post_id FROM {level} ORDER BY band, post_id"
    )
    conn.execute(f"DELETE FROM {level}")
