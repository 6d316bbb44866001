"""bench/nab.py --explain: the classification of false alerts, on a hand-made series whose alerts and labels are
known (the function is pure: it takes the alerts, it does not run the detector), and the bench-only variant
`short_rearm` that changes the shortest scale's hysteresis and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.nab import STANDARD, ShortScaleRearm, classify_alerts, explain_lines, row_scores, sigmoid_credit
from monitor.spikes import Detection, DetectorParams

STEP = timedelta(minutes=5)
START = datetime(2015, 3, 1)  # naive, as NAB's timestamps
ROWS = 4000  # 13.9 days; NAB's probation: the first 600 rows
QUARTER = timedelta(minutes=15)
LABELLED = [(3300, 3359)]  # one window of 5 hours


def _series() -> tuple[list[datetime], list[float]]:
    values = [1.0] * ROWS  # a flat 3 posts per 15 minutes, 12 per hour
    for end, level in ((700, 20.0), (750, 10.0), (950, 30.0), (3100, 5.0)):
        values[end - 2 : end + 1] = [level] * 3  # 15-minute blips of 60, 30, 90 and 15
    return [START + i * STEP for i in range(ROWS)], values


def _alert(row: int, window: timedelta = QUARTER) -> Detection:
    return Detection(at=(START + row * STEP).replace(tzinfo=UTC), window=window, count=0.0, expected=0.0, score=0.0)


def test_each_false_alert_gets_its_scale_week_peak_previous_alert_hour_and_cost() -> None:
    times, values = _series()
    rows = (100, 750, 950, 1300, 3100, 3310, 3320, 3380)  # 100: probation; 3310 and 3320: in the labelled window
    alerts = [_alert(r, timedelta(hours=1) if r == 1300 else QUARTER) for r in rows]
    false, hits = classify_alerts(times, values, alerts, LABELLED, DetectorParams())
    assert [round((f.at.replace(tzinfo=None) - START) / STEP) for f in false] == [750, 950, 1300, 3100, 3380]
    by_row = dict(zip((750, 950, 1300, 3100, 3380), false, strict=True))
    # 750: 30 in its 15 minutes, below the 60 of row 700 two days before; the previous alert (in probation) 54 h ago
    assert (by_row[750].count, by_row[750].week_peak) == (30.0, 60.0)
    assert by_row[750].not_above_week and not by_row[750].soon_after_alert
    assert by_row[750].since_previous == 650 * STEP
    # 950: 90, the largest yet, 200 rows (16 h 40 min) after the alert at 750
    assert (by_row[950].count, by_row[950].week_peak) == (90.0, 60.0)
    assert not by_row[950].not_above_week and by_row[950].soon_after_alert
    # 1300, raised by the hour: nothing unusual in its hour (the flat 12), so the hour is ordinary
    assert by_row[1300].window == timedelta(hours=1) and by_row[1300].count == 12.0
    assert by_row[1300].ordinary_hour and by_row[1300].hour_score < by_row[1300].hour_threshold
    assert not by_row[750].ordinary_hour and not by_row[950].ordinary_hour  # 39 and 99 in an hour of 12
    # 3100: 15, above every 15-minute window of the last 7 days (the 90 at row 950 is 9 days back)
    assert (by_row[3100].count, by_row[3100].week_peak) == (15.0, 3.0) and not by_row[3100].not_above_week
    assert by_row[3100].ordinary_hour and 2.9 < by_row[3100].hour_score < 3.1  # Poisson: sqrt(2 (24 ln 2 - 12))
    # 3380: 21 rows after the labelled window, whose alert at 3320 counts as the previous one; NAB charges it less
    assert by_row[3380].since_previous == 60 * STEP and by_row[3380].soon_after_alert
    assert by_row[3380].cost == -STANDARD["fp"] * sigmoid_credit(21 / 59)
    assert 0 < by_row[3380].cost < by_row[3100].cost == STANDARD["fp"]
    _, scores = row_scores(ROWS, LABELLED, STANDARD)
    assert [f.cost for f in false] == [-scores[r] for r in (750, 950, 1300, 3100, 3380)]
    # the window's first alert (3310, not 3320) is described the same way; its cost is minus NAB's credit
    assert [h.at for h in hits] == [alerts[5].at] and hits[0].cost == -scores[3310] < 0
    assert hits[0].since_previous == 210 * STEP and hits[0].soon_after_alert and hits[0].ordinary_hour  # 17.5 h


def test_the_table_counts_each_reason_per_scale() -> None:
    times, values = _series()
    alerts = [_alert(r, timedelta(hours=1) if r == 1300 else QUARTER) for r in (750, 950, 1300, 3100, 3380)]
    alerts.append(_alert(3310))
    false, hits = classify_alerts(times, values, alerts, LABELLED, DetectorParams())
    lines = explain_lines(false, hits, n_windows=1)
    table = {line.split()[0]: line.split()[1:] for line in lines[1:4]}
    # false, <=7d peak, <=24h after, both, neither, hour ordinary, none of 3, NAB points
    # "15 min": 750 and 3380 not above the week; 950 and 3380 soon after an alert; 3100 neither; 3100 and 3380
    # in an ordinary hour (3100's hour of 24 against 12 scores about 3.0, below the hour's 3.78)
    assert table["15"][1:8] == ["4", "2", "2", "1", "1", "2", "0"]
    assert table["1"][1:8] == ["1", "1", "0", "0", "0", "1", "0"]  # "1 h": 1300, at the week's level, ordinary
    assert table["all"][:7] == ["5", "3", "2", "1", "1", "3", "0"]
    assert lines[4].split()[:2] == ["NAB", "pts"]
    assert lines[5].split() == ["hits", "1", "1", "1", "1", "0", "1", "0"]  # 3310: the week's level, 17.5 h after 3100


def test_short_rearm_changes_only_the_shortest_scales_hysteresis() -> None:
    variant = ShortScaleRearm(short_rearm=timedelta(days=4))
    assert variant.at_scale(QUARTER).rearm == timedelta(days=4)
    assert variant.at_scale(timedelta(hours=1)) == DetectorParams().at_scale(timedelta(hours=1))
    assert variant.at_scale(timedelta(hours=3)) == DetectorParams().at_scale(timedelta(hours=3))
    assert type(variant.at_scale(QUARTER)) is DetectorParams
