"""`monitor plot`: matching posts of one or several topics over time as a PNG, their spike alerts marked,
and for a single topic the detector's baseline band.

`plot_topics` reads the store, computes the chart with `chartdata` (buckets, and the band, which the alert
email's chart shares; its docstring says how buckets and the band are made), draws it with
`charts.activity_chart` and writes the file atomically (temporary file + rename).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor.alerts import detector_params
from monitor.chartdata import bucket_grid, chart_data
from monitor.charts import activity_chart
from monitor.config import Config
from monitor.export import atomic_write
from monitor.store import PostFilter, Store
from monitor.units import from_iso

CHART_SIZE = (11.0, 4.2)  # inches at 100 dpi


def plot_topics(
    store: Store, config: Config, *, topics: Sequence[str], since: datetime, until: datetime, by: str, output: Path
) -> str:
    """Draw the topics' matching posts per `by` (hour or day) from `since` to `until` into the PNG `output`
    (written atomically) and return a one-line summary. Raises ValueError when `since` is not before `until`
    or the span holds more than MAX_BUCKETS buckets, OSError when the file cannot be written."""
    names = tuple(dict.fromkeys(topics))
    zone = ZoneInfo(config.alerts.timezone)
    params = detector_params(config)
    grid = bucket_grid(since, until, by=by, zone=zone, baseline=params.baseline)
    hourly: dict[str, list[tuple[datetime, int]]] = {name: [] for name in names}
    for row in store.stats(PostFilter(topics=names, since=grid.edges[0], until=grid.until), by="hour"):
        hourly[row.topic].append((from_iso(row.bucket), row.posts))
    alerts: dict[str, list[datetime]] = {name: [] for name in names}
    for alert in store.spike_alerts_between(names, grid.start, grid.until):
        if alert.topic in alerts:
            alerts[alert.topic].append(alert.window_end or alert.created_at)
    data = chart_data(hourly, alerts, grid, params, zone=zone, zone_name=config.alerts.timezone)
    png = activity_chart(
        data.series,
        bucket=grid.bucket,
        zone=zone,
        title=data.title,
        bands=data.band,
        marks=data.alerts,
        span=(grid.start, grid.end),
        size=CHART_SIZE,
        legend_outside=True,
    )
    with atomic_write(output) as handle:
        handle.write(png)
    return data.summary(output)
