"""Synthetic benchmark of the spike detector: recall of injected bursts and false alerts per week.

    .venv/bin/python bench/synthetic_spikes.py
    .venv/bin/python bench/synthetic_spikes.py --param threshold=4      # a variant

Each series is 5 weeks of 5-minute buckets (the daemon re-evaluates the sliding 1-hour window at
every poll; 5-minute buckets mimic that). Posts arrive at a base rate (posts per hour, daily mean)
with a daily cycle (1 + 0.5 sin: the busiest hour is 3x the quietest), as Poisson counts or as
negative-binomial counts (gamma-mixed Poisson; `phi` is the hour-level dispersion, variance
mu + phi mu^2). The first week is warm-up: not scored. In the 4 scored weeks, 8 bursts (2 a week,
at least 12 h apart, random times of day) each multiply the expected rate by `m` for one hour.
A burst is found if an alert fires from its start to one window after its end; every other alert
is false. `reachable` is the share of bursts whose 1-hour count reaches min_count at all (nothing
below min_count can ever alert). Seeds are fixed: the figures are reproducible.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nab import parse_params  # type: ignore[import-not-found]

from monitor.spikes import DetectorParams, detect_series

STEP = timedelta(minutes=5)
PER_HOUR = 12
WEEK = 7 * 24 * PER_HOUR
WEEKS = 5
BURSTS = 8
RATES = (0.2, 1.0, 5.0, 30.0, 300.0)
NOISES = ("poisson", "nb 0.1", "nb 0.3")
MULTS = (3, 5, 10)
SEEDS = 3
START = datetime(2025, 1, 6, tzinfo=UTC)


@dataclass(frozen=True)
class Series:
    counts: np.ndarray  # posts per 5-minute bucket
    bursts: np.ndarray  # bucket index where each burst starts (lasts one hour)


def make_series(rate: float, noise: str, mult: float, seed: int) -> Series:
    rng = np.random.default_rng(seed)
    n = WEEKS * WEEK
    hour = (np.arange(n) / PER_HOUR) % 24
    lam = rate / PER_HOUR * (1 + 0.5 * np.sin(2 * np.pi * (hour - 9) / 24))
    slot = (n - WEEK - 2 * PER_HOUR) // BURSTS
    bursts = WEEK + slot * np.arange(BURSTS) + rng.integers(0, slot - 12 * PER_HOUR, BURSTS)
    mean = lam.copy()
    for b in bursts:
        mean[b : b + PER_HOUR] *= mult
    if noise != "poisson":
        phi = float(noise.split()[1])
        shape = 1 / (phi * PER_HOUR)  # per-bucket gamma: hourly sums have dispersion phi
        mean = mean * rng.gamma(shape, 1 / shape, n)
    return Series(rng.poisson(mean).astype(float), bursts)


def score(series: Series, params: DetectorParams) -> tuple[int, int, int, float]:
    """(bursts found, bursts reachable, false alerts, scored weeks)."""
    n = len(series.counts)
    times = [START + i * STEP for i in range(n)]
    alerts = detect_series(times, series.counts.tolist(), params)
    idx = np.array([round((a - START) / STEP) for a in alerts], dtype=int)
    idx = idx[idx >= WEEK]
    matched = np.zeros(len(idx), dtype=bool)
    found = reachable = 0
    for b in series.bursts:
        near = (idx >= b) & (idx < b + 2 * PER_HOUR)
        found += int(near.any())
        matched |= near
        reachable += int(series.counts[b : b + PER_HOUR].sum() >= params.min_count)
    return found, reachable, int((~matched).sum()), (n - WEEK) / WEEK


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--param", action="append", default=[], help="override a DetectorParams field: name=value")
    args = ap.parse_args()
    params = parse_params(args.param)
    print(f"detector: {params}")
    print(f"{'noise':8} {'rate/h':>6} {'FA/week':>8}   " + "   ".join(f"recall {m}x (reachable)" for m in MULTS))
    start = time.perf_counter()
    all_fa, all_rec = [], {m: [0, 0] for m in MULTS}
    for noise in NOISES:
        for rate in RATES:
            fa = weeks = 0.0
            cells = []
            for m in MULTS:
                found = reach = total = 0
                for seed in range(SEEDS):
                    s = make_series(rate, noise, m, seed * 1000 + m * 10 + int(rate * 10))
                    f, r, false, w = score(s, params)
                    found, reach, total = found + f, reach + r, total + BURSTS
                    fa, weeks = fa + false, weeks + w
                all_rec[m][0] += found
                all_rec[m][1] += total
                cells.append(f"{found / total:6.2f} ({reach / total:4.2f})      ")
            all_fa.append(fa / weeks)
            print(f"{noise:8} {rate:6g} {fa / weeks:8.2f}   " + "   ".join(cells))
    print(
        f"overall: false alerts/week mean {np.mean(all_fa):.2f}, max {np.max(all_fa):.2f}; recall "
        + ", ".join(f"{m}x {r[0] / r[1]:.2f}" for m, r in all_rec.items())
        + f"   [{time.perf_counter() - start:.1f} s]"
    )


if __name__ == "__main__":
    main()
