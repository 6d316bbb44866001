"""Why the detector misses the bursts it misses, on the synthetic family of bench/synthetic_spikes.py.

    .venv/bin/python bench/spike_misses.py --seeds tune
    .venv/bin/python bench/spike_misses.py --seeds tune --param threshold=3.4 --param rearm=6h

Each burst not found is put in one class: `unreachable` (the burst never brings min_count posts), `weak`
(no scale's score reaches its threshold at any bucket from the burst's start to one hour after its end:
a lower threshold is the only lever), `hysteresis` (some scale's score reaches its threshold with
min_count posts, but never with a count above the sliding peak of the last `rearm`: the rearm rule
blocked it), or `other` (cooldown after an earlier alert). The weak ones are broken down by rate band,
dispersion and shape, which says where a better model, not a better setting, is needed.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nab import parse_params  # type: ignore[import-not-found]
from synthetic_spikes import BANDS, PER_HOUR, SEED_BASE, Burst, Topic, alerts, make_topic  # type: ignore[import-not-found]

from monitor.spikes import DetectorParams, judge_many


def classify(topic: Topic, burst: Burst, params: DetectorParams) -> str:
    """The class of one burst the detector did not find (see the module docstring)."""
    counts = topic.counts
    if counts[burst.start : burst.start + burst.length].sum() < params.min_count:
        return "unreachable"
    cum = np.concatenate([[0.0], np.cumsum(counts)])
    rows = np.arange(burst.start, burst.start + burst.length + PER_HOUR)
    reached = blocked_only = False
    for window in params.windows:
        scale = params.at_scale(window)
        w = round(window / (params.window / PER_HOUR))  # buckets of 5 minutes
        k = params.baseline // window
        recent = max(1, min(k, round(scale.rearm / window)))
        current = cum[rows + 1] - cum[rows + 1 - w]
        starts = rows[:, None] + 1 - np.arange(k + 1, 1, -1)[None, :] * w  # oldest first
        history = np.where(starts >= 0, cum[np.clip(starts + w, 0, None)] - cum[np.clip(starts, 0, None)], np.nan)
        peak = np.array([max(cum[e + 1] - cum[e + 1 - w] for e in range(r - recent * w, r - w + 1)) for r in rows])
        _, score, _ = judge_many(current, history, scale)
        over = (score >= scale.threshold) & (current >= params.min_count)
        reached |= bool(over.any())
        if over.any() and not (over & (current > peak)).any():
            blocked_only = True
        elif (over & (current > peak)).any():
            return "other"
    if not reached:
        return "weak"
    return "hysteresis" if blocked_only else "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--param", action="append", default=[], help="override a DetectorParams field: name=value")
    ap.add_argument("--seeds", choices=tuple(SEED_BASE), default="tune", help="which seeded topics")
    ap.add_argument("--topics", type=int, default=60, help="topics (default 60)")
    args = ap.parse_args()
    params = parse_params(args.param)
    classes: Counter[str] = Counter()
    weak: Counter[str] = Counter()
    for i in range(args.topics):
        topic = make_topic(SEED_BASE[args.seeds] + i)
        idx = alerts(topic, params)
        for burst in topic.bursts:
            if ((idx >= burst.start) & (idx < burst.start + burst.length + PER_HOUR)).any():
                classes["found"] += 1
                continue
            kind = classify(topic, burst, params)
            classes[kind] += 1
            if kind == "weak":
                weak[next(f"rate {lo:g}-{hi:g}/h" for lo, hi in BANDS if topic.rate <= hi)] += 1
                weak["phi > 0.15"] += topic.phi > 0.15
                weak["ramp"] += burst.ramp
                weak["night"] += burst.night
                weak["multiplier < 5"] += burst.mult < 5
    total = sum(classes.values())
    print(f"{params}\n{total} bursts")
    for name in ("found", "unreachable", "weak", "hysteresis", "other"):
        print(f"{name:12} {classes[name]:4d}  {classes[name] / max(total, 1):5.2f}")
    print("weak bursts: " + ", ".join(f"{k} {v}" for k, v in sorted(weak.items())))


if __name__ == "__main__":
    main()
