"""`monitor export`: posts with their topics as CSV or JSON Lines, streamed, written atomically.

Memory stays flat however large the store: rows come from `Store.iter_posts` a chunk at a time and go
straight to the output (measured in bench/export_bench.py and held by tests/test_export.py). A file is
written beside its final name and renamed at the end, so an interrupted export never leaves a half file
under that name (a killed process may leave a hidden `.NAME.*.tmp` beside it, never a truncated NAME).

Columns, in order (`EXPORT_COLUMNS`): the `posts` columns an analyst needs, then `topics` (the post's
topics, sorted), `terms` (terms[i] is the configured term that matched topics[i]) and `extra` (collector
facts). CSV: UTF-8, a header row, RFC 4180 quoting and CRLF line ends, lists joined with `;`, `extra` as
JSON text, NULL as an empty cell. JSONL: one object per line, UTF-8 unescaped, lists as lists, `extra` as
an object, NULL as null; U+2028, U+2029 and U+0085 are escaped so that no line-splitting tool (Python's
`str.splitlines`, JavaScript) breaks a record in two.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import sys
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from monitor.exceptions import MonitorError
from monitor.store import PostFilter, PostRow, Store

EXPORT_COLUMNS = (
    "id",
    "source",
    "key",
    "url",
    "title",
    "text",
    "author",
    "published_at",
    "first_seen_at",
    "updated_at",
    "cluster_id",
    "parent_id",
    "topics",
    "terms",
    "extra",
)
FORMATS = ("csv", "jsonl")
BOM = "\ufeff"
LIST_SEPARATOR = ";"
WRITE_BUFFER = 1 << 16  # bytes; fewer write calls than the 8 KiB default
LINES_PER_WRITE = 64
CSV_HEADER = ",".join(EXPORT_COLUMNS) + "\r\n"


def export_posts(
    store: Store,
    *,
    fmt: str,
    output: Path | None,
    where: PostFilter,
    bom: bool,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the selected posts, oldest first, to `output` (atomically) or to stdout; return how many.

    `where.topics` keeps posts matching any of them; without it `where.matching_only` keeps posts matching any
    topic. `where.since`/`where.until` bound `published_at` (inclusive). `bom` starts the output with U+FEFF
    (Excel needs it to read CSV as UTF-8). `progress(n)` is told every PROGRESS_EVERY rows how many were written so far.
    Raises ValueError for an unknown format, MonitorError for an output that is not a regular file (before any
    work), OSError when the output cannot be written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if output is not None:
        check_target(output)
    rows = store.iter_posts(where)
    if progress is not None:
        rows = _counted(rows, progress)
    with contextlib.closing(rows):  # ends the SELECT now, even on an error, not when the generator is collected
        if output is None:
            return _to_stdout(rows, fmt, bom)
        with atomic_write(output) as handle:
            return _write(lambda text: handle.write(text.encode("utf-8")), rows, fmt, bom)


PROGRESS_EVERY = 5_000
T = TypeVar("T")


def _counted(rows: Generator[T, None, None], progress: Callable[[int], None]) -> Generator[T, None, None]:
    with contextlib.closing(rows):
        for count, row in enumerate(rows, start=1):
            if count % PROGRESS_EVERY == 0:
                progress(count)
            yield row


def check_target(path: Path) -> os.stat_result | None:
    """Refuse an output that is not a regular file or a new name; return the existing file's status, if any.

    The export is renamed onto `path` at the end: onto a symbolic link that replaces the link (not the file it
    points to), onto a FIFO or a device it replaces the special file with a plain one. Neither is what was
    meant, so both are refused with what to do instead.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MonitorError(f"cannot write {path}: {exc.strerror or exc}") from exc
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return info
    if stat.S_ISLNK(mode):
        raise MonitorError(
            f"{path} is a symbolic link (to {path.readlink()}): export replaces the file it writes, which would "
            "replace the link; give the file's own path, or write to standard output (-o -) and redirect"
        )
    kind = {stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}
    what = kind.get(stat.S_IFMT(mode), "a directory" if stat.S_ISDIR(mode) else "not a regular file")
    raise MonitorError(
        f"{path} is {what}, not a regular file: export writes only regular files; to feed it, write to standard "
        "output (-o - or no -o) and redirect"
    )


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that appears under `path` only once complete: written beside it, synced, then renamed.

    Only onto a regular file or a new name (`check_target`, before and again just before the rename). On any
    exception (Ctrl-C included) the temporary file is removed and `path` is left as it was. A new file gets the
    usual permissions (0666 less the umask), as a plain open() would give; a replaced file keeps its own (an
    export made private with chmod 600 stays private).
    """
    existing = check_target(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        if existing is not None:
            os.fchmod(fd, stat.S_IMODE(existing.st_mode))
        with os.fdopen(fd, "wb", buffering=WRITE_BUFFER) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())  # the rename must not land before the data (a power cut keeps one or the other)
        check_target(path)  # what was a file (or nothing) at the start may have been replaced meanwhile
        temp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def _to_stdout(rows: Iterable[PostRow], fmt: str, bom: bool) -> int:
    """UTF-8 whatever the locale says: the bytes go to stdout's buffer, not through its text layer."""
    sys.stdout.flush()
    buffer: IO[bytes] | None = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stdout (a test harness): let it encode
        return _write(sys.stdout.write, rows, fmt, bom)
    try:
        return _write(lambda text: buffer.write(text.encode("utf-8")), rows, fmt, bom)
    finally:
        buffer.flush()


def _write(write: Callable[[str], object], rows: Iterable[PostRow], fmt: str, bom: bool) -> int:
    """Lines go out LINES_PER_WRITE at a time: one encode and one write call per batch, memory bounded by it."""
    to_line = csv_line if fmt == "csv" else json_line
    write((BOM if bom else "") + (CSV_HEADER if fmt == "csv" else ""))
    count = 0
    batch: list[str] = []
    for row in rows:
        batch.append(to_line(row))
        if len(batch) == LINES_PER_WRITE:
            write("".join(batch))
            count += len(batch)
            batch.clear()
    write("".join(batch))
    return count + len(batch)


def csv_field(value: object) -> str:
    """RFC 4180 quoting, as `csv.writer` does it (QUOTE_MINIMAL) but several times faster on long non-ASCII text:
    a field holding a quote, comma or line break is quoted, its quotes doubled; None is an empty field."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return str(value)
    if '"' in value:
        return '"' + value.replace('"', '""') + '"'
    if "," in value or "\n" in value or "\r" in value:
        return '"' + value + '"'
    return value


def csv_line(row: PostRow) -> str:
    """One CSV record with its CRLF: lists joined with `;`, `extra` as its JSON text."""
    cells = (*row[:12], LIST_SEPARATOR.join(row.topics), LIST_SEPARATOR.join(row.terms), row.extra)
    return ",".join([csv_field(cell) for cell in cells]) + "\r\n"


def json_line(row: PostRow) -> str:
    """One JSONL record with its newline; `extra` becomes an object."""
    record: dict[str, Any] = dict(zip(EXPORT_COLUMNS, row, strict=True))
    record["topics"] = list(row.topics)
    record["terms"] = list(row.terms)
    record["extra"] = json.loads(row.extra) if row.extra else None
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in _LINE_BREAKS:
        if char in line:  # only inside strings: json.dumps writes no raw whitespace of its own
            line = line.replace(char, escaped)
    return line + "\n"


# Characters that str.splitlines() and JavaScript treat as line breaks but json.dumps leaves raw.
_LINE_BREAKS = (("\u2028", "\\u2028"), ("\u2029", "\\u2029"), ("\x85", "\\u0085"))
