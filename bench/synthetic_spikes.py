"""Synthetic benchmark of the spike detector: recall of injected bursts, false alerts per topic-week and
median delay, for today's single-window detector (the baseline) and the multi-scale one, in the same run.

    .venv/bin/python bench/synthetic_spikes.py                      # the reported seeds
    .venv/bin/python bench/synthetic_spikes.py --seeds tune         # the tuning seeds (tune here, report the other)
    .venv/bin/python bench/synthetic_spikes.py --param threshold=4  # a variant of the new detector
    .venv/bin/python bench/synthetic_spikes.py --baseline-param threshold=3   # a variant of the baseline
    .venv/bin/python bench/synthetic_spikes.py --seeds tune --no-baseline --param rearm=6h   # a sweep step

The family (issue 12): each topic is 5 weeks of 5-minute buckets (the daemon re-evaluates at every poll;
5-minute buckets mimic that). Its daily mean rate is drawn log-uniformly from 0.2 to 300 posts/h, with a
daily cycle (amplitude 0.3-0.8, busiest hour between 10:00 and 20:00), negative-binomial counts (Poisson
around a rate that wanders hour to hour: a gamma multiplier per hour, dispersion phi drawn from 0 to 0.3),
and a quarter of the topics zero-inflated (each bucket empty with probability 0.3-0.7, the others scaled
up so the rate stays). The first week is warm-up,
not scored. In the 4 scored weeks, 8 bursts (one per 3.5-day slot) multiply the expected rate by 3-10 for
1-3 hours; 30% of them start at night (00:00-06:00), 30% ramp up (the multiplier grows linearly from 1 to
its peak over the burst) instead of stepping. A burst is found if an alert fires from its start to one
hour after its end (delay = alert time - burst start); every other alert after warm-up is false.
`reachable` = share of bursts that bring at least min_count posts at all. Seeds are fixed: `--seeds tune`
(topics seeded 10000+) is for choosing parameters, the default `report` seeds (0+) for the figures.
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
DAY = 24 * PER_HOUR
WEEK = 7 * DAY
WEEKS = 5
BURSTS = 8
START = datetime(2025, 1, 6, tzinfo=UTC)
SEED_BASE = {"report": 0, "tune": 10_000}
BANDS = ((0.2, 1.0), (1.0, 10.0), (10.0, 100.0), (100.0, 300.0))


@dataclass(frozen=True)
class Burst:
    start: int  # first bucket
    length: int  # buckets
    mult: float  # peak multiplier of the expected rate
    ramp: bool  # grows linearly to `mult` instead of stepping
    night: bool  # starts between 00:00 and 06:00


@dataclass(frozen=True)
class Topic:
    rate: float  # daily mean, posts per hour
    phi: float
    zero: float  # probability that a bucket is empty (0: not zero-inflated)
    counts: np.ndarray  # posts per 5-minute bucket
    bursts: tuple[Burst, ...]
    base: np.ndarray  # the true expected posts per bucket without bursts (what an oracle knows; bench/spike_oracle.py)


def make_topic(seed: int) -> Topic:
    rng = np.random.default_rng(seed)
    n = WEEKS * WEEK
    rate = float(np.exp(rng.uniform(np.log(0.2), np.log(300.0))))
    amp, peak = rng.uniform(0.3, 0.8), rng.uniform(10, 20)
    hour = (np.arange(n) / PER_HOUR) % 24
    mean = rate / PER_HOUR * (1 + amp * np.cos(2 * np.pi * (hour - peak) / 24))
    base = mean.copy()  # the wandering and zero inflation below keep the mean, so this is the true expectation
    slot = (n - WEEK) // BURSTS
    bursts = []
    for i in range(BURSTS):
        length = int(rng.integers(PER_HOUR, 3 * PER_HOUR + 1))
        night = bool(rng.random() < 0.3)
        day = (WEEK + i * slot + int(rng.integers(0, slot - DAY - 4 * PER_HOUR))) // DAY
        tod = int(rng.integers(0, 6 * PER_HOUR)) if night else int(rng.integers(0, DAY))
        start = day * DAY + tod
        bursts.append(Burst(start, length, float(rng.uniform(3, 10)), bool(rng.random() < 0.3), night))
        shape = np.linspace(1, bursts[-1].mult, length) if bursts[-1].ramp else np.full(length, bursts[-1].mult)
        mean[start : start + length] *= shape
    phi = float(rng.uniform(0, 0.3))
    if phi > 0:
        mean = mean * np.repeat(rng.gamma(1 / phi, phi, n // PER_HOUR), PER_HOUR)  # the rate wanders hour to hour
    zero = float(rng.uniform(0.3, 0.7)) if rng.random() < 0.25 else 0.0
    if zero:
        mean = np.where(rng.random(n) < zero, 0.0, mean / (1 - zero))
    return Topic(rate, phi, zero, rng.poisson(mean).astype(float), tuple(bursts), base)


@dataclass
class Tally:
    found: int = 0
    reachable: int = 0
    bursts: int = 0
    false: int = 0
    weeks: float = 0.0
    delays: list[float] | None = None

    def add(self, other: Tally) -> None:
        self.found += other.found
        self.reachable += other.reachable
        self.bursts += other.bursts
        self.false += other.false
        self.weeks += other.weeks
        self.delays = (self.delays or []) + (other.delays or [])

    def text(self) -> str:
        delay = f"{np.median(self.delays):5.0f}" if self.delays else "    -"
        return (
            f"{self.found / max(self.bursts, 1):6.2f} ({self.reachable / max(self.bursts, 1):4.2f})"
            f" {self.false / max(self.weeks, 1e-9):7.2f} {delay}"
        )


def alerts(topic: Topic, params: DetectorParams) -> np.ndarray:
    """Bucket indexes of the alerts after warm-up."""
    times = [START + i * STEP for i in range(len(topic.counts))]
    idx = np.array([round((a - START) / STEP) for a in detect_series(times, topic.counts.tolist(), params)], dtype=int)
    return idx[idx >= WEEK]


def score(topic: Topic, idx: np.ndarray, params: DetectorParams, which: list[Burst] | None = None) -> Tally:
    n = len(topic.counts)
    matched = np.zeros(len(idx), dtype=bool)
    t = Tally(delays=[], weeks=(n - WEEK) / WEEK)
    for b in topic.bursts:
        near = (idx >= b.start) & (idx < b.start + b.length + PER_HOUR)
        matched |= near
        if which is not None and b not in which:
            continue
        t.bursts += 1
        t.reachable += int(topic.counts[b.start : b.start + b.length].sum() >= params.min_count)
        if near.any():
            t.found += 1
            assert t.delays is not None
            t.delays.append(float((idx[near][0] - b.start) * STEP.total_seconds() / 60))
    t.false = int((~matched).sum())
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--param", action="append", default=[], help="override a field of the new detector: name=value")
    ap.add_argument("--baseline-param", action="append", default=[], help="override a field of the baseline")
    ap.add_argument("--seeds", choices=tuple(SEED_BASE), default="report", help="which seeded topics")
    ap.add_argument("--topics", type=int, default=60, help="topics (default 60)")
    ap.add_argument("--no-baseline", action="store_true", help="run only the new detector (parameter sweeps)")
    args = ap.parse_args()
    new = parse_params(args.param)
    old = parse_params(["scales=1", *args.baseline_param])
    topics = [make_topic(SEED_BASE[args.seeds] + i) for i in range(args.topics)]
    print(f"{args.topics} topics, {args.seeds} seeds ({SEED_BASE[args.seeds]}+), {len(topics) * BURSTS} bursts")
    head = f"{'':26} {'recall (reach)':>14} {'FA/wk':>7} {'delay':>5}"
    runs = (("new", new),) if args.no_baseline else (("baseline", old), ("new", new))
    for label, params in runs:
        print(f"\n{label}: {params}\n{head}")
        start = time.perf_counter()
        total = Tally(delays=[])
        rows: dict[str, Tally] = {}
        for topic in topics:
            idx = alerts(topic, params)
            t = score(topic, idx, params)
            total.add(t)
            band = next(f"rate {lo:g}-{hi:g}/h" for lo, hi in BANDS if topic.rate <= hi)
            rows.setdefault(band, Tally(delays=[])).add(t)
            for kind, pick in (
                ("step bursts", [b for b in topic.bursts if not b.ramp]),
                ("ramp bursts", [b for b in topic.bursts if b.ramp]),
                ("night bursts", [b for b in topic.bursts if b.night]),
                ("zero-inflated topics", list(topic.bursts) if topic.zero else []),
            ):
                part = score(topic, idx, params, pick) if pick else Tally(delays=[])
                if kind != "zero-inflated topics":
                    part.false, part.weeks = 0, 0.0  # false alerts belong to topics, not to kinds of burst
                rows.setdefault(kind, Tally(delays=[])).add(part)
        for name, t in sorted(rows.items(), key=lambda kv: (not kv[0].startswith("rate"), kv[0])):
            print(f"{name:26} {t.text()}")
        print(f"{'ALL':26} {total.text()}   [{time.perf_counter() - start:.1f} s]")
    print("\nrecall = bursts found / bursts (reachable: share with >= min_count posts); FA/wk = false alerts per")
    print("topic-week; delay = median minutes from burst start to alert, found bursts only")


if __name__ == "__main__":
    main()
