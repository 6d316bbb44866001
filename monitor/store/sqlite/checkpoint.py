"""WAL checkpoints on a thread of their own, so a poll's COMMIT never waits for one.

SQLite's automatic checkpoint runs inside the COMMIT that crosses the WAL limit: it copies every page the WAL holds
back into the store and fsyncs it. At a million posts that COMMIT took 600-700 ms (a poll's others 1-2 ms;
`bench/band_levels.py`), time in which the event loop served no other source. Here the writing connection has
automatic checkpoints off; after each COMMIT, `after_commit` reads how many pages the WAL holds (from the WAL
index's header, 100 bytes of the -shm file: not the WAL file's size, which stays large after the WAL starts over)
and, past `LIMIT_PAGES`, wakes a thread that runs a PASSIVE checkpoint on a connection of its own. PASSIVE never
waits for a writer and never blocks one, and sqlite3 releases the GIL while it works, so polls go on meanwhile on
the other core.

The WAL file starts over only when a checkpoint has copied all of it before the next write, which a PASSIVE one
seldom does while polls keep committing. So the thread repeats it until the pages committed meanwhile are a short
tail (`TAIL_PAGES`), then copies that tail with a FULL checkpoint, which holds writers off while it works (briefly:
the bulk is copied and synced by then), for at most `_HOLD_S` more when a reader is slow to move on.

SQLite syncs the store file at the end of a checkpoint only when that checkpoint reached the WAL's end, which a
PASSIVE one overtaken by a COMMIT has not: so the FULL one inherited the flush of every page the PASSIVE ones had
copied, with writers held off. At a million posts that was 0.6-0.8 s of fdatasync, and the next save's BEGIN
IMMEDIATE waited 630 ms for it (`bench/writer_stall.py`). The thread now syncs the store file itself first, outside
any lock (`sync_store_file`), copies what was committed meanwhile with another PASSIVE checkpoint when that is more
than a short tail, and leaves the FULL checkpoint the tail.

Should the thread be gone, the committing connection checkpoints itself past `LIMIT_PAGES`, as SQLite's own
automatic checkpoint does, and past `INLINE_PAGES` in any case: the WAL stays bounded. Durability is unchanged: a
checkpoint only moves committed pages, and one killed halfway is redone from the WAL at the next open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import struct
import threading
from pathlib import Path

log = logging.getLogger("monitor.store")

# WAL pages past which the thread checkpoints: each poll dirties pages all over the near-duplicate index, and
# checkpointing every 40 MB of WAL rather than SQLite's 4 MB writes each page back once per many polls.
LIMIT_PAGES = 10_000
INLINE_PAGES = 3 * LIMIT_PAGES  # WAL pages past which the committing connection checkpoints itself
# The WAL index header (sqlite.org/walformat.html), in native byte order: mxFrame, the last valid frame of the WAL
# since it started over, at byte 16; nBackfill, the frames already copied into the store, at byte 96.
_HEADER = struct.Struct("=16xI76xI")
TAIL_PAGES = 500  # pages still to copy at which a FULL checkpoint may hold writers off to finish
_PASSES = 3  # PASSIVE checkpoints per round at most
_HOLD_S = 0.1  # the FULL checkpoint's busy timeout: how long it may wait for a reader while writers wait
_STOP_WAIT_S = 30.0  # how long `close` waits for a checkpoint under way (one takes well under a second)


class Checkpointer:
    """Background checkpoints of one store file, for the one writing connection `conn` (see the module)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self.index = Path(f"{path}-shm")
        self._index_fd: int | None = None  # kept open: SQLite keeps the file while `conn` is open
        self.checkpoints = 0  # done by the thread (for tests and measurements)
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        conn.execute("PRAGMA wal_autocheckpoint = 0")

    def after_commit(self) -> None:
        """Called after each COMMIT of `conn`: wake the thread past the limit, checkpoint here far past it."""
        frames, copied = self.wal_frames()
        if not _due(frames, copied):
            return
        if frames >= INLINE_PAGES or not self._started():
            with contextlib.suppress(sqlite3.Error):  # busy (the thread is at it): the next COMMIT tries again
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            return
        self._wake.set()

    def wal_frames(self) -> tuple[int, int]:
        """(pages in the WAL since it started over, pages of them already copied into the store); (0, 0) when there
        is no WAL index to read (another connection may just have removed it). Read without SQLite's locks: a read
        torn by another connection's COMMIT only wakes the thread one COMMIT early or late."""
        try:
            if self._index_fd is None:
                self._index_fd = os.open(self.index, os.O_RDONLY)
            header = os.pread(self._index_fd, _HEADER.size, 0)
        except OSError:
            return 0, 0
        if len(header) < _HEADER.size:
            return 0, 0
        frames, copied = _HEADER.unpack(header)
        return int(frames), int(copied)

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running); the store's own close checkpoints the rest.
        Then `release`, once the store's connection is closed too."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(_STOP_WAIT_S)

    def release(self) -> None:
        """Close the WAL index's descriptor: only after the store's connection is closed. Closing any descriptor of
        a file drops every POSIX lock this process holds on it, and SQLite holds one on the WAL index for as long as
        its connection is open (the lock that tells other processes the index is in use, `sync_store_file`)."""
        if self._index_fd is not None:
            os.close(self._index_fd)
            self._index_fd = None

    def _started(self) -> bool:
        """The thread, started at the first need (a process that writes little never starts one)."""
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._run, name="monitor-checkpoint", daemon=True)
            self._thread.start()
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(str(self.path), timeout=_HOLD_S, isolation_level=None, check_same_thread=True)
        except sqlite3.Error as exc:
            log.warning("%s: no background checkpoints (%s); the committing connection does them", self.path, exc)
            return
        try:
            while not self._stopping:  # one round per wake-up; ends when the store closes
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    break
                if not _due(*self.wal_frames()):  # woken by several COMMITs while the last round ran: done by now
                    continue
                try:
                    self._round(conn)
                except sqlite3.Error as exc:  # the committing connection checkpoints past INLINE_PAGES anyway
                    log.warning("%s: background checkpoint failed: %s", self.path, exc)
        finally:
            conn.close()

    def _round(self, conn: sqlite3.Connection) -> None:
        """PASSIVE checkpoints (holding nobody off) until what polls committed meanwhile is a short tail; then the
        store file's sync, and a FULL checkpoint for the tail if what was committed during the sync is a short tail
        too (else another PASSIVE first), so that the WAL can start over. Polls that commit faster than pages are
        copied leave the tail long: then no FULL this round (the next COMMIT wakes another, and INLINE_PAGES bounds
        the WAL)."""
        for _ in range(_PASSES):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.checkpoints += 1
            frames, copied = self.wal_frames()
            if frames - copied > TAIL_PAGES:
                continue
            sync_store_file(self.path)  # the bulk's flush, before writers are held off (see the module)
            frames, copied = self.wal_frames()
            if frames - copied <= TAIL_PAGES:  # a sync at a million posts takes 0.6-0.8 s: polls go on committing
                conn.execute("PRAGMA wal_checkpoint(FULL)").fetchall()
                return


def _due(frames: int, copied: int) -> bool:
    """Whether the WAL holds enough pages not yet copied into the store for a checkpoint."""
    return frames >= LIMIT_PAGES and copied < frames


def sync_store_file(path: Path) -> bool:
    """fdatasync the store file through a descriptor SQLite holds open in this process; whether one was found.

    Never through a descriptor of our own: closing any descriptor of a file drops every POSIX lock this process
    holds on it, SQLite's included, and another process could then take the store out of WAL mode under a live
    connection (`tests/test_store_checkpoint.py`). Linux (/proc/self/fd); elsewhere nothing is synced here, and
    the FULL checkpoint syncs everything itself, as before."""
    target = path.resolve()
    try:
        entries = list(Path("/proc/self/fd").iterdir())
    except OSError:
        return False
    for entry in entries:
        try:
            if entry.readlink() != target:
                continue
            os.fdatasync(int(entry.name))  # closed meanwhile by its connection: EBADF, and the next one is tried
        except OSError:
            continue
        return True
    return False
