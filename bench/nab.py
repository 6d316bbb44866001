"""NAB benchmark of the spike detector, scored like NAB's standard profile.

    .venv/bin/python bench/nab.py                 # runs `<venv>/bin/monitor detect FILE` per file
    .venv/bin/python bench/nab.py --in-process    # calls monitor.spikes.detect_series directly
    .venv/bin/python bench/nab.py --in-process --param threshold=4 --param seasonal=false   # a variant

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
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.spikes import DetectorParams, detect_series

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


def score_file(n_rows: int, windows: list[tuple[int, int]], detected: set[int], cost: dict[str, float]) -> FileScore:
    """Score detections (row indices) against windows (first row, last row), NAB's way."""
    probation = min(math.floor(0.15 * n_rows), 0.15 * 5000)
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


def detect_in_process(name: str, times: list[datetime], values: list[float], params: DetectorParams) -> set[int]:
    index = {t.replace(tzinfo=UTC): i for i, t in enumerate(times)}
    return {index[t] for t in detect_series(times, values, params)}


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


def parse_duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return timedelta(seconds=float(text[:-1]) * units[text[-1]])


def parse_params(pairs: list[str]) -> DetectorParams:
    params = DetectorParams()
    kinds = {f.name: f for f in fields(DetectorParams)}
    for pair in pairs:
        key, _, text = pair.partition("=")
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
        params = replace(params, **{key: value})
    return params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in-process", action="store_true", help="call spikes.detect_series, not the CLI")
    ap.add_argument("--param", action="append", default=[], help="override a DetectorParams field: name=value")
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated NAB data directories")
    ap.add_argument("--quiet", action="store_true", help="totals only")
    ap.add_argument("--reference", choices=("zscore", "poisson"), help="score a naive reference detector instead")
    ap.add_argument("--reference-threshold", type=float, default=4.0, help="z threshold of --reference")
    args = ap.parse_args()
    for line in validate_scorer():
        print(line)
    params = parse_params(args.param)
    monitor = Path(sys.executable).parent / "monitor"
    what = f"reference {args.reference} z >= {args.reference_threshold}" if args.reference else ""
    print(f"detector: {what or ('in-process' if args.in_process else monitor)} {'' if what else params}")
    windows_json = json.loads((NAB_DIR / "labels/combined_windows.json").read_text())
    head = f"{'file':44} {'alerts':>6} {'hit':>7} {'false':>5} {'prec':>5} {'recall':>6} {'F1':>5} {'raw':>7}"
    for dataset in args.sets.split(","):
        print(f"\n{dataset}\n{head}")
        total = [0.0, 0, 0, 0, 0]
        elapsed = 0.0
        for name in sorted(k for k in windows_json if k.startswith(dataset + "/")):
            times, values = load_series(name)
            start = time.perf_counter()
            if args.reference:
                detected = detect_reference(args.reference, times, values, args.reference_threshold)
            elif args.in_process:
                detected = detect_in_process(name, times, values, params)
            else:
                detected = detect_cli(name, times, monitor)
            elapsed += time.perf_counter() - start
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


def row_text(label: str, alerts: int, hits: int, windows: int, inside: int, raw: float) -> str:
    prec = inside / alerts if alerts else 0.0
    rec = hits / windows if windows else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    false = alerts - inside
    return f"{label:44} {alerts:6d} {hits:3d}/{windows:<3d} {false:5d} {prec:5.2f} {rec:6.2f} {f1:5.2f} {raw:7.2f}"


if __name__ == "__main__":
    main()
