"""grid.decide: the wave rule's error rates by simulation, its tests against scipy and hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower

from grid import stats as gstats
from grid.decide import (Verdict, d_z, holm_step_down, judge, p_better, pvalues, seeds_for_difference,
                         seeds_for_equivalence, simulate, wilcoxon_min_p)

PLAN = [5, 10, 20, 40]
MARGIN = 0.02  # two accuracy points
GRIDS = 4000
# An error rate of 5 % measured over GRIDS grids: its binomial standard error is √(0.05·0.95/GRIDS) ≈ 0.0034;
# a rate above 0.05 + 3 standard errors ≈ 0.060 would not be Monte-Carlo noise.
BOUND = 0.05 + 3 * math.sqrt(0.05 * 0.95 / GRIDS)


def normal(means: list[float], sd: float = 0.03):
    """Paired differences N(mean, sd), one mean per primary."""
    return lambda rng, shape: rng.normal(np.asarray(means)[None, :, None], sd, shape)


def accuracy_300(means: list[float], drop: float = 0.0, rate: float = 0.0):
    """Accuracy on 300 test images, method − reference, seed by seed: discrete (steps of 1/300) and, with ``drop``,
    skewed: on a fraction ``rate`` of seeds the method loses ``drop`` (a generator that fails now and then).
    The reference is binomial(300, 0.95)/300; the method's rate is raised so the true mean difference is ``mean``."""
    def draw(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
        p = 0.95 + np.asarray(means)[None, :, None] + drop * rate - drop * (rng.random(shape) < rate)
        return (rng.binomial(300, p) - rng.binomial(300, 0.95, shape)) / 300
    return draw


def populations(means: list[float]) -> dict:
    return {"normal": normal(means), "accuracy on 300 images": accuracy_300(means),
            "skewed: 10 % of seeds lose 5 points": accuracy_300(means, drop=0.05, rate=0.1)}


@pytest.mark.parametrize("name", list(populations([0])))
def test_no_true_difference_rarely_gives_better_or_worse(name: str) -> None:
    """Three primaries with no true difference, waves of 5, 10, 20, 40 seeds: P(any better/worse) ≤ 5 %."""
    sim = simulate(populations([0.0, 0.0, 0.0])[name], PLAN, [MARGIN] * 3, GRIDS, seed=1)
    assert np.mean((sim.direction != 0).any(axis=1)) <= BOUND
    assert sim.equivalent.mean() > 0.5  # the rule does decide: most of them come out equivalent


@pytest.mark.parametrize("name", list(populations([0])))
def test_a_true_difference_of_the_margin_rarely_gives_equivalent(name: str) -> None:
    sim = simulate(populations([MARGIN, -MARGIN, MARGIN])[name], PLAN, [MARGIN] * 3, GRIDS, seed=2)
    assert np.mean(sim.equivalent.any(axis=1)) <= BOUND


@pytest.mark.parametrize("name", list(populations([0])))
def test_a_clear_effect_is_decided_with_fewer_seeds_than_the_fixed_design(name: str) -> None:
    """+4, +4 and −4 points (sd ≈ 2–3): decided in the right direction, on average well before the 40 seeds."""
    sim = simulate(populations([0.04, 0.04, -0.04])[name], PLAN, [MARGIN] * 3, GRIDS, seed=3)
    assert np.mean(sim.direction == np.array([1, 1, -1])) > 0.95
    assert sim.seeds.mean() < 20 < PLAN[-1]


def test_the_simulation_runs_the_rule_that_judge_applies() -> None:
    """Grid by grid, look by look, :func:`judge` on the same differences reaches the simulated verdicts."""
    kept = {}

    def draw(rng, shape):
        kept["d"] = rng.normal(np.array([0.0, 0.02, 0.01, 0.005])[None, :, None], 0.02, shape)
        return kept["d"]

    margins = [0.01, 0.02, 0.02, 0.03]
    sim = simulate(draw, PLAN, margins, 40, seed=4)
    words = set()
    for g in range(40):
        verdicts = None
        for look, n in enumerate(PLAN, start=1):
            verdicts = judge([d[:n] for d in kept["d"][g]], margins, PLAN, look, verdicts)
        for i, v in enumerate(verdicts):
            words.add(v.verdict)
            assert (v.verdict == "better", v.verdict == "worse") == (sim.direction[g, i] == 1, sim.direction[g, i] == -1)
            assert (v.verdict == "equivalent" or v.within_margin) == sim.equivalent[g, i]
            assert v.n == sim.seeds[g, i]
    assert {"better", "equivalent", "inconclusive"} <= words  # the check covered each kind of ending


def test_pvalues_are_scipys_one_sided_t_and_tost() -> None:
    rng = np.random.default_rng(5)
    for n in (3, 5, 12):
        d = rng.normal(0.01, 0.02, n)
        better, worse, equivalent = pvalues(np.array(n), np.array(d.mean()), np.array(d.std(ddof=1)), MARGIN)
        assert better == pytest.approx(sps.ttest_1samp(d, 0.0, alternative="greater").pvalue)
        assert worse == pytest.approx(sps.ttest_1samp(d, 0.0, alternative="less").pvalue)
        tost = max(sps.ttest_1samp(d, -MARGIN, alternative="greater").pvalue, sps.ttest_1samp(d, MARGIN, alternative="less").pvalue)
        assert equivalent == pytest.approx(tost)
    never = pvalues(np.array([1, 3]), np.array([0.05, 0.02]), np.array([0.0, 0.0]), MARGIN)  # one seed; no spread
    assert all(np.all(np.isinf(p)) for p in never)


def test_holm_step_down_rejects_what_holms_adjusted_p_does() -> None:
    rng = np.random.default_rng(6)
    p = rng.uniform(0, 0.006, (40, 6))
    reject, _, stop = holm_step_down(p, np.full(40, 6), 0.01)
    adjusted = np.array([multipletests(row, method="holm")[1] for row in p])
    assert np.array_equal(reject, adjusted <= 0.01) and 0 < reject.mean() < 1
    left = np.where(reject, np.inf, p)
    assert np.all(left.min(axis=1) > stop)  # whatever is left lies above the level Holm stopped at


def test_holm_by_hand_across_looks() -> None:
    """Three primaries, 4 looks: each look has α/4 = 0.0125, over the 6 one-sided difference hypotheses.

    Look 1 (6 not rejected): one-sided p 0.002 ≤ 0.0125/6 = 0.00208 → better; 0.0024 ≤ 0.0125/5 = 0.0025 → better;
    0.0035 > 0.0125/4 = 0.003125 → open (0.003 would have been better too). Look 2 (4 not rejected: the two
    "not worse" of the decided ones keep their places): 0.003 ≤ 0.0125/4 → better."""
    base = np.array([-1.2, -0.4, 0.1, 0.5, 1.0])
    base = (base - base.mean()) / base.std(ddof=1)  # mean 0, sd 1

    def with_p(p: float) -> np.ndarray:  # five differences whose one-sided p of "not better" is p
        return base + sps.t.isf(p, 4) / math.sqrt(5)

    margins = [0.5] * 3
    first = judge([with_p(0.002), with_p(0.0024), with_p(0.0035)], margins, PLAN, 1)
    assert [v.verdict for v in first] == ["better", "better", "open"]
    assert [v.level for v in first] == pytest.approx([0.0125 / 6, 0.0125 / 5, 0.0125 / 4])
    all_three = judge([with_p(0.002), with_p(0.0024), with_p(0.003)], margins, PLAN, 1)
    assert [v.verdict for v in all_three] == ["better"] * 3
    second = judge([[], [], with_p(0.003)], margins, PLAN, 2, first)
    assert second[:2] == first[:2] and second[2].verdict == "better" and second[2].look == 2
    assert second[2].level == pytest.approx(0.0125 / 4)


def test_a_comparison_decided_by_one_family_keeps_its_place_in_the_other() -> None:
    """Two primaries; the first is called better at look 1. At look 2 the second's TOST p of 0.008 is above
    α/K/2 = 0.00625 (two equivalence hypotheses still unrejected), though below α/K = 0.0125."""
    better = Verdict("better", 1, 5, 1.0, 0.5, 0.1, 0.002, 0.5, 1.5)
    rng = np.random.default_rng(7)
    d = rng.normal(0, 1, 10)
    d = (d - d.mean()) / d.std(ddof=1) * 0.05
    margin = sps.t.isf(0.008, 9) * 0.05 / math.sqrt(10)  # TOST p = 0.008 at mean 0
    _, _, p_eq = pvalues(np.array(10), np.array(d.mean()), np.array(d.std(ddof=1)), margin)
    assert p_eq == pytest.approx(0.008)
    assert judge([[], d], [0.1, margin], PLAN, 2, [better, None])[1].verdict == "open"
    assert judge([[], d], [0.1, margin * 1.2], PLAN, 2, [better, None])[1].verdict == "equivalent"


def test_a_comparison_decided_equivalent_leaves_its_family() -> None:
    """Two primaries; the first was called equivalent at look 1. At look 2 the second's TOST p of 0.008 is tested
    at α/K/1 = 0.0125 (one equivalence hypothesis left unrejected), so it is equivalent; counting the first again
    (α/K/2 = 0.00625) would leave it open."""
    equivalent = Verdict("equivalent", 1, 5, 0.0, 0.01, 0.1, 0.00625, -0.05, 0.05)
    rng = np.random.default_rng(7)
    d = rng.normal(0, 1, 10)
    d = (d - d.mean()) / d.std(ddof=1) * 0.05
    margin = sps.t.isf(0.008, 9) * 0.05 / math.sqrt(10)  # TOST p = 0.008 at mean 0
    second = judge([[], d], [0.1, margin], PLAN, 2, [equivalent, None])
    assert second[0] == equivalent and second[1].verdict == "equivalent" and second[1].level == pytest.approx(0.0125)
    assert judge([[], d], [0.1, margin], PLAN, 2, [None, None])[1].verdict == "open"  # two left: 0.008 > 0.00625


def test_two_seeds_decide_on_one_degree_of_freedom() -> None:
    """The smallest look the plan allows: 2 seeds 0.0001 apart give t ≈ 2·10⁴, far past the t(1) quantile at 0.0125."""
    d = [1.0, 1.0001]
    v = judge([d], [0.5], [2, 4], 1)[0]
    ci = sps.ttest_1samp(d, 0.0).confidence_interval(1 - 2 * v.level)
    assert v.verdict == "better" and v.n == 2 and v.level == pytest.approx(0.0125)
    assert (v.low, v.high) == pytest.approx((ci.low, ci.high)) and v.low > 0.5


@pytest.mark.parametrize("d", [[], [0.03], [0.03] * 5, [0.0] * 5, [0.1 + 0.2, 0.3, 0.3, 0.1 * 3], [0.01, 0.1 + 0.2 - 0.29, 0.01],
                               [0.1 + 0.2 - 0.3] + [0.8 - (0.7 + 0.1)] * 3])
def test_without_a_spread_nothing_is_decided_and_no_interval_is_shown(d: list[float]) -> None:
    """No seed, one seed, or every seed moved by the same amount (equal-steps against none; the last three only up to
    float noise, the very last around 0, where a tolerance relative to the mean would see t = 7): the t test is undefined, so the
    comparison stays open, then is inconclusive with no interval and no seed count (d_z is undefined), whatever its mean."""
    for plan, word in (([5, 10], "open"), ([5], "inconclusive")):
        v = judge([d], [MARGIN], plan, 1)[0]
        assert v.verdict == word and v.n == len(d) and math.isnan(v.low) and math.isnan(v.high)
        assert v.sd <= 1e-15 and v.seeds_difference is None and v.seeds_equivalence is None


def test_one_look_by_hand() -> None:
    """One look, one primary: the difference test is the ordinary two-sided t at 0.05 (one-sided 0.025) and TOST
    the 90 % interval inside ±δ. Differences 1..5: mean 3, se √0.5, t(0.975, 4) = 2.776 → [1.037, 4.963]; the
    90 % interval 3 ± 2.132·√0.5 = [1.49, 4.51] lies inside ±5 but not ±4."""
    d = [1.0, 2, 3, 4, 5]
    v = judge([d], [4.0], [5], 1)[0]
    half = 2.7764451051977987 * math.sqrt(0.5)
    assert v.verdict == "better" and not v.within_margin and v.level == pytest.approx(0.025)
    assert (v.low, v.high) == pytest.approx((3 - half, 3 + half))
    assert judge([d], [5.0], [5], 1)[0].within_margin  # better, and by less than the margin


def test_the_interval_shown_is_the_one_that_decides() -> None:
    rng = np.random.default_rng(8)
    means = [0.03, -0.03, 0.0, 0.002, 0.01, 0.0]
    d = [rng.normal(mu, 0.02, 40) for mu in means]
    verdicts = None
    for look, n in enumerate(PLAN, start=1):
        verdicts = judge([x[:n] for x in d], [MARGIN] * len(d), PLAN, look, verdicts)
    for v, x in zip(verdicts, d):
        ci = sps.ttest_1samp(x[: v.n], 0.0).confidence_interval(1 - 2 * v.level)
        assert (v.low, v.high) == pytest.approx((ci.low, ci.high))
        if v.verdict == "better":
            assert v.low > 0
        elif v.verdict == "worse":
            assert v.high < 0
        elif v.verdict == "equivalent":
            assert -MARGIN < v.low and v.high < MARGIN
        else:  # contains 0 and leaves ±δ: why it is still open
            assert v.low <= 0 <= v.high and (v.low <= -MARGIN or v.high >= MARGIN)
    assert {v.verdict for v in verdicts} >= {"better", "worse", "equivalent"}


def test_inconclusive_says_what_would_decide_it() -> None:
    d = np.array([0.02, -0.01, 0.03, 0.0, 0.01])  # mean 0.01, sd 0.0158: neither verdict at 5 seeds
    v = judge([d], [MARGIN], [5], 1)[0]
    assert v.verdict == "inconclusive" and v.low <= 0 <= v.high
    assert v.seeds_difference == seeds_for_difference(d.mean() / d.std(ddof=1), 1)
    assert v.seeds_equivalence == seeds_for_equivalence(d.mean(), d.std(ddof=1), MARGIN, 1)
    assert seeds_for_equivalence(0.03, 0.02, MARGIN, 1) is None  # observed outside the margin: never equivalent


def test_seed_counts_have_the_power_they_promise() -> None:
    """One primary: the difference count is the published two-sided 0.05, 80 % one (d = 0.5 → 34, 0.8 → 15);
    three primaries need more. The equivalence count, checked by simulating TOST at it, has ≥ 80 % power."""
    assert seeds_for_difference(0.5, 1) == gstats.seeds_for_power(0.5) == 34
    assert seeds_for_difference(-0.8, 1) == 15 and seeds_for_difference(0.5, 3) > 34
    assert seeds_for_difference(0.0, 3) is None
    n = seeds_for_equivalence(0.005, 0.02, MARGIN, 3)
    d = np.random.default_rng(9).normal(0.005, 0.02, (20000, n))
    _, _, p = pvalues(np.full(20000, n), d.mean(axis=1), d.std(axis=1, ddof=1), MARGIN)
    assert np.mean(p <= 0.05 / 3) >= 0.8 - 3 * math.sqrt(0.16 / 20000)


@pytest.mark.parametrize("effect, m", [(0.5, 3), (-0.8, 8), (1.7, 1), (2.12, 1), (50.0, 1)])
def test_the_difference_count_is_the_smallest_with_the_power(effect: float, m: int) -> None:
    """Against statsmodels: the one-sided t test at α/(2m) against d_z reaches 80 % power at the count, not one
    seed earlier; 2 seeds (the fewest a t test takes) where the effect is huge."""
    def power(n: int) -> float:
        return TTestPower().power(effect_size=abs(effect), nobs=n, alpha=0.05 / (2 * m), alternative="larger")
    n = seeds_for_difference(effect, m)
    assert power(n) >= 0.8 and (n == 2 or power(n - 1) < 0.8)
    assert (n == 2) == (effect == 50.0)


def test_seed_counts_are_capped_and_undefined_without_an_effect_or_a_spread() -> None:
    assert seeds_for_difference(0.001, 3) == seeds_for_equivalence(0.0, 1.0, 0.001, 3) == gstats.MAX_SEEDS
    assert seeds_for_difference(math.nan, 3) is None and seeds_for_difference(math.inf, 3) is None
    for mean, sd in ((math.nan, 0.01), (0.0, math.nan), (0.0, math.inf), (0.0, 0.0), (0.02, 0.01), (-0.02, 0.01)):
        assert seeds_for_equivalence(mean, sd, MARGIN, 1) is None  # no spread, or the difference on the margin


@pytest.mark.parametrize("mean, sd, margin, m", [(0.005, 0.02, 0.02, 3), (0.0, 0.03, 0.02, 8), (-0.01, 0.015, 0.05, 2),
                                                 (0.0, 0.003, 0.02, 1), (0.0, 0.004, 0.02, 1), (0.0, 0.007, 0.02, 1), (0.0, 0.031, 0.02, 1)])
def test_the_equivalence_count_is_the_smallest_with_the_power(mean, sd, margin, m) -> None:
    """Against statsmodels: TOST's power is at least the two one-sided t tests' powers less 1 (each at α/m, against
    effects (δ ± μ)/σ); the count is the smallest n where that bound reaches 80 %."""
    def bound(n: int) -> float:
        return sum(TTestPower().power(effect_size=(margin + s * mean) / sd, nobs=n, alpha=0.05 / m, alternative="larger")
                   for s in (1, -1)) - 1
    n = seeds_for_equivalence(mean, sd, margin, m)
    assert bound(n) >= 0.8 > bound(n - 1)


def test_wilcoxon_min_p_is_scipys_exact_smallest() -> None:
    assert wilcoxon_min_p(5) == 0.0625  # five seeds can never reach 0.05
    for n in range(1, 21):
        assert wilcoxon_min_p(n) == pytest.approx(sps.wilcoxon(np.arange(1.0, n + 1), method="exact").pvalue)
    with pytest.raises(ValueError, match="n = 0"):
        wilcoxon_min_p(0)


def test_p_better_by_hand() -> None:
    """Ties count half: 6 wins, 2 ties, 2 losses → 0.7. 8 wins, 2 losses: a resample's wins are binomial(10, 0.8),
    whose 2.5 % quantile is 5 (P(≤ 4) = 0.006, P(≤ 5) = 0.033) and 97.5 % quantile 10 (P(≤ 9) = 0.89) → [0.5, 1.0]."""
    assert p_better([1, 1, 1, 1, 1, 1, 0, 0, -1, -1])[0] == pytest.approx(0.7)
    estimate, low, high = p_better([0.01] * 8 + [-0.02] * 2)
    assert (estimate, low, high) == pytest.approx((0.8, 0.5, 1.0))
    assert p_better([0.01] * 8 + [-0.02] * 2, seed=3) == p_better([0.01] * 8 + [-0.02] * 2, seed=3)
    assert p_better([0.01])[0] == 1.0 and math.isnan(p_better([0.01])[1])
    assert all(math.isnan(x) for x in p_better([]))


def test_d_z_by_hand() -> None:
    assert d_z([1.0, 2, 3, 4, 5]) == pytest.approx(3 / math.sqrt(2.5))
    assert math.isnan(d_z([0.05, 0.05])) and math.isnan(d_z([0.1]))


@pytest.mark.parametrize("call, message", [
    (lambda: judge([[0.1, 0.2]], [0.02], [5, 5], 1), "wave plan"),
    (lambda: judge([[0.1, 0.2]], [0.02], [1, 5], 1), "wave plan"),
    (lambda: judge([[0.1, 0.2]], [0.02], [], 1), "wave plan"),
    (lambda: judge([[0.1, 0.2]], [0.02], [2.5, 5], 1), "wave plan"),
    (lambda: judge([[0.1, 0.2], [0.1]], [0.02, 0.0], PLAN, 1), "margins"),
    (lambda: judge([[0.1, 0.2]], [math.inf], PLAN, 1), "margins"),
    (lambda: judge([[0.1, 0.2]], [0.0], PLAN, 1), "margins"),
    (lambda: judge([[0.1, 0.2]], [0.02, 0.02], PLAN, 1), "margins: 2 given for 1"),
    (lambda: judge([[0.1, 0.2]], [0.02], PLAN, 5), "look 5"),
    (lambda: judge([[0.1, 0.2]], [0.02], PLAN, 0), "look 0"),
    (lambda: judge([[0.1, 0.2]], [0.02], PLAN, 1, alpha=0.0), "alpha 0.0"),
    (lambda: judge([[0.1, 0.2]], [0.02], PLAN, 1, alpha=1.0), "alpha 1.0"),
    (lambda: judge([[0.1] * 6], [0.02], PLAN, 1), r"differences\[0\]: 6 seeds"),
    (lambda: judge([[0.1, 0.2]], [0.02], PLAN, 2, []), "earlier"),
])
def test_bad_input_is_named(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
