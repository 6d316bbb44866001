"""Who a process is (`Holder`: host, pid, start time) and whether a holder is a process of this host that no
longer exists. Pids are reused, so the start time (from /proc on Linux) tells a new process from the old one.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

from monitor.types import Holder

_PROC = Path("/proc")


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None when there is no such process.
    0 when the system does not say (no /proc): then only the pid is compared."""
    if not _PROC.is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0
        return 0
    try:
        stat = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the command name, in parentheses, may hold spaces
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else 0


@functools.cache
def _host() -> str:
    return socket.gethostname() or "localhost"


def this_process() -> Holder:
    pid = os.getpid()
    return Holder(host=_host(), pid=pid, started=start_ticks(pid) or 0)


def gone(holder_text: str | None) -> bool:
    """True when `holder_text` names a process of this host that has exited (its pid is free or reused).
    A holder on another host, or one that cannot be read, is never called gone: its lease decides."""
    holder = Holder.parse(holder_text or "")
    if holder is None or holder.host != _host():
        return False
    started = start_ticks(holder.pid)
    if started is None:
        return True
    return 0 not in (started, holder.started) and started != holder.started  # the pid was reused
