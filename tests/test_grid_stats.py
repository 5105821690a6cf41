"""grid.stats against scipy's own tests, published power tables and hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from grid.stats import paired, power, seeds_for_power, summary

METHOD = np.array([0.91, 0.88, 0.95, 0.90, 0.93, 0.89, 0.94, 0.92, 0.96, 0.90])
REFERENCE = np.array([0.89, 0.87, 0.91, 0.90, 0.90, 0.86, 0.92, 0.93, 0.92, 0.88])


def test_paired_difference_matches_scipy_ttest_rel_and_wilcoxon() -> None:
    r = paired(METHOD, REFERENCE)
    ref = sps.ttest_rel(METHOD, REFERENCE)
    low, high = ref.confidence_interval(0.95)
    d = METHOD - REFERENCE
    assert r.n == 10
    assert r.mean == pytest.approx(d.mean()) and r.sd == pytest.approx(d.std(ddof=1))
    assert r.p_t == pytest.approx(ref.pvalue) and (r.t_low, r.t_high) == pytest.approx((low, high))
    assert r.p_wilcoxon == pytest.approx(sps.wilcoxon(METHOD, REFERENCE).pvalue)


def test_t_interval_by_hand() -> None:
    """mean ± t(0.975, n − 1) · sd / √n, worked out for differences 1, 2, 3, 4, 5 (mean 3, sd √2.5)."""
    r = paired(np.array([1.0, 2, 3, 4, 5]), np.zeros(5))
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert (r.t_low, r.t_high) == pytest.approx((3 - half, 3 + half))
    assert r.p_t == pytest.approx(2 * sps.t.sf(3 / math.sqrt(2.5 / 5), 4))


def test_bootstrap_interval_is_seeded_and_agrees_with_t_on_normal_data() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.02, 0.03, 60), np.zeros(60)
    r1, r2 = paired(a, b), paired(a, b)
    assert (r1.boot_low, r1.boot_high) == (r2.boot_low, r2.boot_high)
    assert r1.boot_low < r1.mean < r1.boot_high
    assert r1.boot_low == pytest.approx(r1.t_low, abs=0.003) and r1.boot_high == pytest.approx(r1.t_high, abs=0.003)


def test_degenerate_samples_give_defined_answers() -> None:
    same = paired(np.array([0.9, 0.8, 0.7]), np.array([0.9, 0.8, 0.7]))
    assert same.mean == 0 and math.isnan(same.p_t) and same.p_wilcoxon == 1.0 and same.seeds_for_power is None
    shifted = paired(np.array([0.9, 0.8]), np.array([0.85, 0.75]))  # every seed +0.05: no spread, so no t test
    assert shifted.mean == pytest.approx(0.05) and math.isnan(shifted.p_t) and math.isnan(shifted.t_low)
    assert shifted.p_wilcoxon == pytest.approx(sps.wilcoxon([0.05, 0.05]).pvalue)
    one = paired(np.array([0.9]), np.array([0.8]))
    assert one.n == 1 and math.isnan(one.p_t) and math.isnan(one.t_low)
    empty = paired(np.array([]), np.array([]))
    assert empty.n == 0 and math.isnan(empty.mean)


def test_power_matches_published_tables() -> None:
    """Paired t, two-sided α = 0.05, 80 % power (Cohen 1988; G*Power): d = 0.5 → 34 pairs, 0.8 → 15, 1.0 → 10."""
    assert seeds_for_power(0.5) == 34 and seeds_for_power(0.8) == 15 and seeds_for_power(1.0) == 10
    assert seeds_for_power(-0.5) == 34  # the sign of the effect does not matter
    assert power(0.5, 34) >= 0.8 > power(0.5, 33)
    assert seeds_for_power(0.0) is None
    assert power(0.0, 20) == pytest.approx(0.05)  # no effect: the test rejects at its level


def test_summary() -> None:
    s = summary(np.array([1.0, 2.0, 4.0]))
    assert (s.n, s.mean, s.sd) == (3, pytest.approx(7 / 3), pytest.approx(np.std([1, 2, 4], ddof=1)))
    assert summary(np.array([0.5])).sd == 0.0


def test_a_mean_difference_of_float_noise_is_no_effect() -> None:
    """Differences that cancel leave ~1e-17, which asked for 10,000 seeds "for 80 % power"."""
    method, reference = np.array([0.1, 0.2, 0.7, 0.4]), np.array([0.3, 0.0, 0.6, 0.5])
    assert abs(np.mean(method - reference)) > 0  # float noise, not zero
    r = paired(method, reference)
    assert r.mean == 0.0 and r.seeds_for_power is None and r.p_t == pytest.approx(1.0)


def test_numbers_print_the_same_wherever_they_appear_and_never_as_minus_zero() -> None:
    from grid.format import power_seeds, pts

    assert pts(0.0125) == pts(0.9125 - 0.9) == pts(np.mean([0.9125]) - 0.9) == "+1.3"  # half away from zero, noise removed
    assert pts(-0.0125) == "-1.3" and pts(0.027) == "+2.7" and pts(0.905, sign=False) == "90.5"
    assert pts(-0.0004) == pts(-0.0) == pts(0.0) == "0.0" and pts(0.0004, sign=False) == "0.0"
    assert pts(None) == pts(float("nan")) == "—"
    assert power_seeds({"mean": 0.03, "seeds_for_power": 14}) == "14"
    assert power_seeds({"mean": 0.0003, "seeds_for_power": 9000}) == "—"  # the effect prints as 0.0
    assert power_seeds({"mean": 0.001, "seeds_for_power": 10_000}) == "> 10000"
    assert power_seeds({"mean": 0.0, "seeds_for_power": None}) == "—"
    assert power_seeds({"mean": 0.03, "seeds_for_power": None}) == "—"  # no spread: not estimable


def test_differences_of_float_noise_are_ties_for_wilcoxon_too() -> None:
    method, reference = np.full(5, 0.1 + 0.2), np.full(5, 0.3)  # 5.6e-17 apart on every seed: ranked, p would be 0.0625
    r = paired(method, reference)
    assert r.mean == 0.0 and r.p_wilcoxon == 1.0 and r.seeds_for_power is None
