"""Band rows written behind (monitor/store/sqlite/bands.py): the same candidates and clusters as one table gives,
moves that keep every row exactly once (a kill mid-move included), a store of the previous schema migrated,
and every level copied by `monitor migrate-store`."""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor import dedupe
from monitor.store import StoreURL, open_store
from monitor.store.sqlite import SqliteStore, bands
from monitor.store.sqlite.clusters import BAND_CANDIDATES, PollClusters
from monitor.types import MatchedPost, SourceState
from tests.conftest import NOW
from tests.test_store import post

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"RECENT_SPAN": 3, "MID_SPAN": 12}  # posts per level: moves every few polls, a mid move every few moves
ONE_TABLE = {"RECENT_SPAN": 10**9, "MID_SPAN": 10**9}  # every row stays in one level: the oracle


def signature(values: list[int]) -> bytes:
    return bytes([dedupe.FORMAT]) + struct.pack(f"<{dedupe.NUM_PERM}I", *values)


def crafted(key: str, values: list[int] | None) -> MatchedPost:
    p = post(key, title=key, text=f"text of {key}")
    return MatchedPost(p, (), signature(values) if values is not None else b"")


def workload(seed: int, polls: int) -> Iterator[list[MatchedPost]]:
    """Polls of 1-5 posts: new stories, copies of any earlier story (often one long moved down), boilerplate
    posts sharing one band with an earlier story (they fill its bucket past BAND_CANDIDATES), unsigned posts."""
    rng = random.Random(seed)
    stories: list[list[int]] = []
    n = 0
    for _ in range(polls):
        items = []
        for _ in range(rng.randint(1, 5)):
            n += 1
            kind = rng.random() if stories else 0.0
            if kind < 0.4:
                values = [rng.randrange(2**32) for _ in range(dedupe.NUM_PERM)]
                stories.append(values)
            elif kind < 0.7:  # a copy: a few minima differ (similarity >= 120/128), some bands still shared
                values = rng.choice(stories)[:]
                for at in rng.sample(range(dedupe.NUM_PERM), rng.randint(1, 8)):
                    values[at] ^= 1 + rng.randrange(2**16)
            elif kind < 0.95:  # boilerplate: one band of a story, nothing else in common
                band = rng.randrange(dedupe.BANDS) if rng.random() < 0.5 else 0
                base = rng.choice(stories[:3])
                values = [rng.randrange(2**32) for _ in range(dedupe.NUM_PERM)]
                at = band * dedupe.ROWS
                values[at : at + dedupe.ROWS] = base[at : at + dedupe.ROWS]
            else:
                values = None
            items.append(crafted(f"p{n}", values))
        yield items


def poll(store: SqliteStore, posts: list[MatchedPost]) -> None:
    store.save_poll(
        state=SourceState(name="feed-a"), source_type="feed", source_url=None, posts=posts, fetches=(), now=NOW
    )


def spans(monkeypatch: pytest.MonkeyPatch, values: dict[str, int]) -> None:
    for name, value in values.items():
        monkeypatch.setattr(bands, name, value)


def open_sqlite_store(path: Path) -> SqliteStore:
    store = open_store(path)
    assert isinstance(store, SqliteStore)
    return store


def level_rows(conn: sqlite3.Connection) -> dict[str, list[tuple[int, int]]]:
    return {level: conn.execute(f"SELECT band, post_id FROM {level}").fetchall() for level in bands.LEVELS}


def assert_exact(conn: sqlite3.Connection) -> None:
    """Every signed post's band rows exist exactly once, in one level; levels are newest first by id."""
    rows = level_rows(conn)
    every = [row for level in bands.LEVELS for row in rows[level]]
    assert len(every) == len(set(every)), "a row in two levels"
    expected = {
        (band, post_id)
        for post_id, sig in conn.execute("SELECT post_id, signature FROM post_signatures")
        for band in dedupe.band_keys(sig)
    }
    assert set(every) == expected
    signed = conn.execute("SELECT count(*) FROM post_signatures WHERE length(signature) > 0").fetchone()[0]
    assert len(every) == signed * dedupe.BANDS
    owner: dict[int, str] = {}
    for level in bands.LEVELS:
        for _, post_id in rows[level]:
            assert owner.setdefault(post_id, level) == level, f"post {post_id} split across levels"
    ids = [{post_id for _, post_id in rows[level]} for level in bands.LEVELS]
    for newer, older in itertools.pairwise(ids):
        if newer and older:
            assert min(newer) > max(older)


def clusters(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT key, cluster_id FROM posts"))


def newest_per_band(conn: sqlite3.Connection) -> dict[int, list[int]]:
    """What `PollClusters.load` reads for every band in the store."""
    every = {band for rows in level_rows(conn).values() for band, _ in rows}
    found = PollClusters()
    found.load(conn, (), every)
    return {band: [c.post_id for c in members] for band, members in found.stored.items()}


def oracle_newest(conn: sqlite3.Connection) -> dict[int, list[int]]:
    """The same from every row at once, as one table holds them."""
    members: dict[int, list[int]] = {}
    for rows in level_rows(conn).values():
        for band, post_id in rows:
            members.setdefault(band, []).append(post_id)
    return {band: sorted(ids, reverse=True)[:BAND_CANDIDATES] for band, ids in members.items()}


def test_levels_give_the_candidates_and_clusters_of_one_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    polls = list(workload(seed=1, polls=80))
    spans(monkeypatch, ONE_TABLE)
    with open_sqlite_store(tmp_path / "one.db") as one:
        for items in polls:
            poll(one, items)
        expected = clusters(one.conn)
        one_newest = newest_per_band(one.conn)
        assert one.conn.execute("SELECT count(*) FROM post_bands_mid").fetchone()[0] == 0
    spans(monkeypatch, SMALL)
    seen_in = set()
    with open_sqlite_store(tmp_path / "levels.db") as levelled:
        for items in polls:
            poll(levelled, items)
            seen_in |= {level for level, rows in level_rows(levelled.conn).items() if rows}
            assert_exact(levelled.conn)
            assert newest_per_band(levelled.conn) == oracle_newest(levelled.conn)  # full buckets across levels
        assert seen_in == set(bands.LEVELS)  # every level was used
        assert clusters(levelled.conn) == expected
        assert newest_per_band(levelled.conn) == one_newest == oracle_newest(levelled.conn)
    joined = sum(1 for key, cluster in expected.items() if int(key[1:]) != cluster)
    assert joined > 20  # the workload has copies found, so the comparison says something


@pytest.mark.parametrize("level", ["post_bands_mid", "post_bands"])
def test_a_copy_of_a_post_moved_down_is_still_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    spans(monkeypatch, SMALL)
    rng = random.Random(3)
    story = [rng.randrange(2**32) for _ in range(dedupe.NUM_PERM)]
    with open_sqlite_store(tmp_path / "s.db") as store:
        poll(store, [crafted("story", story)])
        n = 0
        while store.conn.execute(f"SELECT count(*) FROM {level} WHERE post_id = 1").fetchone()[0] == 0:
            n += 1
            assert n < 100  # bounded: a mid move needs MID_SPAN posts
            poll(store, [crafted(f"other{n}", [rng.randrange(2**32) for _ in range(dedupe.NUM_PERM)])])
        copy = story[:]
        copy[5] ^= 1  # band 0 differs, the other nine are the story's
        poll(store, [crafted("copy", copy)])
        found = clusters(store.conn)
        assert found["copy"] == found["story"] == 1
        assert_exact(store.conn)


def test_many_polls_keep_every_band_row_exactly_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spans(monkeypatch, {"RECENT_SPAN": 7, "MID_SPAN": 40})
    with open_sqlite_store(tmp_path / "s.db") as store:
        for items in workload(seed=2, polls=150):
            poll(store, items)
        assert_exact(store.conn)
        rows = level_rows(store.conn)
        assert len(rows["post_bands"]) > 0 and len(rows["post_bands_recent"]) <= (7 + 5) * dedupe.BANDS
        assert len(rows["post_bands_mid"]) <= (40 + 7 + 5) * dedupe.BANDS


def test_a_store_of_the_previous_schema_keeps_its_rows_and_clusters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls = list(workload(seed=4, polls=90))
    before, after = polls[:45], polls[45:]
    spans(monkeypatch, ONE_TABLE)
    with open_sqlite_store(tmp_path / "one.db") as one:
        for items in polls:
            poll(one, items)
        expected = clusters(one.conn)
    path = tmp_path / "old.db"
    with open_sqlite_store(path) as old:
        for items in before:
            poll(old, items)
    # As the previous version left it: every band row in post_bands, no levels, 0009 not applied.
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("INSERT INTO post_bands SELECT band, post_id FROM post_bands_recent")
    conn.execute("DROP TABLE post_bands_recent")
    conn.execute("DROP TABLE post_bands_mid")
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = '0009_band_levels'")
    old_rows = sorted(conn.execute("SELECT band, post_id FROM post_bands"))
    conn.close()
    assert old_rows
    spans(monkeypatch, SMALL)
    with open_sqlite_store(path) as migrated:
        assert sorted(migrated.conn.execute("SELECT band, post_id FROM post_bands")) == old_rows
        assert level_rows(migrated.conn)["post_bands_recent"] == []
        assert_exact(migrated.conn)
        for items in after:  # copies of posts stored before the migration among them
            poll(migrated, items)
            assert_exact(migrated.conn)
        assert clusters(migrated.conn) == expected
        applied = [r[0] for r in migrated.conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
        assert applied[-1] == "0009_band_levels"


# A poller in its own process: polls of 30 posts, forever (bounded), with spans that make moves frequent and the
# middle level's large (30,000 rows); each move announced on stdout before it starts and after it ends.
POLLER = """
import random, sys
from pathlib import Path
from monitor.store import open_store
from monitor.store.sqlite import bands
from tests.test_store_bands import crafted, poll
bands.RECENT_SPAN, bands.MID_SPAN = 60, 3_000
move = bands._move
def announced(conn, level, into):
    print("moving", level, flush=True)
    move(conn, level, into)
    print("moved", level, flush=True)
bands._move = announced
store = open_store(Path(sys.argv[1]))
rng = random.Random(int(sys.argv[2]))
start = store.conn.execute("SELECT coalesce(max(id), 0) FROM posts").fetchone()[0]
print("ready", flush=True)
for n in range(start, start + 300_000, 30):
    poll(store, [crafted(f"k{n + i}", [rng.randrange(2**32) for _ in range(128)]) for i in range(30)])
"""


@pytest.mark.slow
def test_a_kill_mid_move_leaves_every_band_row_exactly_once(tmp_path: Path) -> None:
    """SIGKILLs of a poller: in even rounds at a random moment, in odd ones the instant it starts a move of the
    middle level into post_bands (the largest move); after each, every post's band rows are there exactly once."""
    path = tmp_path / "killed.db"
    rng = random.Random(7)
    in_move = 0
    for round_ in range(10):
        errors = tmp_path / f"poller{round_}.err"
        with (
            errors.open("w") as stderr,
            subprocess.Popen(
                [sys.executable, "-c", POLLER, str(path), str(round_)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            ) as proc,
        ):
            try:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "ready", errors.read_text()
                if round_ % 2 == 0:
                    time.sleep(rng.uniform(0.2, 1.5))
                else:
                    for _ in range(10_000):  # bounded: a middle move comes every 100 polls or so
                        line = proc.stdout.readline()
                        if not line or line.startswith("moving post_bands_mid"):
                            break
                    assert line, errors.read_text()
                assert proc.poll() is None, errors.read_text()  # killed while polling, not after a crash
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                rest = proc.stdout.read().splitlines()
                in_move += round_ % 2 == 1 and "moved post_bands_mid" not in rest
            finally:
                proc.kill()
                proc.wait(timeout=30)
        with open_sqlite_store(path) as store:
            assert_exact(store.conn)
    with open_sqlite_store(path) as store:
        posts = store.conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    assert in_move >= 1  # at least one kill landed inside a move (the announced one had not ended)
    assert posts > 3_000


def test_migrate_store_copies_every_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: StoreURL) -> None:
    from monitor.store.postgres import PostgresStore  # only with psycopg (the PostgreSQL extra)
    from monitor.store.postgres.migrate import copy_sqlite

    spans(monkeypatch, SMALL)
    path = tmp_path / "s.db"
    with open_sqlite_store(path) as store:
        for items in workload(seed=5, polls=200):  # until every level holds rows
            poll(store, items)
            rows = level_rows(store.conn)
            if all(rows.values()):
                break
    assert all(rows.values())
    every = sorted(row for level in bands.LEVELS for row in rows[level])
    target = open_store(pg_url)
    assert isinstance(target, PostgresStore)
    with target:
        copied = {c.table: c.rows for c in copy_sqlite(path, target)}
        with target.transaction("read the copy") as conn:
            in_pg = sorted(tuple(r) for r in conn.execute("SELECT band, post_id FROM post_bands"))
    assert copied["post_bands"] == len(every)
    assert in_pg == every
