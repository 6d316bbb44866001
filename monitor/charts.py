"""Charts of topic activity as PNG bytes (matplotlib, Agg backend): the alert email's chart and `monitor plot`.

Takes counts per bucket, the alert window, the baseline band and alert times; returns PNG bytes.
Does no file or network I/O.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402


PALETTE = ("#1f5fa8", "#d1495b", "#2a9d8f", "#e9a23b", "#6c4f9c", "#8a8a8a")


@dataclass(frozen=True)
class Band:
    """The baseline's typical range for one bucket: expected count and an upper bound."""

    expected: float
    upper: float


def activity_chart(series: Mapping[str, Sequence[tuple[datetime, float]]], *, bucket: timedelta, zone: tzinfo,
                   title: str, window: tuple[datetime, datetime] | None = None, band: Band | None = None,
                   alerts: Sequence[datetime] = (), size: tuple[float, float] = (8.0, 3.2)) -> bytes:
    """Counts per bucket for one or several topics; the current window shaded, alerts marked."""
    figure, axes = plt.subplots(figsize=size, dpi=100)
    try:
        for index, (name, points) in enumerate(series.items()):
            if not points:
                continue
            times: Any = [t.astimezone(zone) for t, _ in points]  # matplotlib converts datetimes itself
            values = [v for _, v in points]
            colour = PALETTE[index % len(PALETTE)]
            axes.bar(times, values, width=bucket.total_seconds() / 86400 * 0.9, align="edge",
                     color=colour, alpha=0.85 if len(series) == 1 else 0.55, label=name, linewidth=0)
        if band is not None:
            axes.axhspan(0, band.upper, color="#9aa5b1", alpha=0.18, label=f"usual range (≤ {band.upper:.1f})")
            axes.axhline(band.expected, color="#52606d", linewidth=1, linestyle="--",
                         label=f"expected {band.expected:.1f}")
        if window is not None:
            start: Any = window[0].astimezone(zone)
            end: Any = window[1].astimezone(zone)
            axes.axvspan(start, end, color="#d1495b", alpha=0.15,
                         label="alert window")
        for index, when in enumerate(alerts):
            moment: Any = when.astimezone(zone)
            axes.axvline(moment, color="#d1495b", linewidth=1.2,
                         label="alert" if index == 0 else None)
        axes.set_title(title, fontsize=11, loc="left")
        axes.set_ylabel(f"posts per {_bucket_name(bucket)}")
        locator = mdates.AutoDateLocator(tz=zone)  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))  # type: ignore[no-untyped-call]
        axes.spines[["top", "right"]].set_visible(False)
        axes.grid(axis="y", alpha=0.3)
        axes.set_ylim(bottom=0)
        handles, labels = axes.get_legend_handles_labels()
        if labels:
            axes.legend(fontsize=8, frameon=False, loc="upper left")
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(figure)


def _bucket_name(bucket: timedelta) -> str:
    seconds = bucket.total_seconds()
    return {3600: "hour", 86400: "day", 604800: "week"}.get(int(seconds), f"{seconds / 60:g} min")
