"""A grid's design (primaries, margins, wave plan) parsed and validated, the waves replayed from finished cells,
the decision rows, and the pooled estimate across regimes (numbers only: no stage runs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from grid.decide import judge
from grid.decisions import decision_rows, seeds_judged, verdict_text
from grid.pooled import pooled
from grid.primaries import DEFAULT_MARGINS, design
from grid.results import comparisons
from grid.spec import GridError, load_grid
from grid.stats import MAX_SEEDS
from grid.waves import cells_for_look, replay
from tests.pipeline_helpers import PROJECT

IMBALANCED = {"ingest.train_per_class": {0: 30, 1: 30, 2: 6}}


def grid_file(tmp_path, **doc) -> object:
    path = tmp_path / "g.yaml"
    base = {"base": str(PROJECT / "params.yaml"), "methods": ["gan1", "gan2"], "controls": ["none", "duplicates", "equal-steps"],
            "regimes": {"flat": {}, "rare": IMBALANCED}, "seeds": {"waves": [3, 6, 12]}}
    path.write_text(yaml.safe_dump({**base, **doc}))
    return path


def test_default_primaries_are_every_method_against_none_and_duplicates_on_each_regimes_headline(tmp_path) -> None:
    spec = load_grid(grid_file(tmp_path))
    d = design(spec)
    assert spec.plan == (3, 6, 12) and spec.seeds == tuple(range(12)) and d.looks == 3
    got = {(p.arm, p.reference, p.metric, p.regime) for p in d.primaries}
    assert got == {(m, r, {"flat": "accuracy", "rare": "rare_recall"}[g], g) for m in ("gan1", "gan2") for r in ("none", "duplicates")
                   for g in ("flat", "rare")}
    assert {p.margin for p in d.primaries if p.metric == "accuracy"} == {DEFAULT_MARGINS["accuracy"] / 100}


def test_named_primaries_and_margins(tmp_path) -> None:
    spec = load_grid(grid_file(tmp_path, primary=[{"method": "gan1", "reference": "none", "metric": "macro_f1", "regime": "rare"},
                                                  {"method": "gan2", "reference": "equal-steps"}],
                               margins={"macro_f1": 1.5}))
    d = design(spec)
    assert [(p.arm, p.reference, p.metric, p.regime, p.margin) for p in d.primaries] == [
        ("gan1", "none", "macro_f1", "rare", 0.015), ("gan2", "equal-steps", "accuracy", "flat", 0.02),
        ("gan2", "equal-steps", "rare_recall", "rare", 0.05)]


def test_a_sweep_point_is_a_primary_of_its_own(tmp_path) -> None:
    spec = load_grid(grid_file(tmp_path, sweep={"merge.mixing_ratio": [0.2, 0.5]}, regimes={"rare": IMBALANCED},
                               primary=[{"method": "gan1", "reference": "none"}, {"method": "gan2", "reference": "none",
                                                                                   "point": {"merge.mixing_ratio": 0.5}}]))
    assert [(p.arm, dict(p.point)) for p in design(spec).primaries] == [
        ("gan1", {"merge.mixing_ratio": 0.2}), ("gan1", {"merge.mixing_ratio": 0.5}), ("gan2", {"merge.mixing_ratio": 0.5})]


@pytest.mark.parametrize("doc, message", [
    ({"primary": [{"method": "qgna", "reference": "none"}]}, r"primary\[0\].method: 'qgna' is not an arm of this grid \(arms: none"),
    ({"primary": [{"method": "gan1", "reference": "conventional"}]}, r"primary\[0\].reference: 'conventional' is not an arm"),
    ({"primary": [{"method": "gan1", "reference": "none", "metric": "f1"}]}, r"primary\[0\].metric: 'f1' is not a metric"),
    ({"primary": [{"method": "gan1", "reference": "none", "regime": "tiny"}]}, r"primary\[0\].regime: 'tiny' is not a regime"),
    ({"primary": [{"method": "gan1", "reference": "none", "regime": ["flat"]}]}, r"primary\[0\].regime: \['flat'\] is not a regime"),
    ({"primary": [{"method": "gan1", "reference": "none", "metric": "rare_recall", "regime": "flat"}]}, r"rare_recall in regime 'flat'"),
    ({"primary": [{"method": "none", "reference": "duplicates"}]}, r"none is the reference"),
    ({"primary": [{"method": "gan1", "reference": "none", "point": {"x": 1}}]}, r"point must give a value for each sweep key"),
    ({"primary": [{"method": "gan1", "reference": "none", "why": 1}]}, r"unknown key\(s\) why"),
    ({"primary": []}, r"primary must be a non-empty list"),
    ({"margins": {"accuracy": 0}}, r"margins.accuracy must be a number of percentage points"),
    ({"margins": {"fid": 2}}, r"margins.fid: not a metric"),
    ({"seeds": {"waves": [5, 5]}}, r"seeds as a wave plan"),
    ({"seeds": {"waves": [1, 5]}}, r"seeds as a wave plan"),
    ({"seeds": {"wave": [5]}}, r"seeds as a wave plan"),
    ({"seeds": {"waves": [3, 100_000]}}, r"increasing seed counts from 2 to 1000"),
])
def test_a_bad_design_is_named_with_its_key(tmp_path, doc, message) -> None:
    with pytest.raises(GridError, match=message):
        design(load_grid(grid_file(tmp_path, **doc)))


def record(cell, value: float, collapsed: bool = False) -> dict:
    return {"cell": cell.id, "label": cell.label, "regime": cell.regime, "point": dict(cell.point), "arm": cell.arm.name,
            "kind": cell.arm.kind, "control": cell.arm.control, "seed": cell.seed, "collapsed": collapsed, "baseline_collapsed": False,
            "metrics": {"accuracy": value, "macro_f1": value, "rare_recall": value}, "steps": 1, "train_images": 1, "generation": {}}


# per arm: seed → metric. gan1 gains 10 points on every seed (± 0.2): decided better at the first look. gan2 moves by
# noise only (± 0.5 points): equivalent within ±2 once enough seeds show it. duplicates and equal-steps: noise.
def value(arm: str, seed: int) -> float:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, 4)
    return 0.6 + 0.02 * noise[0] + {"none": 0.0, "duplicates": 0.005 * noise[1], "equal-steps": 0.003 * noise[2],
                                    "gan1": 0.10 + 0.002 * noise[3], "gan2": 0.005 * noise[1]}[arm]


def test_waves_run_later_seeds_only_where_a_primary_is_open(tmp_path) -> None:
    spec = load_grid(grid_file(tmp_path, regimes={"flat": {}}))
    d, cells = design(spec), spec.cells()
    first = cells_for_look(spec, d, cells, [None] * len(d.primaries), 1)
    assert {(c.arm.name, c.seed) for c in first} == {(a, s) for a in ("none", "duplicates", "gan1", "gan2") for s in (0, 1, 2)}
    state = replay(spec, d, cells, [])
    assert state.judged == 0 and state.missing == first and state.to_run == first  # the first wave of the judged arms first
    assert {(c.arm.name, c.seed) for c in state.exploratory} == {("equal-steps", s) for s in (0, 1, 2)}  # then the others
    records = [record(c, value(c.arm.name, c.seed)) for c in first]
    state = replay(spec, d, cells, records)
    verdicts = {(p.arm, p.reference): v for p, v in zip(d.primaries, state.verdicts)}
    assert state.judged == 1 and verdicts[("gan1", "none")].verdict == "better" and verdicts[("gan1", "duplicates")].verdict == "better"
    assert verdicts[("gan2", "none")].verdict == "open"
    later = {(c.arm.name, c.seed) for c in state.missing}
    assert later == {(a, s) for a in ("none", "duplicates", "gan2") for s in (3, 4, 5)}  # gan1 and equal-steps stop
    # the whole plan, each look from the cells the one before asked for
    while state.missing:
        records += [record(c, value(c.arm.name, c.seed)) for c in state.missing]
        state = replay(spec, d, cells, records)
    assert not state.finished and state.to_run == state.exploratory != []  # every look judged: the exploratory arms now
    records += [record(c, value(c.arm.name, c.seed)) for c in state.to_run]
    assert replay(spec, d, cells, records).finished
    verdicts = {(p.arm, p.reference): v for p, v in zip(d.primaries, state.verdicts)}
    assert verdicts[("gan2", "none")].verdict == "equivalent" and verdicts[("gan2", "none")].n in (6, 12)
    assert verdicts[("gan1", "none")].n == 3  # decided at the first look: its later seeds never ran
    assert not any(r["arm"] == "gan1" and r["seed"] >= 3 for r in records)


def test_replay_judges_each_look_on_its_own_seeds_whatever_else_the_store_holds(tmp_path) -> None:
    """Cells beyond a look (an earlier fixed-seed run, another grid sharing the store) never enter its verdict."""
    spec = load_grid(grid_file(tmp_path, regimes={"flat": {}}, primary=[{"method": "gan2", "reference": "none"}],
                               margins={"accuracy": 0.3}))  # ±0.3 points: not shown equivalent at 3 seeds
    d, cells = design(spec), spec.cells()
    every = [record(c, value(c.arm.name, c.seed) + (0.3 if c.seed >= 3 and c.arm.name == "gan2" else 0)) for c in cells if c.seed < 6]
    state = replay(spec, d, cells, every)  # looks 1 and 2 complete, look 3 waiting
    three = [value("gan2", s) - value("none", s) for s in range(3)]
    look1 = judge([three], [0.003], (3, 6, 12), 1)
    assert look1[0].verdict == "open"  # so look 2 judges it, on seeds 0–5: the +30 points of seeds 3–5 count there
    six = [value("gan2", s) + (0.3 if s >= 3 else 0) - value("none", s) for s in range(6)]
    assert state.verdicts[0] == judge([six], [0.003], (3, 6, 12), 2, look1)[0]
    assert state.judged == 2 and state.verdicts[0].look == 2 and state.verdicts[0].n == 6


def test_a_primary_against_any_arm_carries_its_effect_sizes(tmp_path) -> None:
    """P(better) and d_z come from the seeds the verdict used, also when the reference is not none or duplicates."""
    spec = load_grid(grid_file(tmp_path, regimes={"flat": {}}, primary=[{"method": "gan1", "reference": "equal-steps"}]))
    d, cells = design(spec), spec.cells()
    records = [record(c, value(c.arm.name, c.seed)) for c in cells_for_look(spec, d, cells, [None], 1)]
    state = replay(spec, d, cells, records)
    row = decision_rows(d, state, comparisons(records, seeds_judged(spec, d, state)))[0]
    diffs = [value("gan1", s) - value("equal-steps", s) for s in range(3)]
    assert row["p_better"] == 1.0 and row["d_z"] == pytest.approx(np.mean(diffs) / np.std(diffs, ddof=1))


def test_a_collapsed_seed_leaves_the_pair_and_the_look_still_judges(tmp_path) -> None:
    spec = load_grid(grid_file(tmp_path, regimes={"flat": {}}, primary=[{"method": "gan1", "reference": "none"}]))
    d, cells = design(spec), spec.cells()
    first = cells_for_look(spec, d, cells, [None], 1)
    records = [record(c, value(c.arm.name, c.seed), collapsed=(c.arm.name, c.seed) == ("gan1", 0)) for c in first]
    state = replay(spec, d, cells, records)
    assert state.judged == 1 and state.verdicts[0].n == 2


def test_decision_rows_carry_the_deciding_interval_and_mark_the_comparisons(tmp_path) -> None:
    spec = load_grid(grid_file(tmp_path, regimes={"flat": {}}))
    d, cells = design(spec), spec.cells()
    records = []
    state = replay(spec, d, cells, records)
    while not state.finished:
        records += [record(c, value(c.arm.name, c.seed)) for c in state.to_run]
        state = replay(spec, d, cells, records)
    compared = comparisons(records, seeds_judged(spec, d, state))
    rows = decision_rows(d, state, compared)
    gan1 = next(r for r in rows if (r["arm"], r["reference"]) == ("gan1", "none"))
    v = state.verdicts[[(p.arm, p.reference) for p in d.primaries].index(("gan1", "none"))]
    assert (gan1["verdict"], gan1["n"], gan1["low"], gan1["high"], gan1["level"]) == (v.verdict, v.n, v.low, v.high, v.level)
    row = next(r for r in compared if (r["arm"], r["reference"], r["metric"]) == ("gan1", "none", "accuracy"))
    assert row["role"] == "primary" and row["n"] == v.n == 3 and row["verdict"] == "better" and gan1["p_better"] == row["p_better"] == 1.0
    explore = [r for r in compared if r["role"] == "exploratory"]
    assert explore and all(r["verdict"] == "" and r["margin"] is None for r in explore)
    assert verdict_text(gan1).startswith("better by +")


@pytest.mark.parametrize("row, text", [
    ({"verdict": "equivalent", "mean": 0.004, "low": -0.01, "high": 0.012, "margin": 0.02, "n": 12, "within_margin": False},
     "equivalent within ±2.0: +0.4 [−1.0, +1.2]"),
    ({"verdict": "inconclusive", "mean": 0.03, "low": -0.01, "high": 0.07, "margin": 0.02, "n": 40, "within_margin": False,
      "seeds_difference": 61, "seeds_equivalence": None}, "inconclusive at 40 seeds: +3.0 [−1.0, +7.0]; a fixed design would need 61 for better/worse"),
    ({"verdict": "inconclusive", "mean": 0.001, "low": -0.06, "high": 0.07, "margin": 0.02, "n": 26, "within_margin": False,
      "seeds_difference": MAX_SEEDS, "seeds_equivalence": 273},
     f"inconclusive at 26 seeds: +0.1 [−6.0, +7.0]; a fixed design would need more than {MAX_SEEDS} for better/worse, 273 for equivalence"),
    ({"verdict": "better", "mean": 0.01, "low": 0.002, "high": 0.018, "margin": 0.02, "n": 20, "within_margin": True},
     "better by +1.0 [+0.2, +1.8]; equivalent within ±2.0 too (real, and smaller than the margin)"),
])
def test_verdicts_read_as_words(row, text) -> None:
    assert verdict_text(row).replace("-", "−") == text


@pytest.mark.parametrize("ys, sds", [
    ([0.05, 0.01, 0.03, -0.01], [0.04, 0.05, 0.02, 0.06]),  # Q > k − 1: τ² > 0
    ([0.017, 0.009, 0.018, 0.003], [0.03, 0.02, 0.04, 0.04]),  # Q < k − 1 (the regimes grid's duplicates vs none): τ² = 0
])
def test_pooled_estimate_is_dersimonian_laird_with_the_hartung_knapp_interval(ys, sds) -> None:
    """By hand: w = 1/v, Q, τ² = max(0, (Q − (k − 1)) / (Σw − Σw²/Σw)), w* = 1/(v + τ²), μ = Σw*y/Σw*,
    HKSJ variance Σw*(y − μ)² / ((k − 1) Σw*), interval μ ± t(k − 1, 0.975) · √that."""
    from scipy import stats

    ns = [10, 12, 8, 10]
    rows = [{"regime": f"r{i}", "point": {}, "arm": "qgan", "reference": "none", "metric": "accuracy", "n": n, "mean": y, "sd": s}
            for i, (y, s, n) in enumerate(zip(ys, sds, ns))]
    rows.append({**rows[0], "regime": "flat", "sd": 0.0})  # no spread: no variance to weigh it by, left out
    got = pooled(rows)
    y, v = np.array(ys), np.array(sds) ** 2 / np.array(ns)
    w = 1 / v
    q = np.sum(w * (y - np.sum(w * y) / w.sum()) ** 2)
    tau2 = max(0.0, (q - 3) / (w.sum() - np.sum(w ** 2) / w.sum()))
    ws = 1 / (v + tau2)
    mu = np.sum(ws * y) / ws.sum()
    half = stats.t.ppf(0.975, 3) * math.sqrt(np.sum(ws * (y - mu) ** 2) / (3 * ws.sum()))
    assert len(got) == 1 and got[0]["regimes"] == ["r0", "r1", "r2", "r3"] and got[0]["seeds"] == 40
    assert got[0]["mean"] == pytest.approx(mu) and got[0]["tau"] == pytest.approx(math.sqrt(tau2))
    assert (got[0]["low"], got[0]["high"]) == pytest.approx((mu - half, mu + half))
    assert (q > 3) == (tau2 > 0)  # each case is the one it says
    assert {k: got[0][k] for k in ("point", "arm", "reference", "metric")} == {"point": {}, "arm": "qgan", "reference": "none",
                                                                                  "metric": "accuracy"}
    assert got[0]["i2"] == pytest.approx(max(0.0, (q - 3) / q))  # the share of the spread between regimes
    assert pooled(rows[:1]) == []  # one regime: nothing to pool
    unweighable = [{**rows[1], "regime": "one seed", "n": 1}, {**rows[2], "regime": "no sd", "sd": None}]
    assert pooled(rows + unweighable)[0]["regimes"] == ["r0", "r1", "r2", "r3"]
    two = pooled([{**r, "n": 2} for r in rows[:2]])  # the fewest that pool: 2 regimes of 2 seeds
    assert len(two) == 1 and two[0]["regimes"] == ["r0", "r1"] and two[0]["seeds"] == 4


def test_a_cell_whose_generated_set_failed_its_checks_has_run_without_a_result(tmp_path) -> None:
    """The old regimes run lost 18 cells to failed data checks (digits10's duplicates among them): a look waiting for them
    would never be judged. They count as run; their seeds are missing from that arm's pairs."""
    spec = load_grid(grid_file(tmp_path, regimes={"flat": {}}, primary=[{"method": "gan1", "reference": "duplicates"}]))
    d, cells = design(spec), spec.cells()
    first = cells_for_look(spec, d, cells, [None], 1)
    lost = next(c for c in first if (c.arm.name, c.seed) == ("duplicates", 1))
    records = [record(c, value(c.arm.name, c.seed)) for c in first if c is not lost]
    assert replay(spec, d, cells, records).judged == 0  # without the mark: still waiting for it
    state = replay(spec, d, cells, records, {lost.id})
    assert state.judged == 1 and state.verdicts[0].n == 2


def test_a_failed_data_check_leaves_a_mark_and_other_failures_do_not(tmp_path, monkeypatch) -> None:
    from grid.plan import plan
    from grid.store import execute, failures, is_done
    from qaug.checks import DataCheckError

    spec = load_grid(grid_file(tmp_path, regimes={"flat": {}}, seeds=[0, 1]))
    runs, _ = plan(spec.cells(), False)
    ingest, other = [r for r in runs.values() if r.stage == "ingest"]
    store = tmp_path / "store"

    def checks_fail(raw, root):
        raise DataCheckError("data checks failed for 'accepted': 1 of 12 expectations", [])

    monkeypatch.setattr("tasks.stages.Stage.run", lambda self, raw, root: checks_fail(raw, root))
    with pytest.raises(DataCheckError):
        execute(store, ingest, runs)
    assert failures(store, runs) == {ingest.key: "DataCheckError: data checks failed for 'accepted': 1 of 12 expectations"}
    assert not is_done(store, ingest) and not list(store.glob("ingest/.*.tmp"))
    monkeypatch.setattr("tasks.stages.Stage.run", lambda self, raw, root: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        execute(store, other, runs)
    assert set(failures(store, runs)) == {ingest.key}  # a bug or a kill is retried by the next qaug grid, never recorded
