"""What one daemon tick costs per topic in the detector: `spikes.evaluate` on a week of counts, today's
single window against the multi-scale default, measured in the same run (the count query is the store's
and is timed by bench/store_scale.py --tick-probe).

    .venv/bin/python bench/evaluate_cost.py

A topic at 100 posts/h with a burst in the current window (so every scale reaches min_count and is judged:
the worst case; a quiet topic below min_count costs no model at all). Prints the median of 200 calls each.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.spikes import DetectorParams, evaluate
from monitor.types import CountSeries

NOW = datetime(2025, 3, 10, 14, 0, tzinfo=UTC)
CALLS = 200


def series(params: DetectorParams, rate_per_hour: float) -> CountSeries:
    per_bucket = rate_per_hour * params.step / timedelta(hours=1)
    counts = np.random.default_rng(1).poisson(per_bucket, params.buckets)
    counts[-1] += int(5 * rate_per_hour * params.step / timedelta(hours=1)) + 5  # a burst now: every scale judged
    return CountSeries(end=NOW, step=params.step, counts=tuple(int(c) for c in counts))


def median_ms(params: DetectorParams) -> tuple[float, bool]:
    s = series(params, 100.0)
    fired = evaluate("t", s, params, None) is not None  # also the warm-up (numpy import)
    times = []
    for _ in range(CALLS):
        start = time.perf_counter()
        evaluate("t", s, params, None)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times), fired


def main() -> None:
    new = DetectorParams()
    old = msgspec.structs.replace(new, scales=(1.0,))
    old_ms, old_fired = median_ms(old)
    new_ms, new_fired = median_ms(new)
    print(f"one topic, a week: single window {old_ms:.2f} ms ({old.buckets} buckets of {old.step})")
    print(f"one topic, a week: {len(new.windows)} scales {new_ms:.2f} ms ({new.buckets} buckets of {new.step})")
    print(f"ratio new / single window: {new_ms / old_ms:.2f}   (alerted: {old_fired}, {new_fired})")


if __name__ == "__main__":
    main()
