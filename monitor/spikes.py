"""The spike detector: is a topic's count in the last window improbably high against its baseline?

Pure: does no I/O and never reads the clock; takes counts (or post times) and `now`, returns verdicts.
The daemon calls `evaluate`, `monitor detect` calls `detect_series`; both go through `judge_many`
(`judge` is its one-row form), so they are the same detector with the same defaults.

The model (docs/detector.md has the reasoning and the measurements):
- The baseline is the `baseline // window` same-length windows before the current one. Their counts
  are modelled as negative binomial: mean mu, variance mu + phi * mu**2 (social counts are
  over-dispersed; phi = 0 is Poisson).
- mu is a mean, not a median, so that sparse topics (0.2 posts an hour) get a true rate. With at
  least three days of history, mu follows the hour-of-day profile: the mean of the windows at the
  same time of day, smoothed over +-3 hours with triangular weights. Past spikes are winsorised:
  the first fit sees the history clipped at its 90th percentile, then each window is clipped at its
  fitted mean + 3 standard deviations and the fit redone, three times. phi is the method-of-moments
  estimate from the residuals.
- score: the signed root of the negative-binomial deviance of the current count, with the
  uncertainty of mu added to the variance. It reads like a standard normal quantile: P(count >=
  observed) under the baseline is about P(Z >= score), so 3.5 is about 2e-4. It never decreases as
  the current count grows.
- alert: count >= min_count, and either the history holds no post at all (cold start) or score >=
  threshold and the count exceeds every window of the last `rearm` (hysteresis: a spike that is still
  running does not alert again unless it grows past its own peak). `cooldown` is applied by the
  callers (`evaluate`, `detect_series`), not here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from monitor.types import CountSeries, Spike

if TYPE_CHECKING:  # numpy is imported where it is used: a poll that finds no spike never loads it (start-up, memory)
    import numpy as np
    from numpy.typing import NDArray

    Floats = NDArray[np.float64]

_DAY = timedelta(days=1)
_SMOOTH = timedelta(hours=3)  # half-width of the hour-of-day smoothing
_MIN_PERIODS = 3  # days of history needed before the hour-of-day profile is used
_CLIP_SD = 3.0  # winsorise history windows above fitted mean + this many standard deviations
_START_QUANTILE = 0.9  # the first fit sees the history clipped at this quantile (a robust start)
_CLIP_PASSES = 3  # winsorising passes (each refits mean and dispersion, then re-clips the raw history)
_CHUNK = 4096  # rows per block in detect_series (bounds memory at CHUNK x windows floats)


@dataclass(frozen=True)
class DetectorParams:
    """What the detector needs; the first four come from the config's `alerts` section."""

    window: timedelta = timedelta(hours=1)  # count posts in the last `window` ...
    baseline: timedelta = timedelta(days=7)  # ... against the same-length windows of the preceding baseline
    min_count: int = 3  # never alert on fewer posts than this in a window
    cooldown: timedelta = timedelta(hours=6)  # after an alert, the topic is quiet this long
    threshold: float = 3.5  # alert when score >= threshold (score ~ a standard normal quantile)
    seasonal: bool = True  # follow the hour-of-day profile once the history spans 3 days
    rearm: timedelta = timedelta(hours=24)  # an alert needs a count above every window of the last `rearm`

    @property
    def step(self) -> timedelta:
        """The bucket length the detector wants its counts in (`CountSeries.step`)."""
        return self.window

    @property
    def buckets(self) -> int:
        """How many buckets of `step`, ending now, the detector reads: the current window and the baseline's."""
        return (max(1, self.baseline // self.window) + 1) * (self.window // self.step)

    def __post_init__(self) -> None:
        if self.window <= timedelta(0) or self.baseline <= timedelta(0):
            raise ValueError("window and baseline must be positive durations")
        if self.cooldown < timedelta(0) or self.rearm < timedelta(0):
            raise ValueError("cooldown and rearm must not be negative")
        if not math.isfinite(self.threshold):
            raise ValueError("threshold must be a finite number")


@dataclass(frozen=True)
class Verdict:
    """The detector's judgement of one window; `alert` does not apply the cooldown."""

    count: int | float  # current window count
    expected: float  # the baseline's typical count for a window at this time of day
    score: float  # ~ standard normal quantile of the upper tail; higher = more surprising
    alert: bool  # min_count, and (cold start, or score >= threshold and above the last `rearm`)


def judge(current: float, history: Sequence[float], params: DetectorParams) -> Verdict:
    """Judge one window. `history` = counts of the preceding same-length windows, oldest first
    (for 1h/7d: 168 values; fewer when the topic is young; empty for a brand-new topic)."""
    import numpy as np

    hist = np.asarray(history, dtype=np.float64).reshape(1, -1)
    expected, score, alert = judge_many(np.array([float(current)]), hist, params)
    return Verdict(count=current, expected=float(expected[0]), score=float(score[0]), alert=bool(alert[0]))


def judge_many(current: Floats, history: Floats, params: DetectorParams) -> tuple[Floats, Floats, NDArray[np.bool_]]:
    """Vectorised `judge`: row i is judged on current[i] and history[i, :] (oldest first, NaN where
    the window did not exist yet, i.e. on the left). Returns (expected, score, alert) arrays."""
    import numpy as np

    _check_counts(current)
    valid = ~np.isnan(history)
    hist = np.where(valid, history, 0.0)
    _check_counts(hist)
    n_valid = valid.sum(axis=1)
    mu_now, phi, n_eff = _fit(hist, valid.astype(np.float64), _season(history.shape[1], params), n_valid)
    score = _score(current, mu_now, phi, n_eff, n_valid)
    cold = hist.sum(axis=1) == 0
    alert = _may_alert(current, hist, params) & (cold | (score >= params.threshold))
    return mu_now, score, alert


def _may_alert(current: Floats, hist: Floats, params: DetectorParams) -> NDArray[np.bool_]:
    """The cheap half of the alert rule: at least min_count, and above every window of the last
    `rearm` (trivially true for a cold start, whose history holds no post)."""
    import numpy as np

    k = hist.shape[1]
    recent = max(1, min(k, round(params.rearm / params.window)))
    peak = hist[:, k - recent :].max(axis=1) if k else np.zeros(len(current))
    return np.asarray((current >= params.min_count) & (current > peak), dtype=np.bool_)


def _check_counts(values: Floats) -> None:
    import numpy as np

    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("counts must be finite and >= 0")


@dataclass(frozen=True)
class _Season:
    """How history columns map to times of day (a single phase when there is no profile)."""

    weights: Floats  # (k, P): column c's weight in phase p's smoothed mean (triangular, +-3 hours)
    onehot: Floats  # (k, P): 1 where column c's own phase is p
    phase: NDArray[np.int_]  # (k,) each column's own phase; 0 = same time of day as the current window


def _season(k: int, params: DetectorParams) -> _Season | None:
    """The hour-of-day layout of k history windows, or None when the profile does not apply."""
    import numpy as np

    period = round(_DAY / params.window)
    if not params.seasonal or period < 2 or k < _MIN_PERIODS * period:
        return None
    half = max(0, min(round(_SMOOTH / params.window), (period - 1) // 2))
    phase = (k - np.arange(k)) % period  # column c ends k - c windows before the current one
    weights = np.zeros((k, period))
    for off in range(-half, half + 1):
        weights[np.arange(k), (phase + off) % period] += half + 1 - abs(off)
    return _Season(weights=weights, onehot=(phase[:, None] == np.arange(period)).astype(np.float64), phase=phase)


def _flat(k: int) -> _Season:
    """The no-profile layout: one phase, every window weighted alike."""
    import numpy as np

    ones = np.ones((k, 1))
    return _Season(weights=ones, onehot=ones, phase=np.zeros(k, dtype=np.int_))


def _fit(hist: Floats, vf: Floats, season: _Season | None, n_valid: NDArray[np.int_]) -> tuple[Floats, Floats, Floats]:
    """mu for the current window, the NB dispersion phi, and the effective number of history windows
    behind mu; rows with 3 days of history use the hour-of-day profile, the others a flat mean."""
    import numpy as np

    seasonal = np.zeros(len(hist), dtype=bool)
    if season is not None:
        seasonal = n_valid >= _MIN_PERIODS * season.weights.shape[1]
    if season is not None and seasonal.all():  # the common case: no row selection, no copies
        return _fit_rows(hist, vf, season)
    if season is None or not seasonal.any():
        return _fit_rows(hist, vf, _flat(hist.shape[1]))
    mu_now, phi, n_eff = np.empty(len(hist)), np.empty(len(hist)), np.empty(len(hist))
    flat = ~seasonal
    mu_now[flat], phi[flat], n_eff[flat] = _fit_rows(hist[flat], vf[flat], _flat(hist.shape[1]))
    mu_now[seasonal], phi[seasonal], n_eff[seasonal] = _fit_rows(hist[seasonal], vf[seasonal], season)
    return mu_now, phi, n_eff


def _fit_rows(hist: Floats, vf: Floats, season: _Season) -> tuple[Floats, Floats, Floats]:
    """Fit the per-phase means and the dispersion, refitting after each winsorising pass (every
    window clipped at its phase mean + 3 sd + 1). Sums go per phase, so no pass builds more than
    two history-sized arrays."""
    import numpy as np

    wsum = np.maximum(vf @ season.weights, 1e-12)
    count = vf @ season.onehot  # valid windows per phase
    w0 = season.weights[:, 0]
    n_eff = (vf @ w0) ** 2 / np.maximum(vf @ (w0**2), 1e-12)  # (sum w)^2 / sum w^2 behind phase 0
    clipped = np.minimum(hist, _row_quantile(hist, vf, _START_QUANTILE)[:, None])  # a robust start
    for done in range(_CLIP_PASSES + 1):
        prof = (clipped @ season.weights) / wsum  # smoothed mean per phase
        phi = _dispersion(clipped, prof, count, season.onehot)
        if done == _CLIP_PASSES:
            break
        cap = prof + _CLIP_SD * np.sqrt(prof + phi[:, None] * prof**2) + 1.0
        clipped = np.minimum(hist, np.take(cap, season.phase, axis=1))
    return prof[:, 0], phi, n_eff


def _row_quantile(hist: Floats, vf: Floats, q: float) -> Floats:
    """The q-quantile of each row's valid windows (lower interpolation; 0 for a row without any)."""
    import numpy as np

    ordered = np.sort(np.where(vf > 0, hist, np.inf), axis=1)
    n = vf.sum(axis=1).astype(np.int_)
    at = np.clip(np.floor(q * (n - 1)).astype(np.int_), 0, max(hist.shape[1] - 1, 0))
    picked = np.take_along_axis(ordered, at[:, None], axis=1)[:, 0] if hist.shape[1] else np.zeros(len(hist))
    return np.where(n > 0, picked, 0.0)


def _dispersion(hist: Floats, prof: Floats, count: Floats, onehot: Floats) -> Floats:
    """Method-of-moments NB dispersion, sum((h - mu)^2 - mu) / sum(mu^2) over the valid windows
    (mu = the window's phase mean; invalid windows hold 0 and count 0), floored at 0 (Poisson)."""
    import numpy as np

    sq = (hist * hist).sum(axis=1)
    cross = ((hist @ onehot) * prof).sum(axis=1)
    num = sq - 2.0 * cross + (count * (prof * prof - prof)).sum(axis=1)
    den = (count * prof * prof).sum(axis=1)
    return np.where(den > 0, np.maximum(num, 0.0) / np.maximum(den, 1e-12), 0.0)


def _score(current: Floats, mu: Floats, phi: Floats, n_eff: Floats, n_valid: NDArray[np.int_]) -> Floats:
    """Signed root NB deviance of `current` against mu, with mu's own uncertainty in the variance."""
    import numpy as np

    mu_s = np.maximum(mu, 0.5 / (n_valid + 1.0))  # as if half a post had been seen: keeps it finite
    var = (mu_s + phi * mu_s**2) * (1.0 + 1.0 / np.maximum(n_eff, 1.0))
    phi_eff = np.maximum((var - mu_s) / mu_s**2, 0.0)
    return _nb_signed_root_deviance(current, mu_s, phi_eff)


def _nb_signed_root_deviance(x: Floats, mu: Floats, phi: Floats) -> Floats:
    """sign(x - mu) * sqrt(2 [x log(x/mu) - (x + 1/phi) log((x + 1/phi)/(mu + 1/phi))]); Poisson at phi 0."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        pos = np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0) / mu), 0.0)
        size = 1.0 / np.maximum(phi, 1e-12)
        nb = (x + size) * np.log1p((x - mu) / (mu + size))
        second = np.where(phi > 1e-9, nb, x - mu)
    dev = np.maximum(2.0 * (pos - second), 0.0)
    return np.asarray(np.sign(x - mu) * np.sqrt(dev), dtype=np.float64)


def window_counts(published: Sequence[datetime], now: datetime, params: DetectorParams) -> tuple[int, list[int]]:
    """Posts in (now - window, now], and in each of the `baseline // window` windows before it (oldest first)."""
    series = series_from_times(published, now, params.window, max(1, params.baseline // params.window) + 1)
    return series.counts[-1], list(series.counts[:-1])


def series_from_times(published: Sequence[datetime], end: datetime, step: timedelta, buckets: int) -> CountSeries:
    """Count published times into `buckets` buckets of `step` ending at `end` (see CountSeries)."""
    import numpy as np

    w = step.total_seconds()
    times = np.sort(np.array([_utc(t).timestamp() for t in published], dtype=np.float64))
    edges = end.timestamp() - w * np.arange(buckets, -1, -1, dtype=np.float64)  # buckets + 1 edges, oldest first
    below = np.searchsorted(times, edges, side="right")
    return CountSeries(end=end, step=step, counts=tuple(int(c) for c in np.diff(below)))


def _windows(series: CountSeries, params: DetectorParams) -> tuple[int, list[int]]:
    """The current window's count and the baseline windows' counts (oldest first), summed from the buckets."""
    per_window = params.window / series.step
    if per_window != int(per_window) or per_window < 1:
        raise ValueError(f"bucket {series.step} does not divide the window {params.window}")
    w = int(per_window)
    counts = series.counts[len(series.counts) % w :]  # whole windows only, aligned to the end
    sums = [sum(counts[i : i + w]) for i in range(0, len(counts), w)]
    if not sums:
        return 0, []
    return sums[-1], sums[:-1][-max(1, params.baseline // params.window) :]


def evaluate(
    topic: str,
    series: CountSeries,
    params: DetectorParams,
    last_alert_at: datetime | None,
) -> Spike | None:
    """The daemon's call: `series` = the topic's matching posts counted in buckets of `params.step` ending now
    (`params.buckets` of them; fewer when the store is younger). Builds the window count and history, applies
    judge(), then cooldown (no alert if last_alert_at is within cooldown of the series' end). A Spike or None."""
    now = series.end
    if last_alert_at is not None and now - last_alert_at < params.cooldown:
        return None
    count, history = _windows(series, params)
    if count < params.min_count:  # judge() never alerts below min_count; most topics, most polls: no numpy
        return None
    recent = max(1, min(len(history), round(params.rearm / params.window)))
    if history and count <= max(history[-recent:]):  # nor at or below a window of the last `rearm` (_may_alert)
        return None
    verdict = judge(count, history, params)
    if not verdict.alert:
        return None
    return Spike(
        topic=topic,
        window_start=now - params.window,
        window_end=now,
        count=count,
        expected=verdict.expected,
        score=verdict.score,
    )


def detect_series(times: Sequence[datetime], values: Sequence[float], params: DetectorParams) -> list[datetime]:
    """`monitor detect`: one value per bucket (bucket size = the median step between timestamps;
    naive times are UTC), causal (each decision sees only its own and earlier buckets); returns the
    timestamps where an alert fires, cooldown applied. Window and baseline become whole buckets.

    Rows are taken in time order; rows that round to the same bucket are summed; a missing bucket
    counts 0. The window judged at a row is that row's bucket and the buckets just before it.
    Raises ValueError for a value that is negative, NaN or infinite, or lengths that differ."""
    import numpy as np

    if len(times) != len(values):
        raise ValueError("times and values differ in length")
    if not times:
        return []
    secs = np.array([_utc(t).timestamp() for t in times], dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    _check_counts(vals)
    order = np.argsort(secs, kind="stable")
    secs, vals = secs[order], vals[order]
    step = _median_step(secs, params.window.total_seconds())
    buckets = np.rint((secs - secs[0]) / step).astype(np.int64)
    uniq, first = np.unique(buckets, return_index=True)
    totals = np.add.reduceat(vals, first)
    w = max(1, round(params.window.total_seconds() / step))
    k = max(1, round(params.baseline.total_seconds() / step) // w)
    bucket_params = _in_buckets(params, step, w)
    alerts: list[datetime] = []
    last = -math.inf
    cooldown = params.cooldown.total_seconds()
    cum = np.concatenate([[0.0], np.cumsum(totals)])
    for lo in range(0, len(uniq), _CHUNK):
        rows = uniq[lo : lo + _CHUNK]
        current, history = _bucket_windows(uniq, cum, rows, w, k)
        # Only rows that pass the cheap half of the rule need the model; judge_many decides the rest. A row
        # with no whole window before it in the file has nothing to compare with: the start of a file is
        # not a cold start (the daemon, which cannot tell "not watched" from "quiet", counts such windows 0).
        observed = ~np.isnan(history).all(axis=1) if history.shape[1] else np.zeros(len(current), dtype=bool)
        cand = np.flatnonzero(_may_alert(current, np.nan_to_num(history), bucket_params) & observed)
        _, _, alert = judge_many(current[cand], history[cand], bucket_params)
        for i in cand[alert]:
            at = secs[first[lo + i]]
            if at - last >= cooldown:
                alerts.append(datetime.fromtimestamp(at, UTC))
                last = at
    return alerts


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _median_step(secs: Floats, fallback: float) -> float:
    import numpy as np

    steps = np.diff(secs)
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else fallback


def _in_buckets(params: DetectorParams, step: float, w: int) -> DetectorParams:
    """The params with `window` set to the whole-bucket window actually used (phases and rearm follow it)."""
    return replace(params, window=timedelta(seconds=step * w))


def _bucket_windows(
    uniq: NDArray[np.int64], cum: Floats, rows: NDArray[np.int64], w: int, k: int
) -> tuple[Floats, Floats]:
    """Current window sums ending at each row's bucket, and the k earlier windows (NaN before the start)."""
    import numpy as np

    def upto(b: NDArray[np.int64]) -> Floats:  # sum of all buckets <= b
        return np.asarray(cum[np.searchsorted(uniq, b, side="right")], dtype=np.float64)

    current = upto(rows) - upto(rows - w)
    lags = np.arange(k, 0, -1)  # oldest first: column c ends lags[c] windows before the current one
    ends = rows[:, None] - lags[None, :] * w
    history = upto(ends) - upto(ends - w)
    exists = ends - w + 1 >= uniq[0]  # the whole window lies after the series' first bucket
    return current, np.where(exists, history, np.nan)
