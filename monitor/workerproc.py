"""The worker process's side of monitor.workers: its loop, and the length-prefixed pickle frames both sides use.

A worker is `python -c "from monitor.workerproc import serve; serve()"`. This module imports only the standard
library (and monitor.exceptions), and a job imports what it needs when it comes: a worker that only parses feeds
loads lxml, not asyncio, ssl, msgspec or numpy, and stays a small second process. Its matcher (for preparing
posts) is built when the main process first sends it the topics, before the first batch to prepare.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.exceptions import ParseError

if TYPE_CHECKING:
    from monitor.match import Matcher
    from monitor.worktypes import MatchedPost, RawItem

T = TypeVar("T")
_FRAME = struct.Struct(">Q")
_CHUNK = 1 << 16
PATH_ENV = "MONITOR_WORKER_SYS_PATH"
PARENT_ENV = "MONITOR_WORKER_PARENT"
PR_SET_PDEATHSIG = 1  # linux/prctl.h

_matcher: Matcher | None = None  # this worker's own matcher, built from the topics the main process sends


# ---------------------------------------------------------------- the worker process


def serve() -> None:
    """The worker's main loop: read a job, run it, write its result; return at end of file on stdin.
    A ("topics", topics) message builds the matcher (or, with None, only says the worker is up)."""
    global _matcher  # noqa: PLW0603  # one matcher per worker process, compiled once
    # hashlib loads OpenSSL's libcrypto for algorithms a worker never uses (3.5 MiB of Pss in a process alone; the
    # poll's tree shrank 1.2 MiB, as the main process maps the library too): the one it uses, blake2b (feed
    # digests, content hashes), is hashlib's built-in one either way. Without _hashlib, hashlib falls back to its
    # built-in algorithms, as on a Python built without OpenSSL.
    sys.modules.setdefault("_hashlib", None)  # type: ignore[arg-type]
    parent = int(os.environ.pop(PARENT_ENV, "0") or 0)
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C and SIGTERM are the main process's to handle;
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # this process ends with its stdin or its parent
    results = os.dup(1)
    os.dup2(2, 1)  # a stray print() must not corrupt the result stream
    while True:
        try:
            message = pickle.loads(read_frame(0, None))
        except LostError:
            return
        if message[0] == "topics":
            if message[1] is not None:
                from monitor.match import Matcher  # noqa: PLC0415  # only a worker that prepares posts needs it

                _matcher = Matcher(message[1])
            write_frame(results, pickle.dumps(("ready", None)), None)
            continue
        fn, args, kwargs = message[1:]
        try:
            reply: tuple[str, Any] = ("ok", fn(*args, **kwargs))
        except Exception as exc:
            if not isinstance(exc, ParseError):
                exc.add_note(f"in the worker process:\n{traceback.format_exc()}")
            reply = ("error", exc)
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an unpicklable result or exception: say what it was
            data = pickle.dumps(("error", ParseError(f"worker result could not be sent: {type(exc).__name__}")))
        try:
            write_frame(results, data, None)
        except LostError:
            return


def _die_with_parent(parent: int) -> None:
    """SIGKILL when the parent dies (Linux), and a watch thread everywhere; exit now if it is gone already."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent and os.getppid() != parent:
        os._exit(0)  # the parent died before the signal was armed

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    if parent:
        threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def prepare_posts(
    items: Sequence[RawItem],
    source: str,
    known: Mapping[str, Any],
    now: datetime,
    keys: Sequence[str] | None = None,
) -> list[MatchedPost]:
    """A prepare job: prepare.prepare with this worker's matcher (the topics came first)."""
    from monitor.prepare import prepare  # noqa: PLC0415  # numpy and the normaliser: only when posts are prepared

    assert _matcher is not None, "the worker got no topics"
    return prepare(items, source, dict(known), now, _matcher, keys)


def call(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    """A parse job: `fn` (a pure, picklable function such as parse_feed) called with its arguments."""
    return fn(*args, **kwargs)


class OverrunError(Exception):
    """The job passed its time limit."""


class LostError(Exception):
    """The worker process ended (or its pipe broke) before answering."""


# ---------------------------------------------------------------- frames over pipes, with a deadline


def write_frame(fd: int, data: bytes, deadline: float | None) -> None:
    view = memoryview(_FRAME.pack(len(data)) + data)
    while view:
        _wait(fd, deadline, write=True)
        try:
            sent = os.write(fd, view[:_CHUNK])
        except (BrokenPipeError, OSError) as exc:
            raise LostError(str(exc)) from exc
        view = view[sent:]


def read_frame(fd: int, deadline: float | None) -> bytes:
    (size,) = _FRAME.unpack(_read_exactly(fd, _FRAME.size, deadline))
    return _read_exactly(fd, size, deadline)


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left:
        _wait(fd, deadline, write=False)
        try:
            chunk = os.read(fd, min(left, _CHUNK))
        except OSError as exc:
            raise LostError(str(exc)) from exc
        if not chunk:
            raise LostError("end of file")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _wait(fd: int, deadline: float | None, *, write: bool) -> None:
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise OverrunError
    try:
        ready = select.select([], [fd], [], remaining)[1] if write else select.select([fd], [], [], remaining)[0]
    except (OSError, ValueError) as exc:  # the pipe was closed under us (the worker is being stopped)
        raise LostError(str(exc)) from exc
    if not ready:
        raise OverrunError
