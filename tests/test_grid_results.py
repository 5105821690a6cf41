"""grid.results on records made by hand: pairing by seed, collapsed runs left out, Holm per metric, sweeps, rare classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from grid.results import arm_summaries, comparisons, cell_metrics, tidy


def record(arm: str, seed: int, accuracy: float, point: dict | None = None, collapsed: bool = False, baseline_collapsed: bool = False) -> dict:
    return {"cell": f"{arm}-{seed}", "label": f"{arm} · r · seed {seed}", "regime": "r", "point": point or {}, "arm": arm,
            "kind": "none" if arm == "none" else "augment", "control": arm in ("none", "duplicates"), "seed": seed,
            "metrics": {"accuracy": accuracy, "macro_f1": accuracy}, "collapsed": collapsed, "baseline_collapsed": baseline_collapsed,
            "steps": 10, "train_images": 30, "generation": {}}


NONE = [0.80, 0.82, 0.78, 0.85, 0.81]
QGAN = [0.84, 0.83, 0.82, 0.88, 0.86]
DUP = [0.81, 0.84, 0.79, 0.85, 0.80]


def grid_records() -> list[dict]:
    return ([record("none", s, a) for s, a in enumerate(NONE)] + [record("qgan", s, a) for s, a in enumerate(QGAN)]
            + [record("duplicates", s, a) for s, a in enumerate(DUP)])


def test_methods_are_paired_seed_by_seed_against_none_and_duplicates() -> None:
    rows = {(r["arm"], r["reference"], r["metric"]): r for r in comparisons(grid_records())}
    assert set(rows) == {(a, ref, m) for a, ref in [("qgan", "none"), ("duplicates", "none"), ("qgan", "duplicates")]
                         for m in ("accuracy", "macro_f1")}
    r = rows[("qgan", "none", "accuracy")]
    assert r["n"] == 5 and r["mean"] == pytest.approx(np.mean(np.subtract(QGAN, NONE)))
    assert r["p_t"] == pytest.approx(sps.ttest_rel(QGAN, NONE).pvalue)
    assert r["method_mean"] == pytest.approx(np.mean(QGAN)) and r["reference_mean"] == pytest.approx(np.mean(NONE))


def test_every_comparison_carries_effect_sizes_a_reader_can_weigh() -> None:
    rows = {(r["arm"], r["reference"], r["metric"]): r for r in comparisons(grid_records())}
    r = rows[("qgan", "none", "accuracy")]
    d = np.subtract(QGAN, NONE)
    assert r["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert r["p_better"] == pytest.approx(np.mean((np.sign(d) + 1) / 2)) and r["p_better_low"] <= r["p_better"] <= r["p_better_high"]
    # five seeds: the exact Wilcoxon test cannot go below p = 0.0625, so no Wilcoxon p is shown as if it could decide
    assert math.isnan(r["p_wilcoxon"])
    assert "p_holm" not in r and "verdict" not in r


def test_a_wilcoxon_p_is_shown_from_six_nonzero_differences() -> None:
    six = [record(arm, s, 0.5 + 0.01 * s + (0.02 + 0.001 * s * s) * (arm == "qgan")) for arm in ("none", "qgan") for s in range(6)]
    r = next(r for r in comparisons(six) if r["reference"] == "none" and r["metric"] == "accuracy")
    assert r["p_wilcoxon"] == pytest.approx(sps.wilcoxon([0.02 + 0.001 * s * s for s in range(6)]).pvalue) and r["p_wilcoxon"] < 0.05


def test_a_collapsed_model_or_baseline_drops_that_seed_from_the_pair() -> None:
    records = grid_records()
    for r in records:
        if (r["arm"], r["seed"]) == ("qgan", 1):
            r["collapsed"] = True
        if (r["arm"], r["seed"]) == ("none", 3):
            r["baseline_collapsed"] = r["collapsed"] = True
    row = next(r for r in comparisons(records) if (r["arm"], r["reference"], r["metric"]) == ("qgan", "none", "accuracy"))
    keep = [0, 2, 4]
    assert row["n"] == 3 and row["excluded_seeds"] == [1, 3]
    assert row["mean"] == pytest.approx(np.mean([QGAN[s] - NONE[s] for s in keep]))
    assert row["excluded"] == "seed 1: qgan collapsed; seed 3: baseline collapsed"
    summaries = {s["arm"]: s for s in arm_summaries(records)}
    assert summaries["qgan"]["collapsed"] == 2 and summaries["qgan"]["metrics"]["accuracy"]["n"] == 3
    assert summaries["qgan"]["left_out"] == {"1": "qgan collapsed", "3": "baseline collapsed"}
    assert summaries["none"]["collapsed"] == 1 and summaries["duplicates"]["metrics"]["accuracy"]["n"] == 4
    dup = next(r for r in comparisons(records) if (r["arm"], r["reference"], r["metric"]) == ("duplicates", "none", "accuracy"))
    assert dup["excluded_seeds"] == [3] and dup["n"] == 4  # duplicates' seed 1 is fine: only qgan collapsed there


def test_a_collapsed_baseline_leaves_its_seed_out_of_every_arm_equal_steps_included() -> None:
    """Equal-steps trains no HQCNN baseline, so its own record cannot say the seed's baseline collapsed; it was averaged
    over a seed every other arm dropped."""
    longer = [0.82, 0.80, 0.81, 0.97, 0.83]
    records = grid_records() + [record("equal-steps", s, a) | {"kind": "equal-steps", "baseline_collapsed": None}
                                for s, a in enumerate(longer)]
    for r in records:  # seed 3's baseline HQCNN collapsed: none is that model, augmenting arms were filtered by it
        if r["seed"] == 3 and r["arm"] == "none":
            r["collapsed"] = True
        elif r["seed"] == 3 and r["arm"] in ("qgan", "duplicates"):
            r["baseline_collapsed"] = True
    summaries = {s["arm"]: s for s in arm_summaries(records)}
    keep = [0, 1, 2, 4]
    for arm, values in (("equal-steps", longer), ("qgan", QGAN), ("duplicates", DUP), ("none", NONE)):
        assert summaries[arm]["metrics"]["accuracy"]["n"] == 4, arm
        assert summaries[arm]["metrics"]["accuracy"]["mean"] == pytest.approx(np.mean([values[s] for s in keep])), arm
    rows = [r for r in comparisons(records) if r["arm"] == "equal-steps" and r["metric"] == "accuracy"]
    assert {r["reference"] for r in rows} == {"none", "duplicates"}
    for r in rows:
        assert r["n"] == 4 and r["excluded_seeds"] == [3] and r["excluded"] == "seed 3: baseline collapsed"
    flags = {(row["arm"], row["seed"]) for row in tidy(records, []) if row["collapsed"]}
    assert flags == {(arm, 3) for arm in ("none", "qgan", "duplicates", "equal-steps")}


def test_sweep_points_are_compared_apart_even_with_mapping_values() -> None:
    a, b = {"ingest.train_per_class": {0: 5, 1: 5}}, {"ingest.train_per_class": {0: 5, 1: 1}}
    records = [record(arm, s, acc + (0.1 if p is b else 0), point=p) for p in (a, b) for arm, accs in (("none", NONE), ("qgan", QGAN))
               for s, acc in enumerate(accs)]
    rows = [r for r in comparisons(records) if r["metric"] == "accuracy"]
    assert [r["point"] for r in rows] == [a, b] and all(r["n"] == 5 for r in rows)
    assert len(arm_summaries(records)) == 4


def test_rare_recall_only_for_imbalanced_splits_and_averaged_over_tied_rare_classes() -> None:
    metrics = {"accuracy": 0.8, "macro": {"f1": 0.7, "precision": 0.75, "recall": 0.65},
               "per_class": {c: {"recall": r} for c, r in zip("abc", (0.9, 0.6, 0.4))}}
    balanced = cell_metrics(metrics, np.array([10, 10, 10]))
    assert "rare_recall" not in balanced and (balanced["macro_precision"], balanced["macro_recall"]) == (0.75, 0.65)
    assert cell_metrics(metrics, np.array([100, 100, 10]))["rare_recall"] == 0.4
    assert cell_metrics(metrics, np.array([100, 10, 10]))["rare_recall"] == pytest.approx(0.5)


def test_tidy_rows_carry_sweep_columns_and_the_collapse_flag() -> None:
    r = record("qgan", 0, 0.9, point={"filter.tau": 0.6}, baseline_collapsed=True)
    rows = tidy([r], ["filter.tau"])
    assert {row["metric"] for row in rows} == {"accuracy", "macro_f1", "steps", "train_images"}
    assert all(row["filter.tau"] == 0.6 and row["collapsed"] is True for row in rows)


def test_a_comparison_pairing_fewer_seeds_than_its_arm_says_so() -> None:
    from grid.report import fewer

    records = grid_records()
    for r in records:
        if (r["arm"], r["seed"]) == ("duplicates", 2):
            r["collapsed"] = True
    rows = {(r["arm"], r["reference"]): r for r in comparisons(records) if r["metric"] == "accuracy"}
    qgan = next(a for a in arm_summaries(records) if a["arm"] == "qgan")
    assert fewer(rows[("qgan", "none")], qgan) == ""  # all five seeds, as qgan's mean
    assert fewer(rows[("qgan", "duplicates")], qgan) == " <small>(4 of 5 seeds: seed 2: duplicates collapsed)</small>"


def test_a_baseline_collapse_only_none_shows_still_drops_the_seed_from_equal_steps() -> None:
    """No augmenting arm in the group to carry baseline_collapsed: the none cell (the baseline itself) says it."""
    records = [record("none", s, a, collapsed=(s == 3)) for s, a in enumerate(NONE)]
    records += [record("equal-steps", s, a) | {"kind": "equal-steps", "baseline_collapsed": None} for s, a in enumerate(DUP)]
    steps = next(a for a in arm_summaries(records) if a["arm"] == "equal-steps")
    assert steps["left_out"] == {"3": "baseline collapsed"} and steps["metrics"]["accuracy"]["n"] == 4


def _scored(n: int, fidelity: float | None, fd: float, kid: float, diversity: float) -> dict:
    return {"n": n, "label_fidelity": fidelity, "label_fidelity_note": None if fidelity is not None else "not measured",
            "frechet_distance": fd, "kid": kid, "inception_fid": None, "diversity": diversity, "real_diversity": 0.4,
            "duplicates": {"exact": 0.0, "near": 0.0}, "nearest_test": {"mean": 0.2, "min": 0.1}}


def test_a_cell_takes_the_accepted_sets_scores_and_the_judge_from_score_generated() -> None:
    from grid.results import generation_scores

    accepted = _scored(30, None, 0.05, 0.007, 0.35) | {"per_class": {"0": _scored(20, 0.9, 0.04, 0.006, 0.3),
                                                                     "2": _scored(10, None, 0.06, 0.008, 0.4)}}
    candidates = _scored(90, 0.8, 0.5, 0.07, 0.3) | {"per_class": {}}
    g = {"candidates": candidates, "accepted": accepted, "judge_test_accuracy": 0.91, "judge_recall_floor": 0.5,
         "judge_test_recall": {"0": 0.95, "2": 0.3}, "unjudged_classes": {"2": "judge cannot recognise class 2"}}
    scores, judge = generation_scores(g)
    assert scores == {"label_fidelity": None, "frechet_distance": 0.05, "kid": 0.007, "diversity": 0.35, "judge_accuracy": 0.91}
    assert judge == {"test_recall": {"0": 0.95, "2": 0.3}, "unjudged": ["2"], "floor": 0.5}
