"""The grid's printed numbers, one function at a time: paired statistics against scipy and published power
tables, which seeds enter a pair, Holm's families, the tidy table, and how numbers read."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from grid.format import artifact_key, canonical, ci, group_label, point_label, pts, pvalue
from grid.results import arm_summaries, cell_metrics, comparisons, tidy
from grid.stats import ALPHA, MAX_SEEDS, POWER, Paired, paired, power, seeds_for_power, summary

# --- grid.stats -------------------------------------------------------------------------------------------------


def test_the_test_level_and_power_are_the_conventional_ones() -> None:
    assert (ALPHA, POWER, MAX_SEEDS) == (0.05, 0.8, 10_000)


def test_summary_of_no_value_and_of_one() -> None:
    empty = summary(np.array([]))
    assert empty.n == 0 and math.isnan(empty.mean) and empty.sd == 0.0
    one = summary(np.array([0.7]))
    assert (one.n, one.mean, one.sd) == (1, 0.7, 0.0)
    two = summary(np.array([0.5, 0.9]))
    assert two.sd == pytest.approx(math.sqrt(0.08))  # ddof 1: ((0.2)² + (0.2)²) / 1


def test_the_bootstrap_interval_is_scipys_bca_on_the_differences_seeded_by_the_comparison() -> None:
    a, b = np.array([0.84, 0.83, 0.82, 0.88, 0.86, 0.80]), np.array([0.80, 0.82, 0.78, 0.85, 0.81, 0.81])
    for seed in (0, 5):
        ref = sps.bootstrap((a - b,), np.mean, confidence_level=0.95, n_resamples=9999, method="BCa", rng=np.random.default_rng(seed))
        r = paired(a, b, seed=seed)
        assert (r.boot_low, r.boot_high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high), abs=1e-12)
    assert (paired(a, b).boot_low, paired(a, b).boot_high) == (paired(a, b, seed=0).boot_low, paired(a, b, seed=0).boot_high)
    assert paired(a, b).boot_low != paired(a, b, seed=5).boot_low
    rng = np.random.default_rng(9)  # 40 seeds: the resampled means are nearly continuous, so each resample counts
    a, b = rng.normal(0.8, 0.03, 40), rng.normal(0.79, 0.03, 40)
    ref = sps.bootstrap((a - b,), np.mean, confidence_level=0.95, n_resamples=9999, method="BCa", rng=np.random.default_rng(0))
    assert (paired(a, b).boot_low, paired(a, b).boot_high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high), abs=1e-12)


def test_two_seeds_are_enough_for_a_t_test() -> None:
    a, b = np.array([0.9, 0.7]), np.array([0.8, 0.65])  # differences 0.1 and 0.05
    r = paired(a, b)
    ref = sps.ttest_rel(a, b)
    assert r.n == 2 and r.sd == pytest.approx(np.std([0.1, 0.05], ddof=1))
    assert r.p_t == pytest.approx(ref.pvalue) and (r.t_low, r.t_high) == pytest.approx(ref.confidence_interval(0.95))
    assert r.seeds_for_power == seeds_for_power(r.mean / r.sd)


def test_seeds_for_power_reported_for_the_observed_effect() -> None:
    a = np.array([0.91, 0.88, 0.95, 0.90, 0.93, 0.89])
    b = np.array([0.89, 0.87, 0.91, 0.90, 0.90, 0.86])
    d = a - b
    r = paired(a, b)
    assert r.seeds_for_power == seeds_for_power(d.mean() / d.std(ddof=1))
    assert 2 <= r.seeds_for_power < 20
    assert paired(b, a).seeds_for_power == r.seeds_for_power  # a loss needs as many seeds to show as a gain


def test_every_seed_shifted_by_one_amount_is_no_t_test_even_for_large_values() -> None:
    """d = 5000 on every seed, with float rounding leaving an sd of ~1e-12: that is no spread relative to the mean."""
    b = np.array([0.1, 0.7, 0.3, 12345.6789])
    r = paired(b + 5000.0, b)
    assert r.mean == pytest.approx(5000.0) and r.sd == 0.0 and math.isnan(r.p_t) and r.seeds_for_power is None
    assert math.isnan(r.boot_low) and math.isnan(r.boot_high)
    assert r.p_wilcoxon == pytest.approx(sps.wilcoxon(np.full(4, 5000.0)).pvalue)


def test_a_difference_of_rounding_only_reads_as_exactly_zero() -> None:
    r = paired(np.array([0.1 + 0.2] * 3), np.array([0.3] * 3))  # 5.6e-17 each
    assert r.mean == 0.0 and r.sd == 0.0 and math.isnan(r.p_t)


def test_noise_around_zero_is_no_difference_not_a_t_test() -> None:
    r = paired(np.array([0.1 + 0.2, 0.3, 0.7]), np.array([0.3, 0.1 + 0.2, 0.7]))  # ±5.6e-17
    assert r.mean == 0.0 and r.sd == 0.0 and math.isnan(r.p_t) and r.seeds_for_power is None


def test_fewer_than_two_seeds_give_no_test_at_all() -> None:
    one = paired(np.array([0.9]), np.array([0.8]))
    assert one.n == 1 and one.mean == pytest.approx(0.1) and one.sd == 0.0
    assert all(math.isnan(x) for x in (one.t_low, one.t_high, one.boot_low, one.boot_high, one.p_t, one.p_wilcoxon))
    assert one.seeds_for_power is None
    empty = paired(np.array([]), np.array([]))
    assert empty.sd == 0.0 and math.isnan(empty.p_wilcoxon) and empty.seeds_for_power is None


def test_as_dict_holds_every_field() -> None:
    r = paired(np.array([1.0, 2.0, 4.0]), np.zeros(3))
    assert isinstance(r, Paired) and r.as_dict()["mean"] == pytest.approx(7 / 3) and r.as_dict()["n"] == 3
    assert list(r.as_dict()) == ["n", "mean", "sd", "t_low", "t_high", "boot_low", "boot_high", "p_t", "p_wilcoxon", "seeds_for_power"]


def test_power_against_g_power() -> None:
    """G*Power 3.1, t test of matched pairs, two-tailed α = 0.05: d = 0.5, n = 34 → 0.8077775; d = 1, n = 10 → 0.8030969."""
    assert power(0.5, 34) == pytest.approx(0.8077775, abs=1e-6)
    assert power(1.0, 10) == pytest.approx(0.8030969, abs=1e-6)
    assert power(-1.0, 10) == pytest.approx(0.8030969, abs=1e-6)  # two-sided
    assert power(1.0, 10, alpha=0.01) < power(1.0, 10)


@pytest.mark.parametrize("effect", [3.0, 2.0, 1.3, 0.3, 0.1, 0.03])
def test_seeds_for_power_is_the_smallest_count_with_80_percent(effect: float) -> None:
    n = seeds_for_power(effect)
    assert power(effect, n) >= 0.8 > power(effect, n - 1)


def test_seeds_for_power_known_counts_and_limits() -> None:
    assert [seeds_for_power(e) for e in (3.0, 2.0, 1.3, 0.3, 0.03)] == [4, 5, 7, 90, 8723]
    assert seeds_for_power(1.0, target=0.9) > seeds_for_power(1.0)
    assert seeds_for_power(0.001) == MAX_SEEDS  # 7.8 million needed: capped
    assert seeds_for_power(0.028) == MAX_SEEDS  # just over the cap
    assert seeds_for_power(50.0) == 2  # never fewer than two pairs
    assert seeds_for_power(math.nan) is None and seeds_for_power(math.inf) is None


# --- grid.results ---------------------------------------------------------------------------------------------


def record(arm: str, seed: int, metrics: dict, regime: str = "r", point: dict | None = None, **extra) -> dict:
    return {"cell": f"{arm}-{seed}", "label": f"{arm} · {regime} · seed {seed}", "regime": regime, "point": point or {}, "arm": arm,
            "kind": "none" if arm == "none" else "equal-steps" if arm == "equal-steps" else "augment", "control": arm != "qgan",
            "seed": seed, "metrics": metrics, "collapsed": False, "baseline_collapsed": False, "steps": 10, "train_images": 30,
            "generation": {}} | extra


A = {"none": [0.80, 0.82, 0.78, 0.85, 0.81], "qgan": [0.84, 0.83, 0.82, 0.88, 0.86], "duplicates": [0.81, 0.84, 0.79, 0.85, 0.80]}


def test_only_seeds_both_arms_ran_are_paired_and_none_is_never_a_method() -> None:
    records = [record(arm, s, {"accuracy": v}) for arm, values in A.items() for s, v in enumerate(values) if not (arm == "none" and s == 4)]
    rows = {(r["arm"], r["reference"]): r for r in comparisons(records)}
    assert set(rows) == {("qgan", "none"), ("duplicates", "none"), ("qgan", "duplicates")}
    r = rows[("qgan", "none")]
    assert r["n"] == 4 and r["excluded_seeds"] == []  # seed 4 has no baseline: not paired, not a collapse either
    assert r["mean"] == pytest.approx(np.mean(np.subtract(A["qgan"][:4], A["none"][:4])))
    assert r["method_mean"] == pytest.approx(np.mean(A["qgan"][:4])) and r["reference_mean"] == pytest.approx(np.mean(A["none"][:4]))
    assert rows[("qgan", "duplicates")]["n"] == 5
    assert (r["regime"], r["point"], r["metric"]) == ("r", {}, "accuracy")


def test_without_a_reference_arm_nothing_is_compared_with_it() -> None:
    records = [record(arm, s, {"accuracy": v}) for arm, values in A.items() if arm != "duplicates" for s, v in enumerate(values)]
    assert {(r["arm"], r["reference"]) for r in comparisons(records)} == {("qgan", "none")}


def test_a_pair_with_every_seed_collapsed_is_reported_with_no_numbers() -> None:
    records = [record(arm, s, {"accuracy": v}, collapsed=arm == "qgan") for arm, values in A.items() if arm != "duplicates"
               for s, v in enumerate(values)]
    r = next(iter(comparisons(records)))
    assert r["n"] == 0 and r["excluded_seeds"] == [0, 1, 2, 3, 4]
    assert math.isnan(r["method_mean"]) and math.isnan(r["reference_mean"]) and math.isnan(r["p_t"])
    assert "verdict" not in r  # exploratory numbers: a verdict is grid.decisions' and only for a primary


def test_only_metrics_both_arms_have_are_compared() -> None:
    records = ([record("none", s, {"accuracy": v, "rare_recall": v}) for s, v in enumerate(A["none"])]
               + [record("qgan", s, {"accuracy": v, "macro_f1": v}) for s, v in enumerate(A["qgan"])])
    assert [r["metric"] for r in comparisons(records)] == ["accuracy"]


def test_a_comparison_can_be_limited_to_the_seeds_its_verdict_used() -> None:
    """A primary decided at an earlier look is shown on that look's seeds, though both arms ran more for other questions."""
    records = [record(arm, s, {"accuracy": v, "macro_f1": v}) for arm, values in A.items() for s, v in enumerate(values)]
    rows = comparisons(records, {("r", "{}", "qgan", "none", "accuracy"): [0, 1, 2]})
    limited = next(r for r in rows if (r["arm"], r["reference"], r["metric"]) == ("qgan", "none", "accuracy"))
    assert limited["n"] == 3 and limited["mean"] == pytest.approx(np.mean(np.subtract(A["qgan"][:3], A["none"][:3])))
    other = next(r for r in rows if (r["arm"], r["reference"], r["metric"]) == ("qgan", "none", "macro_f1"))
    assert other["n"] == 5


def test_a_one_seed_grid_still_lists_its_comparisons_and_arms() -> None:
    records = [record(arm, 0, {"accuracy": values[0]}) for arm, values in A.items()]
    rows = comparisons(records)
    assert len(rows) == 3 and all(r["n"] == 1 and math.isnan(r["p_t"]) for r in rows)
    assert next(r for r in rows if (r["arm"], r["reference"]) == ("qgan", "none"))["mean"] == pytest.approx(A["qgan"][0] - A["none"][0])
    summaries = arm_summaries(records)
    assert [(s["arm"], s["kind"], s["control"], s["seeds"], s["metrics"]["accuracy"]["n"]) for s in summaries] == [
        ("none", "none", True, 1, 1), ("qgan", "augment", False, 1, 1), ("duplicates", "augment", True, 1, 1)]


def test_arm_summaries_mean_and_sd_per_metric_with_generated_scores() -> None:
    records = [record("qgan", s, {"accuracy": v}, generation={"kid": 0.1 * s, "frechet_distance": None}) for s, v in enumerate(A["qgan"])]
    records[2]["collapsed"] = True
    (row,) = arm_summaries(records)
    assert (row["regime"], row["point"], row["arm"], row["kind"], row["control"]) == ("r", {}, "qgan", "augment", False)
    assert (row["seeds"], row["collapsed"]) == (5, 1)
    kept = [v for s, v in enumerate(A["qgan"]) if s != 2]
    assert row["metrics"]["accuracy"] == {"n": 4, "mean": pytest.approx(np.mean(kept)), "sd": pytest.approx(np.std(kept, ddof=1))}
    assert row["metrics"]["kid"]["mean"] == pytest.approx(np.mean([0.0, 0.1, 0.3, 0.4]))
    assert "frechet_distance" not in row["metrics"]  # None: not measured


def test_tidy_rows_hold_every_value_and_skip_missing_ones() -> None:
    r = record("qgan", 3, {"accuracy": 0.9, "rare_recall": None}, point={"filter.tau": 0.6}, steps=42, train_images=77,
               generation={"accepted_fraction": 0.5, "kid": None})
    rows = tidy([r], ["filter.tau", "merge.mixing_ratio"])
    assert {row["metric"]: row["value"] for row in rows} == {"accuracy": 0.9, "steps": 42, "train_images": 77, "accepted_fraction": 0.5}
    assert all(row | {"metric": None, "value": None} == {"regime": "r", "filter.tau": 0.6, "merge.mixing_ratio": None, "arm": "qgan",
                                                          "kind": "augment", "seed": 3, "collapsed": False, "metric": None, "value": None}
               for row in rows)
    assert all(row["collapsed"] for row in tidy([r | {"collapsed": True}], []))


def test_rare_recall_is_over_the_classes_with_fewest_training_images() -> None:
    metrics = {"accuracy": 0.8, "macro": {"f1": 0.7, "precision": 0.75, "recall": 0.65},
               "per_class": {c: {"recall": r} for c, r in zip("abc", (0.9, 0.6, 0.4))}}
    out = cell_metrics(metrics, np.array([10, 100, 100]))
    assert out == {"accuracy": 0.8, "macro_f1": 0.7, "macro_precision": 0.75, "macro_recall": 0.65,
                   "recall/a": 0.9, "recall/b": 0.6, "recall/c": 0.4, "rare_recall": 0.9}


# --- grid.format ----------------------------------------------------------------------------------------------


def test_points_p_values_and_intervals_read_as_printed() -> None:
    assert pts(0.027) == "+2.7" and pts(0.027, sign=False) == "2.7"
    assert pts(None) == "—" and pts(math.nan) == "—" and pts(math.inf) == "—"
    assert pvalue(0.012345) == "0.0123" and pvalue(None) == "—" and pvalue(math.nan) == "—"
    assert ci({"t_low": 0.01, "t_high": 0.03, "boot_low": 0.02, "boot_high": 0.05}) == "[+1.0, +3.0]"
    assert ci({"t_low": 0.01, "t_high": 0.03, "boot_low": 0.02, "boot_high": 0.05}, "boot") == "[+2.0, +5.0]"


def test_labels_and_artifact_keys() -> None:
    assert point_label({"filter.tau": 0.6, "augment.n_gen": 30}) == "filter.tau=0.6, augment.n_gen=30"
    assert group_label("scarce", {"filter.tau": 0.6}) == "scarce · filter.tau=0.6" and group_label("scarce", {}) == "scarce"
    assert artifact_key("grid", "He2025 Quick_v2") == "grid-he2025-quick-v2"


def test_canonical_text_ignores_mapping_order_and_key_types() -> None:
    assert canonical({"b": 1, "a": [1, (2, 3)]}) == canonical({"a": [1, [2, 3]], "b": 1}) == '{"a": [1, [2, 3]], "b": 1}'
    assert canonical({0: 5, 1: 5}) == canonical({"0": 5, "1": 5})
    assert canonical({"x": {2: 1}}) == '{"x": {"2": 1}}'
    assert canonical({0: 1, "a": 2}) == '{"0": 1, "a": 2}'  # YAML's mixed int and text keys still sort
    assert canonical([{0: 1, "a": (2,)}]) == '[{"0": 1, "a": [2]}]'
