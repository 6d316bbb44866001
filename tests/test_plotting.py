"""`monitor plot`: the bucket grid, the chart's data (counts, alerts, the detector's band), the PNG, the CLI."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from monitor import dedupe, plotting
from monitor.chartdata import alert_level, baseline_band, bucket_grid, chart_data
from monitor.config import Config
from monitor.normalize import content_hash
from monitor.plotting import plot_topics
from monitor.spikes import DetectorParams, judge
from monitor.store import Store, open_store
from monitor.types import AlertKind, Match, MatchedPost, NewAlert, Post, SourceState
from tests.conftest import NOW, invoke, make_config, write_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALMATY = ZoneInfo("Asia/Almaty")  # UTC+5 all year
CONFIG = """
store: store.db
topics:
  separatism: [separatism, сепаратист*]
  peoples-council: ["People's Council", "Халық кеңес*"]
sources:
  - {name: news, type: feed, url: "http://127.0.0.1:9/rss"}
alerts:
  window: 1h
  baseline: 7d
  min_count: 3
  timezone: Asia/Almaty
"""


def add(store: Store, topic: str, times: list[datetime], *, prefix: str = "p") -> None:
    posts = []
    for index, when in enumerate(times):
        text = f"Report {prefix}{index}: a separatist rally, number {index}."
        post = Post(
            source="news",
            key=f"{prefix}{index}",
            url=None,
            title="Rally",
            text=text,
            author=None,
            published_at=when,
            first_seen_at=when,
            content_hash=content_hash("Rally", text),
        )
        posts.append(MatchedPost(post, (Match(topic, "separatist*"),), dedupe.signature("Rally", text)))
    store.save_poll(
        state=SourceState(name="news"), source_type="feed", source_url=None, posts=posts, fetches=(), now=NOW
    )


def spike(store: Store, topic: str, at: datetime, kind: AlertKind = AlertKind.SPIKE) -> None:
    alert = NewAlert(
        kind=kind,
        topic=topic,
        source="news" if kind is AlertKind.HEALTH else None,
        window_start=at - timedelta(hours=1),
        window_end=at,
        count=9,
        expected=1.0,
        score=5.0,
    )
    store.insert_alert(alert, created_at=at, channels=())


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path, CONFIG)


def png_ok(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        return image.size


# ------------------------------------------------------------------------------------------- the grid
def test_hour_grid_starts_on_the_hour_and_reaches_back_one_baseline() -> None:
    since, until = datetime(2026, 3, 1, 9, 40, tzinfo=UTC), datetime(2026, 3, 2, 9, 10, tzinfo=UTC)
    grid = bucket_grid(since, until, by="hour", zone=ALMATY, baseline=timedelta(days=7))
    assert grid.history == 168
    assert grid.start == datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert grid.edges[0] == grid.start - timedelta(days=7)
    assert grid.end == datetime(2026, 3, 2, 10, tzinfo=UTC)  # the bucket holding `until` is the last
    assert grid.plotted == 25
    assert all(b - a == timedelta(hours=1) for a, b in zip(grid.edges, grid.edges[1:], strict=False))


def test_day_grid_follows_local_midnights() -> None:
    since = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)  # 2 March 01:00 in Almaty
    until = datetime(2026, 3, 4, 19, 0, tzinfo=UTC)  # 5 March 00:00 in Almaty: a boundary, so no extra day
    grid = bucket_grid(since, until, by="day", zone=ALMATY, baseline=timedelta(days=7))
    assert grid.history == 7 and grid.plotted == 3
    assert [e.astimezone(ALMATY).strftime("%d %H:%M") for e in grid.edges[7:]] == [
        "02 00:00",
        "03 00:00",
        "04 00:00",
        "05 00:00",
    ]


def test_day_grid_across_a_dst_change_has_a_23_hour_day() -> None:
    paris = ZoneInfo("Europe/Paris")
    grid = bucket_grid(
        datetime(2026, 3, 28, 12, tzinfo=UTC),
        datetime(2026, 3, 30, 12, tzinfo=UTC),
        by="day",
        zone=paris,
        baseline=timedelta(days=1),
    )
    lengths = [b - a for a, b in zip(grid.edges[1:], grid.edges[2:], strict=False)]
    assert lengths == [timedelta(hours=24), timedelta(hours=23), timedelta(hours=24)]


def test_a_grid_needs_since_before_until_and_a_sane_size() -> None:
    with pytest.raises(ValueError, match="must be before"):
        bucket_grid(NOW, NOW, by="day", zone=UTC, baseline=timedelta(days=7))
    with pytest.raises(ValueError, match="too many"):
        bucket_grid(NOW - timedelta(days=365 * 20), NOW, by="hour", zone=UTC, baseline=timedelta(days=7))
    with pytest.raises(ValueError, match="unknown bucket"):
        bucket_grid(NOW - timedelta(days=1), NOW, by="week", zone=UTC, baseline=timedelta(days=7))


# ------------------------------------------------------------------------------------------- the data
def test_chart_data_counts_several_topics_and_keeps_alerts_in_the_span() -> None:
    since, until = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 1, 6, tzinfo=UTC)
    grid = bucket_grid(since, until, by="hour", zone=UTC, baseline=timedelta(hours=3))
    hourly = {
        "separatism": [
            (since - timedelta(hours=2), 7),
            (since, 2),
            (since + timedelta(hours=5), 4),
            (since - timedelta(days=3), 99),
            (until + timedelta(hours=1), 99),
        ],  # outside: ignored
        "peoples-council": [(since + timedelta(hours=1), 1)],
    }
    alerts = {
        "separatism": [since + timedelta(hours=2, minutes=5), since - timedelta(hours=1)],
        "peoples-council": [until + timedelta(hours=2)],
    }
    data = chart_data(hourly, alerts, grid, DetectorParams(), zone=UTC, zone_name="UTC")
    assert [v for _, v in data.series["separatism"]] == [2, 0, 0, 0, 0, 4]
    assert [v for _, v in data.series["peoples-council"]] == [0, 1, 0, 0, 0, 0]
    assert [t for t, _ in data.series["separatism"]][:2] == [since, since + timedelta(hours=1)]
    assert data.totals == {"separatism": 6, "peoples-council": 1}
    assert data.alerts == {"separatism": (since + timedelta(hours=2, minutes=5),), "peoples-council": ()}
    assert data.band == ()  # several topics: no band
    assert data.title.startswith("separatism, peoples-council: 7 posts, per hour")
    assert data.summary(Path("c.png")) == "wrote c.png: separatism 6, peoples-council 1 posts over 6 hours, 1 alert"


def test_one_topic_gets_the_band_and_an_empty_span_says_so() -> None:
    since, until = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)
    grid = bucket_grid(since, until, by="day", zone=UTC, baseline=timedelta(days=7))
    data = chart_data({"separatism": []}, {"separatism": []}, grid, DetectorParams(), zone=UTC, zone_name="UTC")
    assert data.totals == {"separatism": 0}
    assert len(data.band) == grid.plotted == 30
    assert all(b.expected < 0.1 and b.upper == 2 for b in data.band)  # cold start: min_count 3 alerts
    assert data.title == "separatism: no matching posts, 2026-03-01 – 2026-03-31 (UTC)"
    assert data.summary(Path("e.png")) == "wrote e.png: separatism 0 posts over 30 days, 0 alerts"


def test_the_band_follows_a_steady_history() -> None:
    counts = [10.0] * 7 + [10.0, 30.0]
    expected, upper = baseline_band(counts, 7, DetectorParams(window=timedelta(days=1)))
    assert expected[0] == pytest.approx(10.0)
    assert 10 <= upper[0] < 30  # 30 is a spike against ten a day


# The band's top is the detector's own boundary: one more post and `spikes.judge` alerts.
history_rows = st.lists(st.integers(0, 40), min_size=1, max_size=48)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(history_rows, min_size=1, max_size=6), min_count=st.integers(1, 6), rearm_hours=st.integers(0, 30))
def test_alert_level_is_where_the_detector_starts_alerting(
    rows: list[list[int]], min_count: int, rearm_hours: int
) -> None:
    k = max(len(r) for r in rows)
    hist = np.array([[0] * (k - len(r)) + r for r in rows], dtype=np.float64)
    params = DetectorParams(min_count=min_count, rearm=timedelta(hours=rearm_hours))
    expected = np.array([judge(0, list(h), params).expected for h in hist])
    levels = alert_level(hist, expected, params)
    for h, level in zip(hist, levels, strict=True):
        assert level == int(level)
        assert judge(level, list(h), params).alert
        assert not judge(level - 1, list(h), params).alert


# ------------------------------------------------------------------------------------------- the PNG
def test_plot_writes_a_valid_png_with_the_alerts_and_the_band(
    tmp_path: Path, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: dict[str, Any] = {}
    real = getattr(plotting, "activity_chart")  # noqa: B009  # the name plotting calls, to wrap it

    def spy(series: Any, **kwargs: Any) -> bytes:
        drawn.update(kwargs, series=series)
        png: bytes = real(series, **kwargs)
        return png

    monkeypatch.setattr(plotting, "activity_chart", spy)
    with open_store(config.store) as store:
        add(store, "separatism", [NOW - timedelta(hours=h, minutes=10) for h in range(0, 24 * 20, 5)])
        add(store, "separatism", [NOW - timedelta(hours=30, minutes=m) for m in range(1, 13)], prefix="burst")
        spike(store, "separatism", NOW - timedelta(hours=30))
        spike(store, "separatism", NOW - timedelta(days=40))  # before the span
        spike(store, "peoples-council", NOW - timedelta(hours=5))  # another topic
        spike(store, "separatism", NOW - timedelta(hours=2), kind=AlertKind.HEALTH)  # not a spike
        out = tmp_path / "chart.png"
        summary = plot_topics(
            store, config, topics=["separatism"], since=NOW - timedelta(days=14), until=NOW, by="hour", output=out
        )
    assert summary.startswith(f"wrote {out}: separatism ") and summary.endswith("over 14 days, 1 alert")
    assert png_ok(out) == (1100, 420)
    assert drawn["marks"] == {"separatism": (NOW - timedelta(hours=30),)}
    assert len(drawn["bands"]) == len(drawn["series"]["separatism"]) == 14 * 24  # NOW is on the hour: no extra one
    assert drawn["span"] == (NOW - timedelta(days=14), NOW)
    burst_hour = [v for t, v in drawn["series"]["separatism"] if t == NOW - timedelta(hours=31)]
    assert burst_hour == [13.0]  # the burst and one steady post
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".png", ".tmp")) == ["chart.png"]


def test_plot_of_several_topics_and_of_an_empty_span(tmp_path: Path, config: Config) -> None:
    with open_store(config.store) as store:
        add(store, "separatism", [NOW - timedelta(days=d) for d in range(10)])
        add(store, "peoples-council", [NOW - timedelta(days=d, hours=3) for d in range(4)], prefix="pc")
        both = plot_topics(
            store,
            config,
            topics=["separatism", "peoples-council"],
            since=NOW - timedelta(days=30),
            until=NOW,
            by="day",
            output=tmp_path / "both.png",
        )
        empty = plot_topics(
            store,
            config,
            topics=["separatism"],
            since=NOW - timedelta(days=400),
            until=NOW - timedelta(days=365),
            by="day",
            output=tmp_path / "empty.png",
        )
    assert both == f"wrote {tmp_path / 'both.png'}: separatism 10, peoples-council 4 posts over 30 days, 0 alerts"
    assert empty == f"wrote {tmp_path / 'empty.png'}: separatism 0 posts over 35 days, 0 alerts"
    png_ok(tmp_path / "both.png")
    png_ok(tmp_path / "empty.png")


def test_a_year_by_hour_is_drawn(tmp_path: Path, config: Config) -> None:
    with open_store(config.store) as store:
        add(store, "separatism", [NOW - timedelta(hours=h) for h in range(0, 24 * 365, 7)])
        summary = plot_topics(
            store,
            config,
            topics=["separatism"],
            since=NOW - timedelta(days=365),
            until=NOW,
            by="hour",
            output=tmp_path / "year.png",
        )
    assert summary.endswith("posts over 365 days, 0 alerts")
    png_ok(tmp_path / "year.png")


# ------------------------------------------------------------------------------------------- the CLI
def test_cli_plot_writes_the_png_and_prints_the_summary(tmp_path: Path) -> None:
    config = write_config(tmp_path, CONFIG)
    with open_store(tmp_path / "store.db") as store:
        add(store, "separatism", [datetime.now(UTC) - timedelta(hours=h) for h in range(1, 48, 3)])
    result = invoke(config, "plot", "--topic", "separatism", "--since", "3d", "--by", "hour", "-o", "c.png")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote c.png: separatism 16 posts over 3 days, 0 alerts")
    png_ok(tmp_path / "c.png")


def test_cli_plot_of_an_unknown_topic_is_a_usage_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, CONFIG)
    open_store(tmp_path / "store.db").close()
    result = invoke(config, "plot", "--topic", "separatism", "--topic", "nope", "-o", "c.png")
    assert result.returncode == 2
    assert "no topic named nope" in result.stderr
    assert not (tmp_path / "c.png").exists()
