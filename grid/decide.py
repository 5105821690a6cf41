"""Decisions for a grid's primary comparisons: better, worse, equivalent within ±δ, or inconclusive (issue 23).

Seeds come in waves (a plan n_1 < … < n_K); after each wave ("look") every primary comparison still
open is judged on its paired differences (method − reference) so far, and one that is decided stops.

The rule. Two families, each held at family-wise error α over the whole plan (all looks, all primaries):

- *difference*: 2m one-sided hypotheses, "not better" (μ ≤ 0) and "not worse" (μ ≥ 0) per primary, by
  the paired t test; rejecting "not better" is the verdict ``better``.
- *equivalence*: m hypotheses "|μ| ≥ δ", by TOST (both one-sided t tests against ±δ reject: p is the
  larger of the two); rejecting it is the verdict ``equivalent``.

Each family spends α/K at each look (Bonferroni over looks) and, at a look, Holm's step-down runs over
the family's hypotheses not yet rejected: the j-th smallest p (j = 1, 2, …) is rejected while
p ≤ (α/K)/(h − j + 1), h the number not yet rejected. A hypothesis of a comparison that stopped (decided
by the other family, or by its other direction) keeps its place in h with no new data, so it is never
rejected; dropping it would let the data choose the family it is tested in (simulated, that variant broke
5 %: 5.6 % false better/worse with the skewed draws of tests/test_decide.py; this rule: 4.9 %).

Why this holds under arbitrary dependence between comparisons and under optional stopping: it is a
shortcut of the closed test whose local test of an intersection of J hypotheses rejects when, at some
look k, one of them has p ≤ α/(K·|J|). Let p_ik be hypothesis i's p on the first n_k seeds, a number
that exists whether or not the grid ran them (stopping only leaves some unseen, and an unseen p rejects
nothing). The union bound gives P(local test rejects | all J true) ≤ Σ_k Σ_i∈J α/(K·|J|) = α, whatever
the dependence, and a wrong verdict needs the local test of all true hypotheses to reject, so
P(any wrong verdict) ≤ α. Holm over the not-yet-rejected at look k rejects only what that closed test
rejects: an intersection holding an earlier rejection was rejected then, one inside the
not-yet-rejected set is rejected by Holm's usual argument. It rejects at least what the issue's union
bound α/(m·K) rejects. Needed: the plan and the primaries fixed before any data; no looks beyond the
plan (skipping one is allowed). A Pocock boundary (nominal 0.0091 one-sided per look for K = 4 instead
of 0.00625) would be sharper and needs the looks' correlation, which holds for the normal model only.

What it rests on: each p is valid, i.e. the t test's. Exact for normal differences; in simulation it held
for accuracy on 300 test images and for 10 % of seeds losing 5 points. It fails where a minority of seeds
fail badly (10 % of seeds losing 10 points: 20 % false better/worse over three primaries at 5–40 seeds):
a run of good seeds looks like a real gain to any test of a mean at a few seeds, so P(better) and the
seeds themselves belong next to every verdict.

A comparison both families decide at one look is ``better``/``worse`` with ``within_margin``: a real
effect smaller than the margin. The interval next to a verdict decides it: the (1 − 2ℓ) t interval,
ℓ the one-sided level Holm used for it, excludes 0 (better/worse) or lies inside ±δ (equivalent).
An open comparison shows the interval at the smaller of the two levels Holm stopped at: it contains 0
and leaves ±δ, which is why it is open. At the last look open is ``inconclusive``, with the seeds a
fixed design of one look (Bonferroni over the m primaries, Holm's first step) needs for 80 % power:
for ``better``/``worse`` at the observed d_z; for ``equivalent`` assuming the true difference is the
observed one (None when it lies outside ±δ: no number of seeds shows equivalence then).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from grid.stats import ALPHA, MAX_SEEDS, POWER, ZERO


@dataclass(frozen=True)
class Verdict:
    verdict: str  # better | worse | equivalent | inconclusive (last look) | open (a later look will judge it)
    look: int  # the look (1-based) that decided it, or the last one that judged it
    n: int
    mean: float
    sd: float
    margin: float
    level: float  # one-sided error level ℓ of the interval: the (1 − 2ℓ) paired t interval
    low: float
    high: float
    within_margin: bool = False  # better/worse whose equivalence test passed too: real, but smaller than the margin
    seeds_difference: int | None = None  # inconclusive: seeds a fixed design needs for better/worse (80 % power)
    seeds_equivalence: int | None = None  # … for equivalent, at the observed difference

    @property
    def decided(self) -> bool:
        return self.verdict in ("better", "worse", "equivalent")


@dataclass(frozen=True)
class Simulated:
    """Whole grids run through the rule: ``direction`` +1 better, −1 worse, 0 neither; ``seeds`` each ran."""

    direction: np.ndarray  # (grids, m) int
    equivalent: np.ndarray  # (grids, m) bool
    seeds: np.ndarray  # (grids, m) int


def pvalues(n: np.ndarray, mean: np.ndarray, sd: np.ndarray, margin: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-sided paired t p of "not better" (μ ≤ 0) and "not worse" (μ ≥ 0), and TOST p of "|μ| ≥ margin".

    Elementwise over arrays; inf (never rejected) where the t test is undefined: fewer than 2 seeds,
    or every seed moved by the same amount."""
    n, mean, sd = (np.asarray(a, dtype=float) for a in (n, mean, sd))
    usable = (n >= 2) & (sd > ZERO * np.maximum(1.0, np.abs(mean)))
    df = np.where(usable, n - 1, 1.0)
    se = np.where(usable, sd, 1.0) / np.sqrt(np.maximum(n, 1.0))
    with np.errstate(invalid="ignore"):  # NaN means of empty comparisons: masked below
        better, worse = stats.t.sf(mean / se, df), stats.t.cdf(mean / se, df)
        lower = stats.t.sf((mean + margin) / se, df)  # against μ ≤ −margin
        upper = stats.t.cdf((mean - margin) / se, df)  # against μ ≥ +margin
    return tuple(np.where(usable, p, np.inf) for p in (better, worse, np.maximum(lower, upper)))


def holm_step_down(p: np.ndarray, h: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Holm at ``level`` over each row's ``h`` hypotheses not yet rejected (those not tested now have p = inf).

    Returns what it rejects, the level each hypothesis met or would have met at its step, and the level
    the row stopped at (every hypothesis left has p above it)."""
    order = np.argsort(p, axis=1, kind="stable")
    step = level / np.maximum(h[:, None] - np.arange(p.shape[1]), 1)
    passed = np.cumprod(np.take_along_axis(p, order, axis=1) <= step, axis=1).astype(bool)
    reject, threshold = np.zeros_like(passed), np.empty_like(step)
    np.put_along_axis(reject, order, passed, axis=1)
    np.put_along_axis(threshold, order, step, axis=1)
    return reject, threshold, level / np.maximum(h - reject.sum(axis=1), 1)


def _look(n: np.ndarray, mean: np.ndarray, sd: np.ndarray, margin: np.ndarray, direction: np.ndarray,
          equivalent: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
    """One look for rows of primaries: the new direction and equivalence states, each verdict's level, the stop level."""
    m = direction.shape[1]
    is_open = (direction == 0) & ~equivalent
    better, worse, equiv = pvalues(n, mean, sd, margin)
    p_diff = np.where(np.concatenate([is_open, is_open], axis=1), np.concatenate([better, worse], axis=1), np.inf)
    rej_d, lev_d, stop_d = holm_step_down(p_diff, 2 * m - (direction != 0).sum(axis=1), level)
    rej_e, lev_e, stop_e = holm_step_down(np.where(is_open, equiv, np.inf), m - equivalent.sum(axis=1), level)
    direction = direction + rej_d[:, :m] - rej_d[:, m:]
    lev_dir = np.where(rej_d[:, :m], lev_d[:, :m], lev_d[:, m:])
    return direction, equivalent | rej_e, lev_dir, lev_e, np.minimum(stop_d, stop_e)


def judge(differences: Sequence[Sequence[float]], margins: Sequence[float], plan: Sequence[int], look: int,
          earlier: Sequence[Verdict | None] | None = None, alpha: float = ALPHA) -> list[Verdict]:
    """The primaries' verdicts at ``look`` (1-based) of the wave ``plan``.

    ``differences[i]``: primary i's paired differences so far (ignored once decided); ``margins[i]``: its δ
    in the metric's units; ``earlier``: the verdicts the previous look returned (None at look 1), which fix
    what each family has rejected. The caller keeps the plan: judge each look once, in order."""
    K, m = _check_plan(plan), len(differences)
    _check(margins, m, look, K, earlier, alpha)
    earlier = list(earlier) if earlier is not None else [None] * m
    for i, d in enumerate(differences):
        if len(d) > plan[look - 1]:
            raise ValueError(f"differences[{i}]: {len(d)} seeds, more than look {look} of the plan allows ({plan[look - 1]})")
    d = [np.asarray(x, dtype=float) for x in differences]
    n = np.array([[len(x) for x in d]])
    mean = np.array([[x.mean() if len(x) else math.nan for x in d]])
    sd = np.array([[x.std(ddof=1) if len(x) > 1 else 0.0 for x in d]])
    state = np.array([[{"better": 1, "worse": -1}.get(v.verdict, 0) if v else 0 for v in earlier]])
    equiv = np.array([[bool(v and (v.verdict == "equivalent" or v.within_margin)) for v in earlier]])
    direction, equivalent, lev_dir, lev_eq, stop = _look(n, mean, sd, np.asarray(margins, dtype=float), state, equiv, alpha / K)
    out = []
    for i in range(m):
        if earlier[i] is not None and earlier[i].decided:
            out.append(earlier[i])
            continue
        common = dict(look=look, n=int(n[0, i]), mean=float(mean[0, i]), sd=float(sd[0, i]), margin=float(margins[i]))
        if direction[0, i]:
            word, level = ("better" if direction[0, i] > 0 else "worse"), float(lev_dir[0, i])
            out.append(Verdict(word, level=level, **common, **_interval(d[i], level), within_margin=bool(equivalent[0, i])))
        elif equivalent[0, i]:
            level = float(lev_eq[0, i])
            out.append(Verdict("equivalent", level=level, **common, **_interval(d[i], level)))
        elif look < K:
            out.append(Verdict("open", level=float(stop[0]), **common, **_interval(d[i], float(stop[0]))))
        else:
            sd_i = common["sd"] if _has_spread(d[i]) else 0.0  # float noise is no spread: no seed count either way
            out.append(Verdict("inconclusive", level=float(stop[0]), **common, **_interval(d[i], float(stop[0])),
                               seeds_difference=seeds_for_difference(d_z(d[i]), m, alpha),
                               seeds_equivalence=seeds_for_equivalence(common["mean"], sd_i, margins[i], m, alpha)))
    return out


def simulate(draw: Callable[[np.random.Generator, tuple[int, int, int]], np.ndarray], plan: Sequence[int],
             margins: Sequence[float], grids: int, seed: int, alpha: float = ALPHA) -> Simulated:
    """Run ``grids`` whole grids through the rule at once; ``draw(rng, (grids, m, plan[-1]))`` gives the differences.

    The same :func:`_look` as :func:`judge`, vectorised over grids, so thousands of grids take a second."""
    K, m = _check_plan(plan), len(margins)
    d = np.asarray(draw(np.random.default_rng(seed), (grids, m, plan[-1])), dtype=float)
    direction, equivalent = np.zeros((grids, m), dtype=int), np.zeros((grids, m), dtype=bool)
    seeds = np.full((grids, m), plan[-1])
    margin = np.asarray(margins, dtype=float)
    for n_k in plan:
        was_open = (direction == 0) & ~equivalent
        x = d[:, :, :n_k]
        direction, equivalent, *_ = _look(np.full((grids, m), n_k), x.mean(axis=2), x.std(axis=2, ddof=1), margin,
                                           direction, equivalent, alpha / K)
        seeds[was_open & ((direction != 0) | equivalent)] = n_k
    return Simulated(direction, equivalent, seeds)


def _interval(d: np.ndarray, level: float) -> dict[str, float]:
    """The (1 − 2·level) paired t interval: the one a test at one-sided level ``level`` decides by."""
    if not _has_spread(d):
        return {"low": math.nan, "high": math.nan}
    low, high = stats.ttest_1samp(d, 0.0).confidence_interval(1 - 2 * level)
    return {"low": float(low), "high": float(high)}


def seeds_for_difference(effect: float, m: int, alpha: float = ALPHA, target: float = POWER) -> int | None:
    """Seeds a one-look design needs to call better/worse at standardised effect d_z with ``target`` power,
    one-sided at α/(2m) (Holm's first step over the 2m directions). None at no effect."""
    if not math.isfinite(effect) or effect == 0:
        return None

    def enough(n: int) -> bool:
        return stats.nct.sf(stats.t.isf(alpha / (2 * m), n - 1), n - 1, abs(effect) * math.sqrt(n)) >= target

    return _smallest_n(enough)


def seeds_for_equivalence(mean: float, sd: float, margin: float, m: int, alpha: float = ALPHA, target: float = POWER) -> int | None:
    """Seeds a one-look design needs to call equivalent (TOST at α/m) with ``target`` power, the true difference
    being ``mean``; the power is a lower bound (1 − the two tests' failure rates), so the count errs high.
    None when ``mean`` lies outside ±margin (equivalence is then wrong) or the spread is unknown."""
    if not (math.isfinite(mean) and math.isfinite(sd)) or abs(mean) >= margin or sd <= 0:
        return None

    def enough(n: int) -> bool:
        df, crit, root = n - 1, stats.t.isf(alpha / m, n - 1), math.sqrt(n) / sd
        fail = stats.nct.cdf(crit, df, (mean + margin) * root) + stats.nct.sf(-crit, df, (mean - margin) * root)
        return 1 - fail >= target

    return _smallest_n(enough)


def _smallest_n(enough: Callable[[int], bool]) -> int:
    """Smallest n ≥ 2 where ``enough`` (monotone in n) holds, by doubling then bisection; MAX_SEEDS at most."""
    lo, hi = 2, 2
    while not enough(hi):
        if hi >= MAX_SEEDS:
            return MAX_SEEDS
        lo, hi = hi + 1, min(2 * hi, MAX_SEEDS)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid + 1, hi)
    return hi


def p_better(differences: Sequence[float], seed: int = 0, confidence: float = 1 - ALPHA) -> tuple[float, float, float]:
    """P(the method beats the reference on a seed), ties counted half, with a percentile bootstrap CI over seeds.

    Percentile, not BCa: the statistic takes only n + 1 values, and BCa's jackknife degenerates when the
    seeds agree. Unadjusted: an effect size to weigh, not a verdict."""
    score = (np.sign(np.asarray(differences, dtype=float)) + 1) / 2  # 1 win, ½ tie, 0 loss
    if len(score) == 0:
        return math.nan, math.nan, math.nan
    if len(score) == 1:
        return float(score[0]), math.nan, math.nan
    ci = stats.bootstrap((score,), np.mean, confidence_level=confidence, n_resamples=9999, method="percentile",
                         rng=np.random.default_rng(seed)).confidence_interval
    return float(score.mean()), float(ci.low), float(ci.high)


def d_z(differences: Sequence[float]) -> float:
    """Standardised paired effect: mean / sd of the differences (NaN with under 2 seeds or no spread)."""
    d = np.asarray(differences, dtype=float)
    return float(d.mean() / d.std(ddof=1)) if _has_spread(d) else math.nan


def _has_spread(d: np.ndarray) -> bool:
    """At least 2 seeds that do not all move by the same amount, float noise aside: the t test is defined
    (the scalar form of :func:`pvalues`' mask)."""
    return len(d) >= 2 and bool(d.std(ddof=1) > ZERO * max(1.0, abs(d.mean())))


def wilcoxon_min_p(n: int) -> float:
    """Smallest two-sided p the exact Wilcoxon signed-rank test can give with ``n`` nonzero, untied differences:
    all of one sign, 2 · 2⁻ⁿ (0.0625 at n = 5). Where it exceeds the level, the test cannot reject whatever the
    data, and the report should not show it as if it could. Zeros are dropped first: count only nonzero ones."""
    if n < 1:
        raise ValueError(f"wilcoxon_min_p: n = {n}; needs at least one nonzero difference")
    return 2.0 ** (1 - n)


def _check_plan(plan: Sequence[int]) -> int:
    if not plan or any(int(n) != n or n < 2 for n in plan) or any(b <= a for a, b in zip(plan, plan[1:])):
        raise ValueError(f"wave plan {list(plan)}: seeds per look must be whole numbers ≥ 2 that increase, e.g. [5, 10, 20, 40]")
    return len(plan)


def _check(margins: Sequence[float], m: int, look: int, K: int, earlier: Sequence[Verdict | None] | None, alpha: float) -> None:
    if len(margins) != m:
        raise ValueError(f"margins: {len(margins)} given for {m} primary comparisons; give one per comparison")
    if not all(math.isfinite(x) and x > 0 for x in margins):
        raise ValueError(f"margins {list(margins)}: each must be a positive number in the metric's units, e.g. 0.02")
    if not 1 <= look <= K:
        raise ValueError(f"look {look}: the plan has looks 1 to {K}")
    if earlier is not None and len(earlier) != m:
        raise ValueError(f"earlier: {len(earlier)} verdicts for {m} primary comparisons; pass the previous look's list")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha {alpha}: must lie between 0 and 1")
