"""The oracle of bench/spike_oracle.py: its true window moments must be the moments of the generator's counts,
or the ceiling it reports is not the ceiling. Checked against many draws of the generator's noise (the same
steps as bench/synthetic_spikes.py's make_topic: an hourly gamma multiplier, zero inflation, Poisson)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bench.spike_oracle import oracle_alerts, true_moments
from bench.synthetic_spikes import PER_HOUR, make_topic

DRAWS = 20_000


def _draws(base: np.ndarray, phi: float, zero: float, rng: np.random.Generator) -> np.ndarray:
    """DRAWS independent count series around `base`, with make_topic's noise."""
    mean = np.broadcast_to(base, (DRAWS, len(base))).copy()
    if phi > 0:
        mean *= np.repeat(rng.gamma(1 / phi, phi, (DRAWS, len(base) // PER_HOUR)), PER_HOUR, axis=1)
    if zero:
        mean = np.where(rng.random(mean.shape) < zero, 0.0, mean / (1 - zero))
    return rng.poisson(mean).astype(float)


@pytest.mark.parametrize(("phi", "zero"), [(0.0, 0.0), (0.25, 0.0), (0.1, 0.5)])
def test_the_oracle_knows_the_true_mean_and_variance_of_every_window(phi: float, zero: float) -> None:
    rng = np.random.default_rng(7)
    topic = make_topic(0)
    hours = 6
    base = topic.base[: hours * PER_HOUR]  # a daily cycle's first hours at 21 posts/h
    counts = _draws(base, phi, zero, rng)
    shaped = replace(topic, phi=phi, zero=zero, base=base, counts=counts[0])
    for w in (3, 12, 36):  # 15 min, 1 h, 3 h; ends inside an hour and on its boundary, windows over 2-4 hours
        _, mu, var = true_moments(shaped, w)
        cum = np.concatenate([np.zeros((DRAWS, 1)), np.cumsum(counts, axis=1)], axis=1)
        for end in (w - 1, w + 4, len(base) - 1):
            sums = cum[:, end + 1] - cum[:, end + 1 - w]
            assert sums.mean() == pytest.approx(mu[end], rel=0.03)
            assert sums.var() == pytest.approx(var[end], rel=0.06)
        assert np.isnan(mu[w - 2])  # no whole window yet


def test_the_oracle_keeps_the_cooldown_and_skips_the_warm_up() -> None:
    week = 7 * 24 * PER_HOUR
    scores = np.zeros(week + 200)
    scores[[10, week + 5, week + 40, week + 80]] = 5.0
    alerts = oracle_alerts(scores, 4.0, cooldown=72)
    assert alerts.tolist() == [week + 5, week + 80]  # week + 40 is within 72 buckets; bucket 10 is warm-up
