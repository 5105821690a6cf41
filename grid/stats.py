"""Paired statistics over seeds: is a method's gain real, how large, and how many seeds would show it.

Everything comes from scipy.stats. These numbers are exploratory (unadjusted); verdicts on a grid's primary
comparisons come from grid.decide.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 10_000
# A mean difference below this is zero: test-set metrics move in steps of 1/(test images) ≥ 1e-6, float noise is ~1e-17.
ZERO = 1e-12


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    sd: float  # sample standard deviation (ddof 1); 0 with one value


@dataclass(frozen=True)
class Paired:
    """Differences method − reference over paired seeds."""

    n: int
    mean: float
    sd: float
    t_low: float
    t_high: float
    boot_low: float
    boot_high: float
    p_t: float
    p_wilcoxon: float
    seeds_for_power: int | None  # seeds for 80 % power at the observed effect (α = 0.05, before Holm); None: not estimable

    def as_dict(self) -> dict:
        return asdict(self)


def summary(values: np.ndarray) -> Summary:
    v = np.asarray(values, dtype=float)
    return Summary(len(v), float(v.mean()) if len(v) else math.nan, float(v.std(ddof=1)) if len(v) > 1 else 0.0)


def paired(method: np.ndarray, reference: np.ndarray, seed: int = 0) -> Paired:
    """Mean difference with t and bootstrap (BCa) 95 % CIs, paired t and Wilcoxon signed-rank p, seeds for 80 % power."""
    d = np.asarray(method, dtype=float) - np.asarray(reference, dtype=float)
    d[np.abs(d) < ZERO] = 0.0  # 0.1 + 0.2 against 0.3 is a tie, not a difference (Wilcoxon would rank it)
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    if abs(mean) < ZERO:  # float noise of differences that cancel: no effect, not a tiny one needing 10,000 seeds
        mean = 0.0
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    if n < 2:
        return Paired(n, mean, sd, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, None)
    if sd <= ZERO * max(1.0, abs(mean)):  # every seed moved by the same amount (to rounding): t is undefined
        return Paired(n, mean, 0.0, math.nan, math.nan, math.nan, math.nan, math.nan, _wilcoxon(d), None)
    t = stats.ttest_1samp(d, 0.0)
    low, high = t.confidence_interval(1 - ALPHA)
    boot_low, boot_high = _bootstrap(d, seed)
    return Paired(n, mean, sd, float(low), float(high), boot_low, boot_high, float(t.pvalue), _wilcoxon(d), seeds_for_power(mean / sd))


def _wilcoxon(d: np.ndarray) -> float:
    if not np.any(d != 0):
        return 1.0
    return float(stats.wilcoxon(d, zero_method="wilcox").pvalue)


def _bootstrap(d: np.ndarray, seed: int) -> tuple[float, float]:
    res = stats.bootstrap((d,), np.mean, confidence_level=1 - ALPHA, n_resamples=9999, method="BCa", rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (math.isfinite(low) and math.isfinite(high)):  # BCa degenerates on tiny or tied samples
        res = stats.bootstrap((d,), np.mean, confidence_level=1 - ALPHA, n_resamples=9999, method="percentile", rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return low, high


def power(effect: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t test with ``n`` pairs at standardised effect ``effect`` (mean/sd of the differences)."""
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = effect * math.sqrt(n)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def seeds_for_power(effect: float, target: float = POWER) -> int | None:
    """Smallest number of paired seeds (≥ 2) whose t test has ``target`` power at ``effect``; None at no effect."""
    if effect == 0 or not math.isfinite(effect):
        return None
    lo, hi = 2, 2
    while power(effect, hi) < target:
        if hi >= MAX_SEEDS:
            return MAX_SEEDS
        lo, hi = hi, min(hi * 2, MAX_SEEDS)
    while lo < hi:  # power grows with n: bisect
        mid = (lo + hi) // 2
        if power(effect, mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    return hi
