"""Rows to the terminal: rich tables for people, JSON arrays and CSV for machines.

Used only by the command line. JSON is one array of objects; CSV has a header row; both UTF-8. A table
written to anything but a terminal (a pipe, a file) is plain text in aligned columns, one row per line,
no value cut or wrapped, so that `monitor status | grep NAME` finds whole names.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

FORMATS = ("table", "json", "csv")


def write_rows(
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    out: TextIO | None = None,
    styles: Mapping[str, str] | None = None,
    rich_cells: Mapping[str, Any] | None = None,
) -> None:
    """Print rows as `fmt` ("table", "json" or "csv"). `columns` picks and orders the table/CSV columns."""
    stream = out or sys.stdout
    if fmt == "json":
        json.dump([dict(r) for r in rows], stream, ensure_ascii=False, indent=2, default=str)
        stream.write("\n")
        return
    names = list(columns or (rows[0].keys() if rows else []))
    if fmt == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow([_cell(row.get(n)) for n in names])
        return
    if not stream.isatty():
        _plain_table(stream, names, rows, rich_cells, title)
        return
    # Only tables need rich: JSON and CSV output (and every import of this module) start faster without it.
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    console = Console(file=stream, soft_wrap=False, highlight=False)
    if not rows:
        console.print(f"[dim]{title + ': ' if title else ''}nothing to show[/dim]")
        return
    table = Table(title=title, show_lines=False, header_style="bold")
    for name in names:
        table.add_column(name, style=(styles or {}).get(name), overflow="fold")
    for index, row in enumerate(rows):
        cells = []
        for name in names:
            renderer = (rich_cells or {}).get(name)
            cells.append(renderer(row, index) if renderer else Text(_cell(row.get(name))))
        table.add_row(*cells)
    console.print(table)


def _plain_table(
    stream: TextIO,
    names: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    rich_cells: Mapping[str, Any] | None,
    title: str | None,
) -> None:
    """Aligned columns separated by two spaces; a value's own line breaks become spaces (one row, one line)."""
    if not rows:
        stream.write(f"{title + ': ' if title else ''}nothing to show\n")
        return
    table = [list(names)]
    for index, row in enumerate(rows):
        cells = []
        for name in names:
            renderer = (rich_cells or {}).get(name)
            value = renderer(row, index).plain if renderer else _cell(row.get(name))
            cells.append(" ".join(value.split()) if "\n" in value or "\r" in value else value)
        table.append(cells)
    widths = [max(len(line[i]) for line in table) for i in range(len(names))]
    for line in table:
        stream.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() + "\n")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


SPARKS = "▁▂▃▄▅▆▇█"


def bar(value: float, maximum: float, width: int = 24) -> str:
    """A horizontal bar of `width` cells for value/maximum, with eighth-cell precision."""
    if maximum <= 0 or value <= 0:
        return ""
    eighths = round(value / maximum * width * 8)
    full, rest = divmod(max(eighths, 1), 8)
    return "█" * full + ("▏▎▍▌▋▊▉"[rest - 1] if rest else "")


def sparkline(values: Sequence[float]) -> str:
    top = max(values, default=0)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1) + 0.5))] for v in values)
