"""WAL checkpoints off the committing thread (monitor/store/sqlite/checkpoint.py): they happen, the WAL stays
bounded when they cannot keep up, closing stops them, and a kill at any moment loses no committed row."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from monitor.store import open_store
from monitor.store.sqlite import SqliteStore, checkpoint

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 40  # WAL pages, instead of 10,000: a few dozen transactions cross it
ROW = os.urandom(3_000).hex()  # about two pages per row


def writer(path: Path) -> SqliteStore:
    store = open_store(path)
    assert isinstance(store, SqliteStore)
    store.conn.execute("CREATE TABLE IF NOT EXISTS probe (n INTEGER PRIMARY KEY, body TEXT)")
    return store


def write(store: SqliteStore, n: int) -> None:
    with store.transaction() as conn:
        conn.execute("INSERT INTO probe (n, body) VALUES (?, ?)", (n, ROW))


def checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "monitor-checkpoint"]


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint, "LIMIT_PAGES", LIMIT)
    monkeypatch.setattr(checkpoint, "INLINE_PAGES", 3 * LIMIT)


@pytest.mark.usefixtures("small_limits")
def test_the_thread_checkpoints_and_the_wal_starts_over(tmp_path: Path) -> None:
    store = writer(tmp_path / "s.db")
    try:
        assert store.checkpointer is not None
        assert store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # SQLite's own is off
        most = 0
        for n in range(300):
            write(store, n)
            most = max(most, store.checkpointer.wal_frames()[0])
            time.sleep(0.002)  # polls' commits come a few ms apart: the thread gets the GIL between them
        assert store.checkpointer.checkpoints > 0
        assert most < 2 * LIMIT  # started over again and again: never near 300 rows' worth of pages
        assert len(checkpoint_threads()) == 1
    finally:
        store.close()
    assert checkpoint_threads() == []  # closing stopped it
    with writer(tmp_path / "s.db") as again:
        assert again.conn.execute("SELECT count(*) FROM probe").fetchone()[0] == 300


@pytest.mark.usefixtures("small_limits")
def test_without_the_thread_the_committing_connection_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoint.Checkpointer, "_run", lambda self: None)  # a thread that ends at once
    with writer(tmp_path / "s.db") as store:
        assert store.checkpointer is not None
        most = 0
        for n in range(300):
            write(store, n)
            most = max(most, store.checkpointer.wal_frames()[0])
        assert store.checkpointer.checkpoints == 0
        assert most < LIMIT + 10  # checkpointed at the limit by the committing connection, as SQLite's own would


@pytest.mark.usefixtures("small_limits")
def test_a_thread_that_cannot_keep_up_leaves_the_wal_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread alive but stuck in a round (a slow disk): past INLINE_PAGES the committing connection checkpoints
    itself, so the WAL stops growing; without that bound it would hold all 300 rows' pages."""
    stuck = threading.Event()
    rounds = []

    def round_that_hangs(self: checkpoint.Checkpointer, conn: object) -> None:
        rounds.append(1)
        stuck.wait(30)  # bounded: released below

    monkeypatch.setattr(checkpoint.Checkpointer, "_round", round_that_hangs)
    store = writer(tmp_path / "s.db")
    try:
        assert store.checkpointer is not None
        most = 0
        for n in range(300):
            write(store, n)
            most = max(most, store.checkpointer.wal_frames()[0])
            time.sleep(0.002)
        assert rounds  # the thread did start a round, and never finished it
        assert checkpoint_threads()[0].is_alive()
        assert most < 3 * LIMIT + 10  # INLINE_PAGES plus one transaction's pages
    finally:
        stuck.set()
        store.close()


def test_a_store_that_writes_little_starts_no_thread(tmp_path: Path) -> None:
    with writer(tmp_path / "s.db") as store:
        for n in range(20):
            write(store, n)
        assert checkpoint_threads() == []


def test_a_read_only_store_has_no_checkpointer(tmp_path: Path) -> None:
    writer(tmp_path / "s.db").close()
    with open_store(tmp_path / "s.db", readonly=True) as reader:
        assert isinstance(reader, SqliteStore)
        assert reader.checkpointer is None


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")


def descriptors_under(folder: Path) -> dict[str, Path]:
    """This process's open descriptors of files under `folder` (the listing's own comes and goes: skipped)."""
    found = {}
    for entry in Path("/proc/self/fd").iterdir():
        try:
            target = entry.readlink()
        except OSError:
            continue
        if target.is_relative_to(folder):
            found[entry.name] = target
    return found


@needs_proc
def test_the_store_file_is_synced_through_sqlites_own_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    synced: list[Path] = []
    real_fdatasync = os.fdatasync

    def recording_fdatasync(fd: int) -> None:
        synced.append(Path(f"/proc/self/fd/{fd}").readlink())
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", recording_fdatasync)
    with writer(path) as store:
        write(store, 1)
        before = descriptors_under(tmp_path)
        assert checkpoint.sync_store_file(path)
        assert descriptors_under(tmp_path) == before  # it opened none of its own
    assert synced == [path.resolve()]
    assert not checkpoint.sync_store_file(path)  # no connection holds the file any more: nothing to sync through
    assert synced == [path.resolve()]


@needs_proc
def test_syncing_the_store_file_keeps_sqlites_locks(tmp_path: Path) -> None:
    """Closing a descriptor of our own would drop the locks SQLite holds on the file in this process: another
    process could then switch the store out of WAL mode under a connection that is reading it (it did, when the
    sync opened and closed a descriptor of its own)."""
    path = tmp_path / "s.db"
    with writer(path) as store:
        write(store, 1)
        store.conn.execute("BEGIN")
        assert store.conn.execute("SELECT count(*) FROM probe").fetchone() == (1,)  # a read transaction, held
        assert checkpoint.sync_store_file(path)
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sqlite3, sys\n"
                "conn = sqlite3.connect(sys.argv[1], timeout=0.2, isolation_level=None)\n"
                "try:\n"
                "    print(conn.execute('PRAGMA journal_mode = DELETE').fetchone()[0])\n"
                "except sqlite3.OperationalError as exc:\n"
                "    print('refused:', exc)\n",
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        store.conn.execute("COMMIT")
        assert other.stdout.strip() == "refused: database is locked"
        assert store.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_wal_index_descriptor_is_closed_after_the_connection(tmp_path: Path) -> None:
    """Closing it first would drop the lock SQLite holds on the WAL index while its connection is still open."""
    store = writer(tmp_path / "s.db")
    write(store, 1)
    assert store.checkpointer is not None
    assert store.checkpointer.wal_frames()[0] > 0  # the descriptor is open now
    held_at_close: list[bool] = []
    connection = store.conn

    class Closing:
        def close(self) -> None:
            assert store.checkpointer is not None
            held_at_close.append(store.checkpointer._index_fd is not None)
            connection.close()

    store.conn = Closing()  # type: ignore[assignment]
    store.close()
    assert held_at_close == [True]
    assert store.checkpointer._index_fd is None


def test_a_round_syncs_the_store_file_before_its_full_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The FULL checkpoint holds writers off: the flush of what the PASSIVE ones copied happens before it."""
    events: list[str] = []

    def recording_sync(path: Path) -> bool:
        events.append(f"sync {path.name}")
        return True

    monkeypatch.setattr(checkpoint, "sync_store_file", recording_sync)
    with writer(tmp_path / "s.db") as store:
        for n in range(20):
            write(store, n)
        assert store.checkpointer is not None
        conn = sqlite3.connect(str(tmp_path / "s.db"), isolation_level=None)
        conn.set_trace_callback(lambda sql: events.append(sql) if "wal_checkpoint" in sql else None)
        try:
            store.checkpointer._round(conn)
        finally:
            conn.close()
        assert store.checkpointer.wal_frames()[1] == store.checkpointer.wal_frames()[0]  # all copied
    assert events == ["PRAGMA wal_checkpoint(PASSIVE)", "sync s.db", "PRAGMA wal_checkpoint(FULL)"]


def test_what_polls_commit_during_the_sync_is_copied_before_the_full_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync takes long on a large store (0.6-0.8 s at a million posts) and polls go on committing: more than a
    short tail committed meanwhile goes through another PASSIVE checkpoint (and sync) first, so the FULL one,
    which holds writers off, is left only a short tail."""
    events: list[str] = []
    monkeypatch.setattr(checkpoint, "TAIL_PAGES", 10)
    with writer(tmp_path / "s.db") as store:
        for n in range(20):
            write(store, n)
        checkpointer = store.checkpointer
        assert checkpointer is not None
        tails: list[int] = []

        def sync_while_polls_commit(path: Path) -> bool:
            events.append("sync")
            if events.count("sync") == 1:  # the first, long sync: 20 rows (some 40 pages) are committed meanwhile
                for n in range(100, 120):
                    write(store, n)
            frames, copied = checkpointer.wal_frames()
            tails.append(frames - copied)
            return True

        monkeypatch.setattr(checkpoint, "sync_store_file", sync_while_polls_commit)
        conn = sqlite3.connect(str(tmp_path / "s.db"), isolation_level=None)
        conn.set_trace_callback(lambda sql: events.append(sql) if "wal_checkpoint" in sql else None)
        try:
            checkpointer._round(conn)
        finally:
            conn.close()
        frames, copied = checkpointer.wal_frames()
    passive, full = "PRAGMA wal_checkpoint(PASSIVE)", "PRAGMA wal_checkpoint(FULL)"
    assert events == [passive, "sync", passive, "sync", full], events
    assert tails[0] > 10 and tails[1] <= 10, tails  # the FULL one was left a short tail, not the 20 rows
    assert copied == frames


# A writer with small limits: prints each committed n, forever (the test kills it).
WRITER = f"""
import sys
from pathlib import Path
from monitor.store.sqlite import checkpoint
checkpoint.LIMIT_PAGES, checkpoint.INLINE_PAGES = {LIMIT}, {3 * LIMIT}
from tests.test_store_checkpoint import writer, write
store = writer(Path(sys.argv[1]))
start = store.conn.execute("SELECT coalesce(max(n), -1) + 1 FROM probe").fetchone()[0]
for n in range(start, start + 100_000):
    write(store, n)
    print(n, flush=True)
"""


@pytest.mark.slow
def test_kills_during_checkpoints_lose_no_committed_row(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    rng = random.Random(11)
    committed = -1
    for round_ in range(8):
        with subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        ) as proc:
            assert proc.stdout is not None
            try:
                wanted = rng.randrange(60, 400)  # commits this round before the kill: several checkpoints in
                for _ in range(wanted):
                    line = proc.stdout.readline()
                    assert line, proc.stderr.read() if proc.stderr else ""
                    committed = int(line)
                time.sleep(rng.uniform(0, 0.05))
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                for line in proc.stdout.read().splitlines():  # committed and printed before the kill landed
                    committed = int(line)
            finally:
                proc.kill()
                proc.wait(timeout=30)
        with writer(path) as store:
            assert store.check() == []
            rows = store.conn.execute("SELECT count(*), max(n) FROM probe").fetchone()
        assert rows[1] >= committed, f"round {round_}: row {committed} was committed, the store ends at {rows[1]}"
        assert rows[0] == rows[1] + 1  # every row up to the last, each once
