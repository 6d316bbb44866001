"""The spike detector: is a topic's count in the last window improbably high against its baseline?

Pure: does no I/O and never reads the clock; takes counts (or post times) and `now`, returns verdicts.
The daemon calls `evaluate`, `monitor detect` calls `detect_alerts` (`detect_series`: its times); both
judge every scale through `judge_many` (`judge` is its one-row form), so they are the same detector
with the same defaults.

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
- scales: `evaluate` and `detect_alerts` judge several windows at once (by default window/4, window and
  3 * window: a sharp burst alerts within minutes, a slow ramp is not missed). They share the false-alert
  budget of the single window: each scale's tail probability is P(Z >= threshold) divided by the number
  of scales (Bonferroni), so the false alerts stay about those of one window at `threshold`.
  `judge`/`judge_many` judge one window (`params.window`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING

import msgspec

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


class DetectorParams(msgspec.Struct, frozen=True):
    """What the detector needs; the first four come from the config's `alerts` section."""

    window: timedelta = timedelta(hours=1)  # count posts in the last `window` ...
    baseline: timedelta = timedelta(days=7)  # ... against the same-length windows of the preceding baseline
    min_count: int = 3  # never alert on fewer posts than this in a window
    cooldown: timedelta = timedelta(hours=6)  # after an alert, the topic is quiet this long
    threshold: float = 3.5  # alert when score >= threshold (score ~ a standard normal quantile)
    seasonal: bool = True  # follow the hour-of-day profile once the history spans 3 days
    rearm: timedelta = timedelta(hours=24)  # an alert needs a count above every window of the last `rearm`
    scales: tuple[float, ...] = (0.25, 1.0, 3.0)  # windows judged together, as multiples of `window`

    @property
    def windows(self) -> tuple[timedelta, ...]:
        """The windows judged together, shortest first."""
        return tuple(sorted({self.window * s for s in self.scales}))

    @property
    def step(self) -> timedelta:
        """The bucket length the detector wants its counts in (`CountSeries.step`): the shortest window,
        so one count query serves every scale (the longer windows are sums of its buckets)."""
        return self.windows[0]

    @property
    def buckets(self) -> int:
        """How many buckets of `step`, ending now, the detector reads: each scale's current window and baseline."""
        return max((max(1, self.baseline // w) + 1) * round(w / self.step) for w in self.windows)

    def at_scale(self, window: timedelta, among: int | None = None) -> DetectorParams:
        """The single-window params that judge the scale `window`, with its share of the threshold between
        `among` scales (default: every window of these params)."""
        threshold = _scale_threshold(self.threshold, len(self.windows) if among is None else among)
        return msgspec.structs.replace(self, window=window, threshold=threshold, scales=(1.0,))

    def __post_init__(self) -> None:
        if self.window <= timedelta(0) or self.baseline <= timedelta(0):
            raise ValueError("window and baseline must be positive durations")
        if self.cooldown < timedelta(0) or self.rearm < timedelta(0):
            raise ValueError("cooldown and rearm must not be negative")
        if not math.isfinite(self.threshold):
            raise ValueError("threshold must be a finite number")
        if not self.scales or any(not math.isfinite(s) or s <= 0 for s in self.scales):
            raise ValueError("scales must be positive multiples of the window")
        shortest = min(self.scales)
        if any(abs(s / shortest - round(s / shortest)) > 1e-9 for s in self.scales):
            raise ValueError("every scale must be a whole multiple of the shortest one")


class Verdict(msgspec.Struct, frozen=True):
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


def _scale_threshold(threshold: float, scales: int) -> float:
    """The score each of `scales` scales must reach so that together they keep the false alerts of one
    window at `threshold` (Bonferroni: each gets the tail probability divided by the number of scales).
    Not weighted by window length: judged at every bucket, a 3-hour window raised more false alerts than
    its nominal third of the hour's, the 15-minute one fewer (bench/synthetic_spikes.py --seeds tune)."""
    return threshold if scales == 1 else _normal_isf(min(_normal_sf(threshold) / scales, 0.5))


def _normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal (math, not statistics: this module is imported at start-up)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@functools.lru_cache(maxsize=64)
def _normal_isf(p: float) -> float:
    """The z with P(Z >= z) = p, for 0 < p <= 0.5, by bisection (sf is decreasing)."""
    lo, hi = 0.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _normal_sf(mid) > p else (lo, mid)
    return (lo + hi) / 2


def _check_counts(values: Floats) -> None:
    import numpy as np

    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("counts must be finite and >= 0")


class _Season(msgspec.Struct, frozen=True):
    """How history columns map to times of day (a single phase when there is no profile)."""

    weights: Floats  # (k, P): column c's weight in phase p's smoothed mean (triangular, +-3 hours)
    onehot: Floats  # (k, P): 1 where column c's own phase is p
    phase: NDArray[np.int_]  # (k,) each column's own phase; 0 = same time of day as the current window


def _season(k: int, params: DetectorParams) -> _Season | None:
    """The hour-of-day layout of k history windows, or None when the profile does not apply."""

    period = round(_DAY / params.window)
    if not params.seasonal or period < 2 or k < _MIN_PERIODS * period:
        return None
    # A window as long as the smoothing spans it already: smoothing again would flatten the daily peak.
    half = max(0, min(round(_SMOOTH / params.window), (period - 1) // 2)) if params.window < _SMOOTH else 0
    return _layout(k, period, half)


@functools.lru_cache(maxsize=32)
def _layout(k: int, period: int, half: int) -> _Season:
    """`_season`'s arrays, built once per shape: every tick judges the same few (read-only, so sharing is safe)."""
    import numpy as np

    phase = (k - np.arange(k)) % period  # column c ends k - c windows before the current one
    weights = np.zeros((k, period))
    for off in range(-half, half + 1):
        weights[np.arange(k), (phase + off) % period] += half + 1 - abs(off)
    onehot = (phase[:, None] == np.arange(period)).astype(np.float64)
    for array in (phase, weights, onehot):
        array.setflags(write=False)
    return _Season(weights=weights, onehot=onehot, phase=phase)


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
    start = len(series.counts) % w  # whole windows only, aligned to the end
    cum = [0, *accumulate(series.counts[start:])]
    sums = [cum[i + w] - cum[i] for i in range(0, len(cum) - 1, w)]
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
    (`params.buckets` of them; fewer when the store is younger). Judges each scale's window ending now (the
    longer windows are sums of the buckets), then the cooldown (no alert if last_alert_at is within cooldown of
    the series' end). A Spike for the scale that fired (the most surprising against its threshold), or None."""
    now = series.end
    if last_alert_at is not None and now - last_alert_at < params.cooldown:
        return None
    best: tuple[float, timedelta, Verdict] | None = None
    for window in params.windows:
        scale = params.at_scale(window)
        count, history = _windows(series, scale)
        if count < params.min_count:  # judge() never alerts below min_count; most topics, most polls: no numpy
            continue
        if count <= _recent_peak(series, scale, history, several=len(params.windows) > 1):  # nor below a recent
            continue  # window (_may_alert's hysteresis): judged before numpy is loaded
        verdict = judge(count, history, scale)
        margin = verdict.score - scale.threshold
        if verdict.alert and (best is None or margin > best[0]):
            best = (margin, window, verdict)
    if best is None:
        return None
    _, window, verdict = best
    return Spike(
        topic=topic,
        window_start=now - window,
        window_end=now,
        count=int(verdict.count),
        expected=verdict.expected,
        score=verdict.score,
    )


def _recent_peak(series: CountSeries, scale: DetectorParams, history: list[int], *, several: bool) -> float:
    """The count a window must exceed to alert: the highest of the last `rearm` (sliding windows when several
    scales are judged, the aligned history windows for one alone, as `_may_alert`); -1 with no history."""
    if several:
        return _sliding_peak(series, scale, len(history))
    recent = max(1, min(len(history), round(scale.rearm / scale.window)))
    return max(history[-recent:]) if history else -1


def _sliding_peak(series: CountSeries, scale: DetectorParams, k: int) -> int:
    """The highest count of any window of `scale.window` (sliding by one bucket, not only the aligned
    history windows) that ended in the last `rearm` before the current one: the hysteresis of a scale
    longer than the bucket, so a story that ran during the cooldown does not alert once it ends. Applied
    when several scales are judged; one scale alone keeps today's aligned hysteresis."""
    w = round(scale.window / series.step)
    recent = max(1, min(k, round(scale.rearm / scale.window)))
    counts = series.counts
    n = len(counts)
    cum = [0, *accumulate(counts)]
    ends = range(max(0, n - 1 - recent * w), n - w)  # bucket index where each earlier window ends
    return max((cum[j + 1] - cum[max(0, j + 1 - w)] for j in ends), default=0)


class Detection(msgspec.Struct, frozen=True):
    """One alert of `detect_alerts`: the bucket it fires at and the scale that fired."""

    at: datetime  # aware UTC: the time of the row (bucket) whose window alerted
    window: timedelta  # the window that fired (whole buckets)
    count: float  # its count
    expected: float  # the baseline's typical count for that window
    score: float  # its score (reached that scale's threshold, or a cold start)


def detect_series(times: Sequence[datetime], values: Sequence[float], params: DetectorParams) -> list[datetime]:
    """The times of `detect_alerts`."""
    return [d.at for d in detect_alerts(times, values, params)]


def detect_alerts(times: Sequence[datetime], values: Sequence[float], params: DetectorParams) -> list[Detection]:
    """`monitor detect`: one value per bucket (bucket size = the median step between timestamps;
    naive times are UTC), causal (each decision sees only its own and earlier buckets); returns the
    alerts, cooldown applied. Each scale's window and the baseline become whole buckets.

    Rows are taken in time order; rows that round to the same bucket are summed; a missing bucket
    counts 0. The window judged at a row is that row's bucket and the buckets just before it; when
    several scales alert at one row, the most surprising against its threshold is reported.
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
    step = _median_step(secs, params.step.total_seconds())
    buckets = np.rint((secs - secs[0]) / step).astype(np.int64)
    uniq, first = np.unique(buckets, return_index=True)
    totals = np.add.reduceat(vals, first)
    cum = np.concatenate([[0.0], np.cumsum(totals)])
    # Windows in whole buckets; scales that round to the same number of buckets are one scale, and the
    # budget is shared between the scales actually judged.
    widths = sorted({max(1, round(w.total_seconds() / step)) for w in params.windows})
    fired: dict[int, tuple[float, Detection]] = {}  # row -> (margin, detection): the best scale per row
    for w in widths:
        scale = params.at_scale(timedelta(seconds=step * w), among=len(widths))
        k = max(1, round(params.baseline.total_seconds() / step) // w)
        recent = max(1, min(k, round(scale.rearm / scale.window)))
        for lo in range(0, len(uniq), _CHUNK):
            rows = uniq[lo : lo + _CHUNK]
            current = _upto(uniq, cum, rows) - _upto(uniq, cum, rows - w)
            # Only rows that pass the cheap half of the rule need their history and the model. A row with no
            # whole window before it in the file has nothing to compare with: the start of a file is not a
            # cold start (the daemon, which cannot tell "not watched" from "quiet", counts such windows 0).
            observed = rows - 2 * w + 1 >= uniq[0]
            cand = np.flatnonzero((current >= params.min_count) & observed)
            if len(widths) > 1:  # one scale alone keeps the aligned hysteresis of judge_many (today's detector)
                cand = cand[current[cand] > _sliding_peaks(uniq, cum, rows[cand], w, recent)]
            history = _bucket_history(uniq, cum, rows[cand], w, k)
            keep = _may_alert(current[cand], np.nan_to_num(history), scale)
            cand, history = cand[keep], history[keep]
            expected, score, alert = judge_many(current[cand], history, scale)
            for j in np.flatnonzero(alert):
                i = int(cand[j])
                margin = float(score[j]) - scale.threshold
                if lo + i not in fired or margin > fired[lo + i][0]:
                    at = datetime.fromtimestamp(secs[first[lo + i]], UTC)
                    found = Detection(at, scale.window, float(current[i]), float(expected[j]), float(score[j]))
                    fired[lo + i] = (margin, found)
    alerts: list[Detection] = []
    last = -math.inf
    cooldown = params.cooldown.total_seconds()
    for row in sorted(fired):
        at = secs[first[row]]
        if at - last >= cooldown:
            alerts.append(fired[row][1])
            last = at
    return alerts


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _median_step(secs: Floats, fallback: float) -> float:
    import numpy as np

    steps = np.diff(secs)
    steps = steps[steps > 0]
    return float(np.median(steps)) if len(steps) else fallback


def _upto(uniq: NDArray[np.int64], cum: Floats, b: NDArray[np.int64]) -> Floats:
    """The sum of all buckets <= b (bucket numbers; `cum` = cumulative sums over `uniq`)."""
    import numpy as np

    return np.asarray(cum[np.searchsorted(uniq, b, side="right")], dtype=np.float64)


def _sliding_peaks(uniq: NDArray[np.int64], cum: Floats, rows: NDArray[np.int64], w: int, recent: int) -> Floats:
    """For rows (bucket numbers): the highest count of a w-bucket window ending 1 to `recent` windows before
    the row's own, at every bucket (as `_sliding_peak` in the daemon); windows reaching before the start are partial."""
    import numpy as np

    if not len(rows):
        return np.zeros(0)
    span = (recent - 1) * w + 1  # window ends from row - recent * w to row - w
    grid = int(uniq[-1] - uniq[0]) + 1
    if grid > 4 * len(uniq):  # a sparse file: look each window up rather than lay out every bucket
        ends = rows[:, None] - np.arange(w, recent * w + 1)[None, :]
        return np.asarray((_upto(uniq, cum, ends) - _upto(uniq, cum, ends - w)).max(axis=1), dtype=np.float64)
    every = np.arange(uniq[0], uniq[-1] + 1)
    sums = _upto(uniq, cum, every) - _upto(uniq, cum, every - w)  # the window ending at each bucket
    padded = np.concatenate([np.zeros(recent * w), sums])  # padded[b - uniq[0] + recent * w] = sums[b - uniq[0]]
    view = np.lib.stride_tricks.sliding_window_view(padded, span)  # view[j] = padded[j : j + span]
    return np.asarray(view[rows - uniq[0]].max(axis=1), dtype=np.float64)


def _bucket_history(uniq: NDArray[np.int64], cum: Floats, rows: NDArray[np.int64], w: int, k: int) -> Floats:
    """The k windows before each row's own (oldest first; NaN where a window starts before the first bucket)."""
    import numpy as np

    lags = np.arange(k, 0, -1)  # oldest first: column c ends lags[c] windows before the current one
    ends = rows[:, None] - lags[None, :] * w
    history = _upto(uniq, cum, ends) - _upto(uniq, cum, ends - w)
    exists = ends - w + 1 >= uniq[0]  # the whole window lies after the series' first bucket
    return np.where(exists, history, np.nan)
