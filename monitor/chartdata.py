"""The data of an activity chart, computed before any drawing: buckets, counts and the detector's band.

Pure: does no I/O and never reads the clock; counts in, chart data out. `monitor plot` (plotting.py) and the
alert email's chart (outbox/content.py) both draw what this computes, so the two pictures show the same
"usual range": the detector's own judgement, bucket by bucket.

Buckets. `--by hour` buckets are UTC hours (the hours of `monitor stats`); `--by day` buckets are calendar
days in `alerts.timezone` (the zone the emails use), so a day runs from local midnight to local midnight,
23 or 25 hours across a DST change. Days are built from hourly counts: in a zone whose offset is not whole
hours an hour is counted in the day its UTC hour starts in. The first bucket starts at the bucket boundary
at or before `since` (never a half bucket); the last holds `until` and is partial when `until` is now.

The baseline band (one topic only) is the detector's own judgement, bucket by bucket. For every plotted
bucket, the `baseline // bucket` buckets just before it are its history (so the query reaches back one
baseline before the first bucket; a time before the first post counts 0, as in the daemon), and
`spikes.judge_many` is run with the config's detector parameters, its `window` set to the bucket length:
`expected` (the dashed line) is the detector's expected count for that bucket (with `--by hour` and the
default 1h window the hour-of-day profile applies, exactly as in the daemon), and the band's top is the
highest count the detector would still let pass: one less than the smallest count that is at least
`min_count`, above every bucket of the last `rearm`, and (unless the history holds no post: a cold start)
scores at least the threshold. A bar above the band is a count the detector would alert on, cooldown
aside (it depends on earlier alerts, not on the counts). The score part is found by bisection on the count
(the score never decreases as the count grows) over blocks of BAND_CHUNK buckets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from monitor.spikes import DetectorParams, judge_many

if TYPE_CHECKING:  # numpy is imported where it is used (see spikes.py)
    import numpy as np
    from numpy.typing import NDArray

    Floats = NDArray[np.float64]

BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_BUCKETS = 100_000  # ~11 years by hour: a bound on memory and time, far past any useful chart
BAND_CHUNK = 2048  # buckets judged at once (bounds memory at BAND_CHUNK x history floats per array)
_MAX_STEPS = 64  # doubling and bisection steps: counts up to 2**64, more than any store holds


@dataclass(frozen=True)
class BandPoint:
    """The baseline band of one bucket: from `start` to the next point."""

    start: datetime  # aware
    expected: float  # the detector's expected count for this bucket
    upper: float  # the highest count the detector still calls usual


@dataclass(frozen=True)
class Grid:
    """The buckets of one chart: `history` buckets feeding the band, then the plotted ones."""

    by: str  # hour | day
    bucket: timedelta  # nominal bucket length
    edges: tuple[datetime, ...]  # aware UTC bucket boundaries, oldest first; one more than the buckets
    history: int  # buckets before the plotted ones (one detector baseline)
    since: datetime  # aware UTC; the start asked for (inside the first plotted bucket)
    until: datetime  # aware UTC; the end asked for (inside the last bucket)

    @property
    def start(self) -> datetime:
        """Where the plotted buckets begin."""
        return self.edges[self.history]

    @property
    def end(self) -> datetime:
        return self.edges[-1]

    @property
    def plotted(self) -> int:
        return len(self.edges) - 1 - self.history


@dataclass(frozen=True)
class ChartData:
    """Everything the chart shows, computed before any drawing."""

    title: str
    grid: Grid
    series: Mapping[str, tuple[tuple[datetime, float], ...]]  # topic -> (bucket start, posts) per plotted bucket
    totals: Mapping[str, int]  # topic -> posts in the plotted buckets
    alerts: Mapping[str, tuple[datetime, ...]]  # topic -> times its spike alerts fired, inside the plotted span
    band: tuple[BandPoint, ...]  # per plotted bucket; empty unless exactly one topic

    def summary(self, output: Path) -> str:
        """One line for the terminal: `wrote x.png: separatism 123 posts over 30 days, 2 alerts` (the span asked
        for; the counts are those of the buckets drawn, the first of which may start a little earlier)."""
        counts = ", ".join(f"{topic} {total:,}" for topic, total in self.totals.items())
        alerts = sum(len(times) for times in self.alerts.values())
        return (
            f"wrote {output}: {counts} posts over {_span_words(self.grid.until - self.grid.since)}, "
            f"{alerts} alert{'' if alerts == 1 else 's'}"
        )


def bucket_grid(since: datetime, until: datetime, *, by: str, zone: tzinfo, baseline: timedelta) -> Grid:
    """The bucket boundaries from one baseline before `since` to just past `until` (see the module docstring)."""
    if by not in BUCKETS:
        raise ValueError(f"unknown bucket {by!r} (expected one of {', '.join(BUCKETS)})")
    if until <= since:
        raise ValueError(
            f"the start ({since.astimezone(UTC):%Y-%m-%d %H:%M}Z) must be before the end "
            f"({until.astimezone(UTC):%Y-%m-%d %H:%M}Z)"
        )
    bucket = BUCKETS[by]
    history = max(1, baseline // bucket)
    if by == "hour":
        first = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        plotted = -(-(until - first) // bucket)  # the last bucket ends at or after `until`
        edges = [first + bucket * i for i in range(-history, min(plotted, MAX_BUCKETS + 1) + 1)]
    else:
        day, end = since.astimezone(zone).date(), until.astimezone(zone)
        plotted = (end.date() - day).days + (0 if end.time() == time() else 1)
        edges = [
            datetime.combine(day + timedelta(days=i), time(), tzinfo=zone).astimezone(UTC)
            for i in range(-history, min(plotted, MAX_BUCKETS + 1) + 1)
        ]
    if plotted > MAX_BUCKETS:
        raise ValueError(
            f"{plotted:,} buckets are too many for one chart (at most {MAX_BUCKETS:,}): use a larger "
            f"bucket or a shorter span"
        )
    return Grid(
        by=by,
        bucket=bucket,
        edges=tuple(edges),
        history=history,
        since=since.astimezone(UTC),
        until=until.astimezone(UTC),
    )


def chart_data(
    hourly: Mapping[str, Sequence[tuple[datetime, int]]],
    alerts: Mapping[str, Sequence[datetime]],
    grid: Grid,
    params: DetectorParams,
    *,
    zone: tzinfo,
    zone_name: str,
) -> ChartData:
    """Bucket the topics' hourly counts (UTC hour start -> posts; hours outside the grid are ignored), keep the
    alerts inside the plotted span, and compute the baseline band when there is exactly one topic."""
    import numpy as np

    edges = np.array([e.timestamp() for e in grid.edges])
    starts = grid.edges[grid.history : -1]
    series: dict[str, tuple[tuple[datetime, float], ...]] = {}
    totals: dict[str, int] = {}
    all_counts: dict[str, Floats] = {}
    for topic, rows in hourly.items():
        counts = _bucket_counts(rows, edges)
        all_counts[topic] = counts
        plotted = counts[grid.history :]
        series[topic] = tuple(zip(starts, plotted.tolist(), strict=True))
        totals[topic] = int(plotted.sum())
    marks = {topic: tuple(sorted(t for t in times if grid.start <= t < grid.end)) for topic, times in alerts.items()}
    band: tuple[BandPoint, ...] = ()
    if len(all_counts) == 1:
        counts = next(iter(all_counts.values()))
        expected, upper = baseline_band(counts, grid.history, msgspec.structs.replace(params, window=grid.bucket))
        band = tuple(BandPoint(s, e, u) for s, e, u in zip(starts, expected.tolist(), upper.tolist(), strict=True))
    return ChartData(
        title=_title(tuple(hourly), sum(totals.values()), grid, zone, zone_name),
        grid=grid,
        series=series,
        totals=totals,
        alerts=marks,
        band=band,
    )


def baseline_band(counts: Sequence[float] | Floats, history: int, params: DetectorParams) -> tuple[Floats, Floats]:
    """For each bucket after the first `history` ones: the detector's expected count, judged on the `history`
    buckets before it, and the highest count it would still call usual (see the module docstring)."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    values = np.asarray(counts, dtype=np.float64)
    n = len(values) - history
    if n <= 0:
        return np.zeros(0), np.zeros(0)
    windows = sliding_window_view(values, history)[:n]  # row i: the history of bucket history + i, oldest first
    expected, upper = np.empty(n), np.empty(n)
    for lo in range(0, n, BAND_CHUNK):
        hist = np.ascontiguousarray(windows[lo : lo + BAND_CHUNK])
        mu, _, _ = judge_many(values[history + lo : history + lo + len(hist)], hist, params)
        expected[lo : lo + len(hist)] = mu
        upper[lo : lo + len(hist)] = alert_level(hist, mu, params) - 1
    return expected, upper


def alert_level(hist: Floats, expected: Floats, params: DetectorParams) -> Floats:
    """Per row of `hist` (one bucket's history): the smallest whole count the detector would alert on.

    The detector's rule: at least `min_count`, above every window of the last `rearm`, and, unless the
    history holds no post at all (cold start), a score >= threshold. The score part is found by probing the
    first two, then doubling and bisection; `expected` (the detector's own) sizes the first step."""
    import numpy as np

    k = hist.shape[1]
    recent = max(1, min(k, round(params.rearm / params.window)))
    level: Floats = np.maximum(hist[:, k - recent :].max(axis=1) + 1.0, float(params.min_count)).astype(np.float64)
    pending = np.flatnonzero(hist.sum(axis=1) > 0)  # cold rows alert at `level` whatever the score

    def reaches(which: NDArray[np.intp], count: Floats) -> NDArray[np.bool_]:
        _, score, _ = judge_many(count, hist[which], params)
        return score >= params.threshold

    if len(pending):
        pending = pending[~reaches(pending, level[pending])]
    # Invariant for the pending rows: `lo` does not reach the threshold, `hi` does (once found).
    lo = level.copy()
    hi = lo + np.ceil(4 * np.sqrt(np.maximum(expected, 1.0))) + 2
    for _ in range(_MAX_STEPS):
        if not len(pending):
            break
        ok = reaches(pending, hi[pending])
        low = pending[~ok]
        lo[low], hi[low] = hi[low], 2 * hi[low] + 1
        level[pending[ok]] = hi[pending[ok]]
        pending = low
    searching = np.flatnonzero(hi - lo > 1)  # rows whose threshold lies strictly between lo and hi
    searching = searching[level[searching] > lo[searching]]  # (rows settled at their first probe have level == lo)
    for _ in range(_MAX_STEPS):
        if not len(searching):
            break
        mid = np.floor((lo[searching] + hi[searching]) / 2)
        ok = reaches(searching, mid)
        hi[searching[ok]] = mid[ok]
        lo[searching[~ok]] = mid[~ok]
        level[searching] = hi[searching]
        searching = searching[hi[searching] - lo[searching] > 1]
    return level


def _bucket_counts(rows: Sequence[tuple[datetime, int]], edges: Floats) -> Floats:
    """Posts per bucket: each hourly count goes to the bucket its hour starts in."""
    import numpy as np

    if not rows:
        return np.zeros(len(edges) - 1)
    times = np.array([t.timestamp() for t, _ in rows])
    posts = np.array([float(p) for _, p in rows])
    index = np.searchsorted(edges, times, side="right") - 1
    inside = (index >= 0) & (index < len(edges) - 1)
    return np.bincount(index[inside], weights=posts[inside], minlength=len(edges) - 1).astype(np.float64)


def _title(topics: Sequence[str], total: int, grid: Grid, zone: tzinfo, zone_name: str) -> str:
    first, last = grid.start.astimezone(zone), grid.until.astimezone(zone)
    dates = (
        f"{first:%Y-%m-%d} – {last:%Y-%m-%d}" if grid.by == "day" else f"{first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M}"
    )
    what = "no matching posts" if total == 0 else f"{total:,} posts, per {grid.by}"
    return f"{', '.join(topics)}: {what}, {dates} ({zone_name})"


def _span_words(span: timedelta) -> str:
    days = span / timedelta(days=1)
    if days >= 2:
        return f"{round(days)} days"
    hours = round(span / timedelta(hours=1))
    return f"{hours} hour{'' if hours == 1 else 's'}"
