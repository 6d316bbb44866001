"""Read a `timestamp,value` CSV series for `monitor detect` (one row per bucket; naive times are UTC)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

MAX_ROWS = 5_000_000


def read_series(path: Path) -> tuple[list[datetime], list[float]]:
    """Rows sorted by time; a header row is optional. Raises ValueError naming the bad line."""
    times: list[datetime] = []
    values: list[float] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) < 2:
                raise ValueError(f"line {number}: expected `timestamp,value`, got {','.join(row)!r}")
            try:
                when = datetime.fromisoformat(row[0].strip().replace("Z", "+00:00"))
                value = float(row[1])
            except ValueError:
                if number == 1:
                    continue  # a header
                raise ValueError(f"line {number}: expected an ISO timestamp and a number, got {row[:2]!r}") from None
            times.append(when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC))
            values.append(value)
            if len(times) > MAX_ROWS:
                raise ValueError(f"more than {MAX_ROWS:,} rows")
    if not times:
        raise ValueError("no rows")
    order = sorted(range(len(times)), key=times.__getitem__)
    return [times[i] for i in order], [values[i] for i in order]
