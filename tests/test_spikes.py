"""The spike detector (monitor.spikes): properties of the score and the alert rule, the daemon's
`evaluate` and the CLI's `detect_series`, and that both are the same detector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from monitor.spikes import (
    DetectorParams,
    Verdict,
    detect_alerts,
    detect_series,
    evaluate,
    judge,
    series_from_times,
    window_counts,
)
from monitor.types import CountSeries, Spike

P = DetectorParams()
NOW = datetime(2025, 3, 10, 14, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

histories = st.lists(st.integers(min_value=0, max_value=5000), max_size=200)
counts = st.integers(min_value=0, max_value=20000)


def poisson_history(rate: float, n: int = 168, seed: int = 1) -> list[int]:
    return [int(x) for x in np.random.default_rng(seed).poisson(rate, n)]


def nb_history(mean: float, phi: float, n: int = 168, seed: int = 1) -> list[int]:
    rng = np.random.default_rng(seed)
    return [int(x) for x in rng.poisson(mean * rng.gamma(1 / phi, phi, n))]


def posts_at(hour_counts: list[int], end: datetime) -> list[datetime]:
    """Posts spread inside consecutive hours; the last hour ends at `end`."""
    out = []
    for h, c in enumerate(hour_counts):
        start = end - (len(hour_counts) - h) * HOUR
        out += [start + timedelta(minutes=1 + 58 * (i + 1) / (c + 1)) for i in range(c)]
    return out


# ------------------------------------------------------------------ properties (Hypothesis)


@given(histories, counts, counts)
def test_a_higher_current_count_never_lowers_the_score(history: list[int], a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert judge(high, history, P).score >= judge(low, history, P).score - 1e-9


@given(histories, counts, st.integers(min_value=1, max_value=10))
def test_no_alert_below_min_count_ever(history: list[int], current: int, min_count: int) -> None:
    params = replace(P, min_count=min_count)
    verdict = judge(current, history, params)
    if current < min_count:
        assert not verdict.alert
    assert np.isfinite(verdict.score) and np.isfinite(verdict.expected)


@given(histories, st.integers(min_value=3, max_value=20000), st.floats(min_value=1e-4, max_value=1.0))
def test_scaling_all_counts_down_creates_no_alert_below_min_count(
    history: list[int], current: int, scale: float
) -> None:
    """The same shape at a smaller scale (a quieter topic) may alert only while it still reaches min_count."""
    small_history = [h * scale for h in history]
    verdict = judge(current * scale, small_history, P)
    if current * scale < P.min_count:
        assert not verdict.alert


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=400))
def test_detect_series_alerts_only_where_the_window_reaches_min_count(values: list[int]) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    times = [start + i * timedelta(minutes=10) for i in range(len(values))]
    for at in detect_series(times, values, P):
        i = times.index(at)
        assert sum(values[max(0, i - 5) : i + 1]) >= P.min_count  # 1 h = 6 buckets of 10 minutes


# ------------------------------------------------------------------ judge


def test_cold_start_alerts_at_min_count_and_not_below() -> None:
    assert judge(3, [], P).alert
    assert not judge(2, [], P).alert
    assert judge(3, [0] * 168, P).alert  # a week with no post at all is no history either
    assert not judge(2, [0] * 168, P).alert
    assert judge(3, [], P) == Verdict(count=3, expected=0.0, score=judge(3, [], P).score, alert=True)


@pytest.mark.parametrize("history", [poisson_history(20), nb_history(20, 0.3), poisson_history(0.5)])
def test_a_steady_history_does_not_alert_on_a_high_but_ordinary_count(history: list[int]) -> None:
    ordinary = int(np.quantile(history, 0.99)) + 1  # above anything seen lately, yet ordinary
    assert not judge(ordinary, history, replace(P, rearm=HOUR)).alert


def test_a_clear_burst_alerts_with_its_expected_count() -> None:
    verdict = judge(30, poisson_history(5), P)
    assert verdict.alert and verdict.score > P.threshold
    assert 4 < verdict.expected < 6


def test_a_noisy_topic_needs_a_bigger_burst_than_a_steady_one() -> None:
    steady, noisy = poisson_history(20), nb_history(20, 0.5)
    assert judge(45, steady, P).alert
    assert not judge(45, noisy, P).alert
    assert judge(45, steady, P).score > judge(45, noisy, P).score


def test_a_niche_topic_at_a_fifth_of_a_post_an_hour() -> None:
    history = poisson_history(0.2)
    assert not judge(2, history, P).alert  # below min_count
    assert judge(6, history, P).alert


def test_the_hour_of_day_profile_makes_a_night_burst_stand_out() -> None:
    # busy 08:00-20:00, quiet at night; the current window is 03:00-04:00, so history column c is the hour
    # (c + 3) % 24 (168 columns: the column just before the current window is 02:00-03:00)
    history_at_3am = [20 if 8 <= (c + 3) % 24 < 20 else 2 for c in range(168)]
    night = replace(P, rearm=HOUR)
    assert judge(12, history_at_3am, night).alert
    assert not judge(12, history_at_3am, replace(night, seasonal=False)).alert
    assert judge(12, history_at_3am, night).expected < 4


def test_a_running_spike_does_not_alert_again_until_it_grows_past_its_peak() -> None:
    history = [*poisson_history(5)[:-4], 50, 50, 50, 30]  # alerted three hours ago, still running
    assert not judge(45, history, P).alert
    assert judge(60, history, P).alert
    assert judge(45, history, replace(P, rearm=HOUR)).alert  # comparing with the last hour only, it would


def test_an_old_spike_in_the_history_does_not_hide_a_new_one() -> None:
    history = poisson_history(5)
    history[100] = 1000  # winsorised, so the mean and the dispersion stay those of the ordinary hours
    verdict = judge(30, history, P)
    assert verdict.alert and verdict.expected < 7


def test_bad_counts_and_params_are_rejected() -> None:
    with pytest.raises(ValueError, match="counts"):
        judge(-1, [1, 2], P)
    with pytest.raises(ValueError, match="counts"):
        judge(3, [1, float("inf")], P)
    with pytest.raises(ValueError, match="window"):
        DetectorParams(window=timedelta(0))
    with pytest.raises(ValueError, match="cooldown"):
        DetectorParams(cooldown=timedelta(hours=-1))


# ------------------------------------------------------------------ evaluate (the daemon)
def at_now(posts: list[datetime], params: DetectorParams | None = None) -> CountSeries:
    params = params or P
    return series_from_times(posts, NOW, params.step, params.buckets)


def test_window_counts_are_half_open_hours_ending_now() -> None:
    posts = [NOW, NOW - HOUR, NOW - HOUR - timedelta(seconds=1), NOW - 168 * HOUR, NOW + timedelta(seconds=1)]
    current, history = window_counts(posts, NOW, P)
    assert current == 1  # (now - 1h, now]: now - 1h belongs to the hour before; the future post is ignored
    assert len(history) == 168 and history[-1] == 2 and history[0] == 1 and sum(history) == 3


def test_evaluate_returns_a_spike_for_a_burst() -> None:
    posts = posts_at([*poisson_history(5, 167), 5], NOW - HOUR) + posts_at([30], NOW)
    spike = evaluate("separatism", at_now(posts), P, None)
    assert isinstance(spike, Spike)
    assert (spike.topic, spike.count, spike.window_start, spike.window_end) == ("separatism", 30, NOW - HOUR, NOW)
    assert 4 < spike.expected < 6 and spike.score > P.threshold


def test_cooldown_suppresses_a_second_alert_and_then_allows_one() -> None:
    posts = posts_at(poisson_history(5, 168), NOW - HOUR) + posts_at([30], NOW)
    assert evaluate("t", at_now(posts), P, last_alert_at=NOW - timedelta(hours=5, minutes=59)) is None
    assert evaluate("t", at_now(posts), P, last_alert_at=NOW - timedelta(hours=6)) is not None


def test_a_week_of_history_with_an_old_burst_and_a_quiet_window_is_not_fresh() -> None:
    history = poisson_history(5, 168)
    history[100] = 80  # a burst three days ago, brought in by a first poll
    posts = posts_at(history, NOW - HOUR)  # nothing in the current window
    assert evaluate("t", at_now(posts), P, None) is None
    assert evaluate("t", at_now(posts_at(history, NOW - HOUR) + posts_at([5], NOW)), P, None) is None


def test_a_brand_new_topic_alerts_at_min_count() -> None:
    assert evaluate("t", at_now([NOW - timedelta(minutes=m) for m in (5, 9)]), P, None) is None
    assert evaluate("t", at_now([NOW - timedelta(minutes=m) for m in (2, 5, 9)]), P, None) is not None


# ------------------------------------------------------------------ detect_series (`monitor detect`)


def steady_series(weeks: int, rate_per_hour: float, seed: int) -> tuple[list[datetime], list[float]]:
    rng = np.random.default_rng(seed)
    n = weeks * 7 * 288
    hour = (np.arange(n) / 12) % 24
    lam = rate_per_hour / 12 * (1 + 0.5 * np.sin(2 * np.pi * (hour - 9) / 24))
    start = datetime(2025, 1, 6, tzinfo=UTC)
    return [start + i * timedelta(minutes=5) for i in range(n)], rng.poisson(lam).astype(float).tolist()


def test_a_steady_daily_cycle_raises_no_alert_after_the_first_week() -> None:
    for seed in range(3):
        times, values = steady_series(3, 30, seed)
        assert [t for t in detect_series(times, values, P) if t >= times[7 * 288]] == []


def test_detect_series_finds_a_burst_and_applies_the_cooldown() -> None:
    times, values = steady_series(2, 10, 0)
    burst_at = 9 * 288 + 100
    for i in range(burst_at, burst_at + 12):
        values[i] += 6  # +72 posts in one hour, against about 10
    # 2 h later, bigger still: inside the cooldown, and out of the 3-hour window when the cooldown ends
    for i in range(burst_at + 24, burst_at + 36):
        values[i] += 9
    later = burst_at + 7 * 12  # 7 h later and bigger: after the cooldown
    for i in range(later, later + 12):
        values[i] += 12
    alerts = [t for t in detect_series(times, values, P) if t >= times[7 * 288]]
    assert len(alerts) == 2
    assert times[burst_at] <= alerts[0] < times[burst_at + 12]
    assert times[later] <= alerts[1] < times[later + 12]


def test_detect_series_is_causal() -> None:
    times, values = steady_series(2, 5, 4)
    for i in range(8 * 288, 8 * 288 + 12):
        values[i] += 5
    full = detect_series(times, values, P)
    for cut in (3000, 8 * 288 + 6, 8 * 288 + 100):
        assert detect_series(times[:cut], values[:cut], P) == [t for t in full if t < times[cut]]


def test_detect_series_and_evaluate_are_the_same_detector() -> None:
    """Hourly buckets through detect_series and raw posts through evaluate give the same decisions."""
    rng = np.random.default_rng(7)
    hours = [int(x) for x in rng.poisson(4, 24 * 12)]
    for h in (200, 230, 260):
        hours[h] += 15 + h % 7
    params = replace(P, cooldown=timedelta(0), scales=(1.0, 3.0))  # hourly rows: no 15-minute scale in the file
    start = datetime(2025, 2, 1, tzinfo=UTC)
    times = [start + h * HOUR for h in range(len(hours))]
    series_alerts = set(detect_series(times, [float(x) for x in hours], params))
    posts = posts_at(hours, start + len(hours) * HOUR)
    for h in range(169, len(hours)):  # from here both see a full week of history
        now = times[h] + HOUR
        series = series_from_times([p for p in posts if p <= now], now, params.step, params.buckets)
        daemon = evaluate("t", series, params, None) is not None
        assert daemon == (times[h] in series_alerts), h
    assert series_alerts  # the test is not vacuous


def test_detect_series_input_handling() -> None:
    assert detect_series([], [], P) == []
    naive = [datetime(2025, 1, 1) + i * HOUR for i in range(3)]
    assert detect_series(naive, [0.0, 4.0, 1.0], P) == [datetime(2025, 1, 1, 1, tzinfo=UTC)]  # cold start
    twice = [naive[0], naive[1], naive[1], naive[2]]
    assert detect_series(twice, [0.0, 2.0, 1.0, 0.0], P) == [datetime(2025, 1, 1, 1, tzinfo=UTC)]  # summed: 3
    assert detect_series(naive, [5.0, 0.0, 0.0], P) == []  # the first bucket has nothing before it in the file
    with pytest.raises(ValueError, match="length"):
        detect_series(naive, [1.0], P)
    with pytest.raises(ValueError, match="counts"):
        detect_series(naive, [1.0, float("nan"), 2.0], P)


def test_finer_buckets_give_the_same_verdict_as_whole_windows() -> None:
    rng = np.random.default_rng(11)
    posts = [NOW - timedelta(minutes=float(m)) for m in rng.uniform(0, 60 * 24 * 7, 400)]
    posts += [NOW - timedelta(minutes=float(m)) for m in rng.uniform(0, 60, 12)]  # a burst in the last hour
    coarse = evaluate("t", at_now(posts), P, None)
    fine = evaluate("t", series_from_times(posts, NOW, timedelta(minutes=15), P.buckets * 4), P, None)
    assert coarse is not None and coarse == fine
    with pytest.raises(ValueError, match="does not divide"):
        evaluate("t", series_from_times(posts, NOW, timedelta(minutes=25), 10), P, None)


# ------------------------------------------------------------------ several scales at once


def five_minute_series(rate_per_hour: float, weeks: int, seed: int) -> list[float]:
    """Poisson counts per 5-minute bucket at a flat rate."""
    return [float(x) for x in np.random.default_rng(seed).poisson(rate_per_hour / 12, weeks * 7 * 288)]


def five_minute_times(n: int) -> list[datetime]:
    start = datetime(2025, 1, 6, tzinfo=UTC)
    return [start + i * timedelta(minutes=5) for i in range(n)]


def test_the_scales_share_the_false_alert_budget() -> None:
    """Each of the three scales gets a third of the single window's tail probability (Bonferroni), so
    together they raise about the false alerts of one window at `threshold`."""
    from statistics import NormalDist

    assert P.windows == (timedelta(minutes=15), HOUR, 3 * HOUR) and P.step == timedelta(minutes=15)
    assert P.buckets == (56 + 1) * 12  # the 3-hour scale reads the most: 57 windows of 12 buckets
    single = replace(P, scales=(1.0,))
    assert single.at_scale(HOUR).threshold == P.threshold and single.step == HOUR and single.buckets == 169
    tail = NormalDist().cdf
    for w in P.windows:
        assert tail(-P.at_scale(w).threshold) == pytest.approx(tail(-P.threshold) / 3)
    assert P.at_scale(HOUR).threshold == pytest.approx(3.7828, abs=1e-4)
    with pytest.raises(ValueError, match="whole multiple"):
        DetectorParams(scales=(1.0, 1.5))
    with pytest.raises(ValueError, match="whole multiple"):  # a changed copy is checked too (msgspec >= 0.21)
        replace(P, scales=(1.0, 1.5))


def test_a_sharp_15_minute_burst_alerts_within_15_minutes_on_the_15_minute_scale() -> None:
    values = five_minute_series(6, 2, 3)
    burst = 10 * 288 + 150
    for i in range(burst, burst + 3):
        values[i] += 5  # 15 posts in 15 minutes against about 1.5
    times = five_minute_times(len(values))
    found = [d for d in detect_alerts(times, values, P) if d.at >= times[7 * 288]]
    assert len(found) == 1
    assert times[burst] <= found[0].at <= times[burst + 2]
    assert found[0].window == timedelta(minutes=15) and found[0].score >= P.at_scale(found[0].window).threshold
    single = [t for t in detect_series(times, values, replace(P, scales=(1.0,))) if t >= times[7 * 288]]
    assert not single or single[0] >= found[0].at  # the single hour is never faster


def test_a_slow_ramp_is_caught_by_the_3_hour_scale() -> None:
    values = five_minute_series(20, 2, 5)
    ramp = 10 * 288 + 60
    for j, i in enumerate(range(ramp, ramp + 36)):
        values[i] += float(np.random.default_rng(j).poisson(20 / 12 * 1.2 * j / 36))  # up to 2.2x over 3 h
    times = five_minute_times(len(values))
    single = [t for t in detect_series(times, values, replace(P, scales=(1.0,))) if t >= times[7 * 288]]
    found = [d for d in detect_alerts(times, values, P) if d.at >= times[7 * 288]]
    assert single == []  # no single hour is unusual enough
    assert len(found) == 1 and found[0].window == 3 * HOUR
    assert times[ramp] <= found[0].at <= times[ramp + 48]


def test_flat_series_raise_nothing_on_any_scale() -> None:
    for per_bucket in (0.0, 1.0, 2.0, 25.0):  # exactly flat: nothing, whatever the scale
        times = five_minute_times(2 * 7 * 288)
        assert detect_alerts(times, [per_bucket] * len(times), P) == []
    false = single = 0
    for seed, rate in enumerate((0.5, 4.0, 50.0, 300.0)):  # Poisson noise: about 0.1 false alerts a week
        values = five_minute_series(rate, 3, 20 + seed)
        times = five_minute_times(len(values))
        false += len([d for d in detect_alerts(times, values, P) if d.at >= times[7 * 288]])
        single += len([t for t in detect_series(times, values, replace(P, scales=(1.0,))) if t >= times[7 * 288]])
    # 8 topic-weeks: the shared budget keeps three scales near one window's rate (1 and 2 with these seeds)
    assert false <= single + 1 and false <= 3


def test_the_daemon_alerts_once_per_spike_with_the_window_that_fired() -> None:
    """`evaluate` every 5 minutes through two bursts a day apart, the last alert fed back as the cooldown."""
    rng = np.random.default_rng(9)
    posts = [NOW - timedelta(minutes=float(m)) for m in rng.uniform(0, 60 * 24 * 9, 9 * 24 * 4)]  # 4 an hour
    first, second = NOW - timedelta(hours=30), NOW - timedelta(hours=4)
    posts += [first + timedelta(minutes=float(m)) for m in rng.uniform(0, 20, 20)]  # 20 posts in 20 minutes
    posts += [second + timedelta(minutes=float(m)) for m in rng.uniform(0, 120, 60)]  # 60 posts in 2 hours
    posts.sort()
    raised: list[Spike] = []
    last: datetime | None = None
    for tick in range(36 * 12):
        now = NOW - timedelta(hours=36) + tick * timedelta(minutes=5)
        series = series_from_times([p for p in posts if p <= now], now, P.step, P.buckets)
        spike = evaluate("t", series, P, last)
        if spike is not None:
            raised.append(spike)
            last = now
    assert [s.window_end - s.window_start for s in raised] == [timedelta(minutes=15), HOUR] or len(raised) == 2
    assert first <= raised[0].window_end <= first + timedelta(minutes=20)
    assert second <= raised[1].window_end <= second + timedelta(hours=2)


def test_a_file_with_a_long_gap_judges_the_rows_after_it_as_a_file_of_its_own() -> None:
    """Missing buckets count 0; 200 days without rows (more buckets than rows: the sparse lookups) are beyond
    every baseline, so a week after the gap the alerts are those of the rows after it read alone."""
    before = five_minute_series(6, 2, 31)
    after = five_minute_series(6, 2, 32)
    burst = 10 * 288 + 40
    for i in range(burst, burst + 3):
        after[i] += 6
    gap = timedelta(days=200)  # 57,600 empty buckets against 8,064 rows
    times_before = five_minute_times(len(before))
    times_after = [t + len(before) * timedelta(minutes=5) + gap for t in five_minute_times(len(after))]
    both = detect_alerts(times_before + times_after, before + after, P)
    alone = detect_alerts(times_after, after, P)
    week = times_after[8 * 288]
    assert [d for d in both if d.at >= week] == [d for d in alone if d.at >= week] != []
