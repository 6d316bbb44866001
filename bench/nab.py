"""NAB benchmark of the spike detector, scored like NAB's standard profile.

    .venv/bin/python bench/nab.py                 # runs `<venv>/bin/monitor detect FILE` per file
    .venv/bin/python bench/nab.py --in-process    # calls monitor.spikes.detect_alerts directly
    .venv/bin/python bench/nab.py --in-process --param threshold=4 --param seasonal=false   # a variant
    .venv/bin/python bench/nab.py --explain --quiet --sets realTweets   # then classify every false alert
    .venv/bin/python bench/nab.py --explain --quiet --sets realTweets --param short_rearm=4d   # the 4-day re-arm

`--explain` prints, after the score, a table of the false alerts (after probation, outside every labelled
window) by the scale that raised them and by reason: no larger than a same-length window of the previous 7
days, within 24 h of the series' previous alert, or in an hour that is ordinary at the 1-hour scale; with
what they cost in NAB points. `--param short_rearm=D` is a bench-only variant (not a detector parameter):
the shortest scale's hysteresis looks back D instead of `rearm`; bench/synthetic_spikes.py takes it too.

The detector runs with its DEFAULT parameters (the daemon's) unless --param says otherwise; nothing
is tuned per file. The scorer follows /work/shared/benchmarks/nab/PROVENANCE.md (probation, sigmoid
credit, merged windows from labels/combined_windows.json, normalisation against null and perfect)
and validates itself first: the `null` detector's published per-file scores must come out exactly,
and hand-worked sigmoid cases must hold. NAB data: MIT License, Copyright 2014-2024 Numenta Inc.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.spikes import Detection, DetectorParams, detect_alerts, judge

NAB_DIR = Path(os.environ.get("NAB_DIR", "/work/shared/benchmarks/nab"))
SETS = ("realTweets", "realKnownCause")
PUBLISHED = ("ARTime", "contextOSE", "numenta", "twitterADVec", "windowedGaussian", "skyline", "null")
STANDARD = {"tp": 1.0, "fp": 0.11, "fn": 1.0}


# ---------------------------------------------------------------- scorer


def sigmoid_credit(y: float) -> float:
    """NAB's scaled sigmoid S(y) = 2/(1+exp(5y)) - 1, fixed at -1 from y = 3 on."""
    if y >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


@dataclass(frozen=True)
class FileScore:
    raw: float  # NAB raw score for the file
    windows: int  # windows that count (at least one row after probation)
    hits: int  # windows with at least one detection
    alerts: int  # detections after probation
    inside: int  # of which inside a window
    probation: int  # detections ignored because they fall in the probation period


def probation_rows(n_rows: int) -> float:
    """NAB's probation: detections in the first 15% of a file (at most 750 rows) are ignored."""
    return min(math.floor(0.15 * n_rows), 0.15 * 5000)


def row_scores(
    n_rows: int, windows: list[tuple[int, int]], cost: dict[str, float]
) -> tuple[list[int | None], list[float]]:
    """For each row: the window it lies in (None outside every window) and what a detection there earns."""
    window_of: list[int | None] = [None] * n_rows
    row_score = [cost["fp"] * sigmoid_credit(3.0)] * n_rows  # before the first window: a full FP
    for w, (left, right) in enumerate(windows):
        width = right - left + 1
        for i in range(left, right + 1):
            window_of[i] = w
            row_score[i] = cost["tp"] * sigmoid_credit(-(right - i + 1) / width) / sigmoid_credit(-1.0)
        following = windows[w + 1][0] if w + 1 < len(windows) else n_rows
        for i in range(right + 1, following):  # distance past the most recent window, in (width - 1)s
            row_score[i] = cost["fp"] * sigmoid_credit((i - right) / (width - 1))
    return window_of, row_score


def score_file(n_rows: int, windows: list[tuple[int, int]], detected: set[int], cost: dict[str, float]) -> FileScore:
    """Score detections (row indices) against windows (first row, last row), NAB's way."""
    probation = probation_rows(n_rows)
    window_of, row_score = row_scores(n_rows, windows, cost)
    counted = {window_of[i] for i in range(n_rows) if i >= probation and window_of[i] is not None}
    best = dict.fromkeys(counted, -cost["fn"])
    false_cost = 0.0
    alerts = inside = ignored = 0
    for i in sorted(detected):
        if i < probation:
            ignored += 1
            continue
        alerts += 1
        hit = window_of[i]
        if hit is None:
            false_cost += row_score[i]
        else:
            inside += 1
            best[hit] = max(best[hit], row_score[i])
    hits = sum(1 for w in counted if best[w] > -cost["fn"])
    return FileScore(sum(best.values()) + false_cost, len(counted), hits, alerts, inside, ignored)


def normalised(raw: float, windows: int, cost: dict[str, float]) -> float:
    null, perfect = -cost["fn"] * windows, cost["tp"] * windows
    return 100.0 * (raw - null) / (perfect - null)


def validate_scorer() -> list[str]:
    """Check the scorer; returns lines to print. Raises AssertionError on a mismatch."""
    lines = []
    checked = 0
    with (NAB_DIR / "results/null/null_standard_scores.csv").open() as fh:
        for row in csv.DictReader(fh):
            name = row["File"]
            if not name or not (NAB_DIR / "data" / name).exists():
                continue
            times, _ = load_series(name)
            got = score_file(len(times), load_windows(name, times), set(), STANDARD).raw
            assert abs(got - float(row["Score"])) < 1e-12, (name, got, row["Score"])
            checked += 1
    lines.append(f"scorer check 1: null detector, {checked} files: published per-file raw scores reproduced exactly")
    n, win = 1000, [(400, 499)]  # probation = 150 rows
    s1 = sigmoid_credit(-1.0)
    cases = [
        ({400}, 1.0),  # first row of the window: full credit
        ({499}, sigmoid_credit(-1 / 100) / s1),  # last row: almost nothing
        ({449, 400}, 1.0),  # only the best detection counts
        ({450}, sigmoid_credit(-0.5) / s1),  # the middle: 0.848/0.987
        ({300}, -1.0 - 0.11),  # before the first window: a full FP and a missed window
        ({100}, -1.0),  # probation: ignored
        ({499 + 99}, -1.0 + 0.11 * sigmoid_credit(1.0)),  # one window-width (w - 1 rows) past the end
        ({499 + 3 * 99}, -1.0 - 0.11),  # 3 widths past: a full FP
        ({600, 601}, -1.0 + 0.11 * (sigmoid_credit(101 / 99) + sigmoid_credit(102 / 99))),  # each FP row
    ]
    for detected, expected in cases:
        got = score_file(n, win, detected, STANDARD).raw
        assert abs(got - expected) < 1e-12, (detected, got, expected)
    assert score_file(n, [(50, 99)], set(), STANDARD).raw == 0.0  # a window inside probation does not count
    lines.append(f"scorer check 2: {len(cases) + 1} hand-worked sigmoid/probation cases hold")
    return lines


# ---------------------------------------------------------------- data


def load_series(name: str) -> tuple[list[datetime], list[float]]:
    with (NAB_DIR / "data" / name).open() as fh:
        rows = list(csv.DictReader(fh))
    return [datetime.fromisoformat(r["timestamp"]) for r in rows], [float(r["value"]) for r in rows]


def load_windows(name: str, times: list[datetime]) -> list[tuple[int, int]]:
    index = {t: i for i, t in enumerate(times)}
    spans = json.loads((NAB_DIR / "labels/combined_windows.json").read_text())[name]
    return [(index[datetime.fromisoformat(a)], index[datetime.fromisoformat(b)]) for a, b in spans]


def published_scores(detector: str, dataset: str) -> float:
    raw = 0.0
    windows = json.loads((NAB_DIR / "labels/combined_windows.json").read_text())
    count = sum(len(v) for k, v in windows.items() if k.startswith(dataset + "/"))
    with (NAB_DIR / f"results/{detector}/{detector}_standard_scores.csv").open() as fh:
        for row in csv.DictReader(fh):
            if row["File"].startswith(dataset + "/"):
                raw += float(row["Score"])
    return normalised(raw, count, STANDARD)


# ---------------------------------------------------------------- running the detector


def detect_in_process(times: list[datetime], alerts: list[Detection]) -> set[int]:
    index = {t.replace(tzinfo=UTC): i for i, t in enumerate(times)}
    return {index[a.at] for a in alerts}


def detect_cli(name: str, times: list[datetime], monitor: Path) -> set[int]:
    """`monitor detect FILE` from an empty directory without MONITOR_CONFIG, so no config changes the defaults."""
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    with tempfile.TemporaryDirectory() as empty:
        out = subprocess.run(
            [str(monitor), "detect", str(NAB_DIR / "data" / name)],
            capture_output=True,
            text=True,
            check=True,
            cwd=empty,
            env=env,
        ).stdout
    index = {t.replace(tzinfo=UTC): i for i, t in enumerate(times)}
    found = set()
    for line in out.splitlines():
        if line.strip():
            stamp = datetime.fromisoformat(line.split()[0])  # the first field is the time
            found.add(index[stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)])
    return found


def detect_reference(kind: str, times: list[datetime], values: list[float], threshold: float) -> set[int]:
    """Naive references on the same windows (1 h vs the 168 hours before, min_count 3, cooldown 6 h, NAB's
    regular 5-minute series only): `zscore` = (x - mean) / sd of the history; `poisson` = the normal quantile
    of the Poisson tail P(X >= x | mean of the history) (scipy, bench only)."""
    import numpy as np
    from scipy.stats import norm, poisson  # type: ignore[import-untyped]

    w, k, cooldown = 12, 168, 72
    v = np.asarray(values)
    cum = np.concatenate([[0.0], np.cumsum(v)])
    found: set[int] = set()
    last = -cooldown
    for i in range(len(v)):
        cur = cum[i + 1] - cum[max(0, i + 1 - w)]
        ends = i + 1 - w * np.arange(1, k + 1)
        ends = ends[ends - w >= 0]
        if cur < 3 or i - last < cooldown:
            continue
        hist = cum[ends] - cum[ends - w]
        mean = hist.mean() if len(hist) else 0.0
        if kind == "zscore":
            sd = hist.std() if len(hist) > 1 else 0.0
            z = (cur - mean) / sd if sd > 0 else math.inf
        else:
            z = float(norm.isf(poisson.sf(cur - 1, mean))) if mean > 0 else math.inf
        if z >= threshold:
            found.add(i)
            last = i
    return found


# ---------------------------------------------------------------- explaining the false alerts

WEEK = timedelta(days=7)
RECENT = timedelta(hours=24)


@dataclass(frozen=True)
class ExplainedAlert:
    """An alert after probation and outside every labelled window, with what may explain it (or, described the same
    way, the first alert in a labelled window)."""

    at: datetime  # the row that alerted (aware UTC)
    window: timedelta  # the scale that raised it
    count: float  # its window's count
    week_peak: float  # the highest same-length window count in the 7 days before its window (0 without any)
    since_previous: timedelta | None  # time since the series' previous alert (None for its first)
    cost: float  # what NAB charges for it, in raw score (0.11 at most, less just after a labelled window)
    hour_score: float  # the score of the base window (`window`, 1 h) ending at the same row
    hour_threshold: float  # what that window needs to alert on its own (its share of the budget)

    @property
    def not_above_week(self) -> bool:
        """No larger than a same-length window of the previous 7 days: a hysteresis of 7 days would block it."""
        return self.count <= self.week_peak

    @property
    def soon_after_alert(self) -> bool:
        """Within 24 h of the previous alert on the series (a running story alerting again)."""
        return self.since_previous is not None and self.since_previous <= RECENT

    @property
    def ordinary_hour(self) -> bool:
        """The base window (1 h) ending with it does not reach its own threshold: a blip shorter than an hour."""
        return self.hour_score < self.hour_threshold


def classify_alerts(
    times: Sequence[datetime],
    values: Sequence[float],
    alerts: Sequence[Detection],
    windows: list[tuple[int, int]],
    params: DetectorParams,
) -> tuple[list[ExplainedAlert], list[ExplainedAlert]]:
    """The false alerts of one regular series (one row per bucket, as NAB's files), in time order: alerts after
    probation outside every window (first row, last row); and, described the same way, the first alert in each
    window that counts (its `cost` is then minus the credit NAB gives it), to see whether a reason separates
    the two. Pure: the series, the alerts and the labels in."""
    index = {_aware(t): i for i, t in enumerate(times)}
    step = _median_step(times)
    week = round(WEEK / step)
    base = params.at_scale(params.window)
    hour = max(1, round(params.window / step))
    cum = [0.0, *accumulate(values)]
    window_of, row_score = row_scores(len(times), windows, STANDARD)
    probation = probation_rows(len(times))
    false: list[ExplainedAlert] = []
    first_hits: dict[int, ExplainedAlert] = {}
    previous: datetime | None = None
    for alert in sorted(alerts, key=lambda a: a.at):
        i = index[_aware(alert.at)]
        hit = window_of[i]
        if i >= probation and (hit is None or hit not in first_hits):
            w = max(1, round(alert.window / step))
            ends = range(max(w - 1, i - week), i - w + 1)  # earlier windows, wholly in the file, none overlapping
            described = ExplainedAlert(
                at=_aware(alert.at),
                window=alert.window,
                count=cum[i + 1] - cum[max(0, i + 1 - w)],
                week_peak=max((cum[j + 1] - cum[j + 1 - w] for j in ends), default=0.0),
                since_previous=None if previous is None else _aware(alert.at) - previous,
                cost=-row_score[i],
                hour_score=_window_score(cum, i, hour, params.baseline // params.window, base),
                hour_threshold=base.threshold,
            )
            if hit is None:
                false.append(described)
            else:
                first_hits[hit] = described
        previous = _aware(alert.at)
    return false, [first_hits[w] for w in sorted(first_hits)]


def _window_score(cum: list[float], i: int, w: int, k: int, scale: DetectorParams) -> float:
    """The detector's score of the w-row window ending at row i against the (up to) k aligned windows before it."""
    ends = [e for e in range(i - k * w, i, w) if e - w + 1 >= 0]
    return judge(cum[i + 1] - cum[i + 1 - w], [cum[e + 1] - cum[e + 1 - w] for e in ends], scale).score


def explain_lines(false: Sequence[ExplainedAlert], first_hits: Sequence[ExplainedAlert], n_windows: int) -> list[str]:
    """The table of `--explain`: the false alerts by scale, and within each how many each reason covers (a false
    alert can have several reasons); `NAB pts` = what they cost in normalised points (their raw cost over the
    perfect-minus-null span), an upper bound of what dropping them alone would gain. Last, the same reasons for
    the first alert in each labelled window hit: a rule that drops a reason's false alerts drops those too."""
    points = 100.0 / (2 * n_windows) if n_windows else 0.0  # STANDARD: null = -windows, perfect = +windows
    reasons: list[tuple[str, Callable[[ExplainedAlert], bool]]] = [
        ("<=7d peak", lambda f: f.not_above_week),
        ("<=24h after", lambda f: f.soon_after_alert),
        ("both", lambda f: f.not_above_week and f.soon_after_alert),
        ("neither", lambda f: not (f.not_above_week or f.soon_after_alert)),
        ("hour ordinary", lambda f: f.ordinary_hour),
        ("none of 3", lambda f: not (f.not_above_week or f.soon_after_alert or f.ordinary_hour)),
    ]
    head = f"{'scale':8} {'false':>5} " + " ".join(f"{name:>13}" for name, _ in reasons) + f" {'NAB pts':>7}"
    lines = [head]
    groups = [(_scale_label(w), [f for f in false if f.window == w]) for w in sorted({f.window for f in false})]
    for label, group in [*groups, ("all", list(false))]:
        cells = " ".join(f"{sum(1 for f in group if test(f)):13d}" for _, test in reasons)
        lines.append(f"{label:8} {len(group):5d} {cells} {sum(f.cost for f in group) * points:7.1f}")
    cost = " ".join(f"{sum(f.cost for f in false if test(f)) * points:13.1f}" for _, test in reasons)
    lines.append(f"{'NAB pts':8} {'':5} {cost}")
    cells = " ".join(f"{sum(1 for f in first_hits if test(f)):13d}" for _, test in reasons)
    lines.append(f"{'hits':8} {len(first_hits):5d} {cells}")
    lines += [
        "<=7d peak: its count is no larger than a same-length window of the 7 days before (a 7-day rearm blocks it);",
        "<=24h after: within 24 h of the series' previous alert; hour ordinary: the 1-hour window ending with it",
        "stays below the 1-hour scale's own threshold (a blip shorter than the hour). NAB pts: their cost;",
        "hits: the first alert in each labelled window hit (any scale), by the same reasons.",
    ]
    return lines


def _scale_label(window: timedelta) -> str:
    minutes = round(window.total_seconds() / 60)
    return f"{minutes} min" if minutes < 60 or minutes % 60 else f"{minutes // 60} h"


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _median_step(times: Sequence[datetime]) -> timedelta:
    steps = sorted(b - a for a, b in pairwise(times) if b > a)
    return steps[len(steps) // 2] if steps else timedelta(minutes=5)


class ShortScaleRearm(DetectorParams, frozen=True):
    """A bench-only variant (`--param short_rearm=4d`), not a detector parameter: the shortest scale's hysteresis
    looks back `short_rearm` instead of `rearm` (a 15-minute window must beat every 15-minute window of the last
    4 days); the other scales and everything else stay as they are."""

    short_rearm: timedelta = timedelta(hours=24)

    def at_scale(self, window: timedelta, among: int | None = None) -> DetectorParams:
        scale = super().at_scale(window, among)
        plain = DetectorParams(**{f.name: getattr(scale, f.name) for f in msgspec.structs.fields(DetectorParams)})
        if min(self.windows, key=lambda w: abs(w - window)) == self.windows[0]:  # the shortest scale
            return msgspec.structs.replace(plain, rearm=self.short_rearm)
        return plain


def parse_duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return timedelta(seconds=float(text[:-1]) * units[text[-1]])


def parse_params(pairs: list[str]) -> DetectorParams:
    params = DetectorParams()
    kinds = {f.name: f for f in msgspec.structs.fields(DetectorParams)}
    for pair in pairs:
        key, _, text = pair.partition("=")
        if key == "short_rearm":  # the bench-only variant above
            plain = {f.name: getattr(params, f.name) for f in msgspec.structs.fields(DetectorParams)}
            params = ShortScaleRearm(**plain, short_rearm=parse_duration(text))
            continue
        current = getattr(params, key) if key in kinds else None
        if current is None:
            raise SystemExit(f"unknown parameter {key!r}")
        value: Any
        if isinstance(current, tuple):
            value = tuple(float(x) for x in text.split(","))
        elif isinstance(current, bool):
            value = text.lower() in ("1", "true", "yes")
        elif isinstance(current, int | float):
            value = type(current)(text)
        else:
            value = parse_duration(text)
        params = msgspec.structs.replace(params, **{key: value})
    return params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in-process", action="store_true", help="call spikes.detect_series, not the CLI")
    ap.add_argument(
        "--param", action="append", default=[], help="override a DetectorParams field: name=value (runs in-process)"
    )
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated NAB data directories")
    ap.add_argument("--quiet", action="store_true", help="totals only")
    ap.add_argument("--reference", choices=("zscore", "poisson"), help="score a naive reference detector instead")
    ap.add_argument("--reference-threshold", type=float, default=4.0, help="z threshold of --reference")
    ap.add_argument("--explain", action="store_true", help="classify the false alerts (runs in-process)")
    args = ap.parse_args()
    if args.explain and args.reference:
        ap.error("--explain classifies the detector's alerts, not a reference's")
    for line in validate_scorer():
        print(line)
    params = parse_params(args.param)
    monitor = Path(sys.executable).parent / "monitor"
    what = f"reference {args.reference} z >= {args.reference_threshold}" if args.reference else ""
    # `monitor detect` runs with the defaults, so a variant (--param) is judged in-process: the CLI would
    # silently score the defaults under the variant's name
    in_process = args.in_process or args.explain or bool(args.param)
    print(f"detector: {what or ('in-process' if in_process else monitor)} {'' if what else params}")
    windows_json = json.loads((NAB_DIR / "labels/combined_windows.json").read_text())
    head = f"{'file':44} {'alerts':>6} {'hit':>7} {'false':>5} {'prec':>5} {'recall':>6} {'F1':>5} {'raw':>7}"
    for dataset in args.sets.split(","):
        print(f"\n{dataset}\n{head}")
        total = [0.0, 0, 0, 0, 0]
        false: list[ExplainedAlert] = []
        first_hits: list[ExplainedAlert] = []
        elapsed = 0.0
        for name in sorted(k for k in windows_json if k.startswith(dataset + "/")):
            times, values = load_series(name)
            start = time.perf_counter()
            if args.reference:
                detected = detect_reference(args.reference, times, values, args.reference_threshold)
            elif in_process:
                raised = detect_alerts(times, values, params)
                detected = detect_in_process(times, raised)
            else:
                detected = detect_cli(name, times, monitor)
            elapsed += time.perf_counter() - start
            if args.explain:
                wrong, right = classify_alerts(times, values, raised, load_windows(name, times), params)
                false += wrong
                first_hits += right
            s = score_file(len(times), load_windows(name, times), detected, STANDARD)
            for i, v in enumerate((s.raw, s.windows, s.hits, s.alerts, s.inside)):
                total[i] += v
            if not args.quiet:
                print(row_text(name.split("/")[1], s.alerts, s.hits, s.windows, s.inside, s.raw))
        raw, wins, hits, alerts, inside = total
        print(row_text("TOTAL", int(alerts), int(hits), int(wins), int(inside), raw))
        print(
            f"NAB standard score (normalised, this set): {normalised(raw, int(wins), STANDARD):.1f}"
            f"   [detector time {elapsed:.2f} s]"
        )
        print("published, same set: " + ", ".join(f"{d} {published_scores(d, dataset):.1f}" for d in PUBLISHED))
        if args.explain:
            print(f"\nfalse alerts of {dataset}, classified")
            print("\n".join(explain_lines(false, first_hits, int(wins))))


def row_text(label: str, alerts: int, hits: int, windows: int, inside: int, raw: float) -> str:
    prec = inside / alerts if alerts else 0.0
    rec = hits / windows if windows else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    false = alerts - inside
    return f"{label:44} {alerts:6d} {hits:3d}/{windows:<3d} {false:5d} {prec:5.2f} {rec:6.2f} {f1:5.2f} {raw:7.2f}"


if __name__ == "__main__":
    main()
