"""Charts of topic activity as PNG bytes (matplotlib, Agg backend): the alert email's chart and `monitor plot`.

Takes counts per bucket, the alert window, the baseline band and alert times; returns PNG bytes.
Does no file or network I/O.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

import matplotlib

from monitor.chartdata import BandPoint

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt

PALETTE = ("#1f5fa8", "#d1495b", "#2a9d8f", "#e9a23b", "#6c4f9c", "#8a8a8a")


MAX_BARS = 400  # beyond this many buckets (or with several series) counts are drawn as steps: bars would blur and slow


def activity_chart(
    series: Mapping[str, Sequence[tuple[datetime, float]]],
    *,
    bucket: timedelta,
    zone: tzinfo,
    title: str,
    window: tuple[datetime, datetime] | None = None,
    alerts: Sequence[datetime] = (),
    size: tuple[float, float] = (8.0, 3.2),
    bands: Sequence[BandPoint] = (),
    marks: Mapping[str, Sequence[datetime]] | None = None,
    span: tuple[datetime, datetime] | None = None,
    legend_outside: bool = False,
) -> bytes:
    """Counts per bucket for one or several topics; the current window shaded, alerts marked.

    `bands` is the detector's usual range per bucket (`chartdata`); `alerts` are marked in red, `marks`
    per series in the series' colour; `span` fixes the time axis (else it fits the data); `legend_outside`
    puts the legend right of the plot. A chart whose counts are all zero says so in its middle.
    """
    figure, axes = plt.subplots(figsize=size, dpi=100)
    try:
        colours = {name: PALETTE[index % len(PALETTE)] for index, name in enumerate(series)}
        for name, points in series.items():
            if not points:
                continue
            if len(series) == 1 and len(points) <= MAX_BARS:
                _bars(axes, points, bucket, zone, colours[name], name)
            else:
                _steps(axes, points, bucket, zone, colours[name], name, filled=len(series) == 1)
        if bands:
            _band_steps(axes, bands, bucket, zone, span)
        if window is not None:
            start: Any = window[0].astimezone(zone)
            end: Any = window[1].astimezone(zone)
            axes.axvspan(start, end, color="#d1495b", alpha=0.15, label="alert window")
        for index, when in enumerate(alerts):
            moment: Any = when.astimezone(zone)
            axes.axvline(moment, color="#d1495b", linewidth=1.2, label="alert" if index == 0 else None)
        for name, times in (marks or {}).items():
            _marks(
                axes,
                times,
                zone,
                "#d1495b" if len(series) == 1 else colours.get(name, PALETTE[-1]),
                "alert" if len(series) == 1 else f"alert: {name}",
            )
        axes.set_title(title, fontsize=11, loc="left")
        axes.set_ylabel(f"posts per {_bucket_name(bucket)}")
        locator = mdates.AutoDateLocator(tz=zone)  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))  # type: ignore[no-untyped-call]
        if span is not None:
            left: Any = span[0].astimezone(zone)
            right: Any = span[1].astimezone(zone)
            axes.set_xlim(left, right)
        axes.spines[["top", "right"]].set_visible(False)
        axes.grid(axis="y", alpha=0.3)
        if not any(value for points in series.values() for _, value in points):
            tops = [1.0, *(b.upper for b in bands)]
            axes.set_ylim(0, max(tops) * 1.1)
            axes.text(
                0.5,
                0.5,
                "no posts in this period",
                transform=axes.transAxes,
                ha="center",
                va="center",
                color="#52606d",
                fontsize=12,
            )
        else:
            axes.set_ylim(bottom=0)
        _, labels = axes.get_legend_handles_labels()
        if labels and legend_outside:  # beside the axes: a long chart's data fills the whole plot area
            axes.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        elif labels:
            axes.legend(fontsize=8, frameon=False, loc="upper left")
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(figure)


def _bars(
    axes: Any, points: Sequence[tuple[datetime, float]], bucket: timedelta, zone: tzinfo, colour: str, name: str
) -> None:
    times: Any = [t.astimezone(zone) for t, _ in points]  # matplotlib converts datetimes itself
    values = [v for _, v in points]
    axes.bar(
        times,
        values,
        width=bucket.total_seconds() / 86400 * 0.9,
        align="edge",
        color=colour,
        alpha=0.85,
        label=name,
        linewidth=0,
    )


def _steps(
    axes: Any,
    points: Sequence[tuple[datetime, float]],
    bucket: timedelta,
    zone: tzinfo,
    colour: str,
    name: str,
    *,
    filled: bool,
) -> None:
    """Counts as a step line (each bucket flat from its start to the next), filled below for a lone series."""
    times: Any = [t.astimezone(zone) for t, _ in points] + [(points[-1][0] + bucket).astimezone(zone)]
    values = [v for _, v in points] + [points[-1][1]]
    axes.step(times, values, where="post", color=colour, linewidth=1.1, label=name)
    if filled:
        axes.fill_between(times, values, step="post", color=colour, alpha=0.35, linewidth=0)


def _band_steps(
    axes: Any, bands: Sequence[BandPoint], bucket: timedelta, zone: tzinfo, span: tuple[datetime, datetime] | None
) -> None:
    end = span[1] if span is not None else bands[-1].start + bucket
    times: Any = [b.start.astimezone(zone) for b in bands] + [end.astimezone(zone)]
    upper = [b.upper for b in bands] + [bands[-1].upper]
    expected = [b.expected for b in bands] + [bands[-1].expected]
    axes.fill_between(
        times,
        upper,
        step="post",
        color="#9aa5b1",
        alpha=0.3,
        linewidth=0,
        label="usual range (the detector alerts above)",
    )
    axes.step(times, expected, where="post", color="#52606d", linewidth=0.9, linestyle="--", label="expected")


def _marks(axes: Any, times: Sequence[datetime], zone: tzinfo, colour: str, label: str) -> None:
    for index, when in enumerate(times):
        moment: Any = when.astimezone(zone)
        axes.axvline(moment, color=colour, linewidth=1.0, alpha=0.8, label=label if index == 0 else None)
        axes.plot(
            [moment], [1.0], marker="v", color=colour, markersize=6, transform=axes.get_xaxis_transform(), clip_on=False
        )


def _bucket_name(bucket: timedelta) -> str:
    seconds = bucket.total_seconds()
    return {3600: "hour", 86400: "day", 604800: "week"}.get(int(seconds), f"{seconds / 60:g} min")
