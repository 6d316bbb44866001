"""One daemon per store: an flock on `<store>.lock` held for the daemon's lifetime (the OS releases it when the
process dies, however it dies), with the holder written in the file; and the daemon's heartbeat row.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from datetime import datetime
from pathlib import Path

from monitor.exceptions import StoreLocked, StoreReadOnly
from monitor.store.rows import ts
from monitor.store.sqlite.base import StoreBase
from monitor.types import Holder

# A `monitor poll` checking for a daemon takes the lock for an instant: a daemon starting then waits this long.
TAKE_LOCK_S = 2.0


def lock_path(store: Path) -> Path:
    return store.with_name(store.name + ".lock")


class LockMixin(StoreBase):
    _lock_fd: int | None = None
    _holder: Holder | None = None

    def lock_daemon(self, holder: Holder, now: datetime) -> None:
        """Take the daemon lock for this process's lifetime, or raise StoreLocked naming the holder."""
        path = lock_path(self.path)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreReadOnly(f"{path}: cannot create the daemon's lock file: {exc.strerror}") from exc
        deadline = time.monotonic() + TAKE_LOCK_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    text = _read(fd)
                    os.close(fd)
                    raise StoreLocked(
                        f"{self.path} is held by another `monitor run`: {_describe(text)} (lock file {path})",
                        holder=_holder_text(text),
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(
            fd, json.dumps({"holder": str(holder), "pid": holder.pid, "host": holder.host, "since": ts(now)}).encode()
        )
        self._lock_fd, self._holder = fd, holder
        with self.transaction("record the daemon") as conn:
            conn.execute(
                """INSERT INTO daemon (id, holder, started_at, heartbeat_at) VALUES (1, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, started_at = excluded.started_at,
                                                  heartbeat_at = excluded.heartbeat_at""",
                (str(holder), ts(now), ts(now)),
            )

    def unlock_daemon(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def daemon_holder(self) -> Holder | None:
        """The daemon holding this store now, if one does (a `Holder` with pid 0 when its file says nothing)."""
        path = lock_path(self.path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = _holder_text(_read(fd))
                return Holder.parse(text or "") or Holder(host="?", pid=0, started=0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def heartbeat(self, now: datetime) -> None:
        """The daemon is alive at `now` (read by `monitor health`)."""
        if self._holder is None:
            return
        with self.transaction("write the heartbeat") as conn:
            conn.execute("UPDATE daemon SET heartbeat_at = ? WHERE id = 1 AND holder = ?", (ts(now), str(self._holder)))

    def close(self) -> None:
        self.unlock_daemon()
        super().close()


def _read(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 4096, 0).decode("utf-8", "replace")
    return ""


def _holder_text(text: str) -> str | None:
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        return str(json.loads(text)["holder"])
    return None


def _describe(text: str) -> str:
    try:
        data = json.loads(text)
        return f"pid {data['pid']} on host {data['host']} since {data['since']}"
    except (ValueError, TypeError, KeyError):
        return "a process that left no details"
