"""A grid's folder from a store of finished runs written here (no stage runs): cell records, the CSV tables,
summary.json's counts and seconds, status, and how values are written."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import yaml

import grid.report
from grid.engine import Outcome
from grid.outputs import COMPARISON_COLUMNS, _csv, _finite, default_out, finish, load_plan, status
from grid.stats import paired
from grid.store import DONE, outputs, run_dir
from qaug.io import save_arrays
from tests.pipeline_helpers import PROJECT

SEEDS = (0, 1, 2, 3)
ACCURACY = {"none": [0.70, 0.72, 0.68, 0.75], "duplicates": [0.71, 0.70, 0.69, 0.74], "equal-steps": [0.72, 0.73, 0.70, 0.74],
            "gan1": [0.76, 0.75, 0.74, 0.80]}
TRAIN_COUNTS = (6, 6, 2)  # imbalanced: the rare class's recall is reported


def metrics(accuracy: float, **training) -> dict:
    return {"accuracy": accuracy, "macro": {"f1": accuracy - 0.1, "precision": accuracy, "recall": accuracy - 0.05},
            "per_class": {"0": {"recall": 0.9}, "1": {"recall": 0.8}, "2": {"recall": accuracy / 2}},
            "training": {"collapsed": False, "steps": 100, "images": 14} | training}


def scored_set(n: int, fidelity: float) -> dict:
    """One set of score_generated's metrics file, as tasks/score_generated.py writes it."""
    one = {"n": n, "label_fidelity": fidelity, "label_fidelity_note": None, "frechet_distance": fidelity / 10, "kid": fidelity / 100,
           "inception_fid": None, "diversity": fidelity / 2, "real_diversity": 0.4, "duplicates": {"exact": 0.0, "near": 0.0},
           "nearest_test": {"mean": 0.2, "min": 0.1}}
    return one | {"per_class": {"0": one}}


def make_folder(tmp_path, monkeypatch, classifier: str = "hqcnn", score: bool = False):
    """A grid whose every stage run is 'finished' in the store with numbers chosen here; the report is stubbed.
    Seed 3's judge-baseline collapsed (the HQCNN of train_baseline, or the ResNet evaluate trains beside the method);
    under a ResNet judge the HQCNN of seed 2 collapsed too, which must not matter."""
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"base": str(PROJECT / "params.yaml"), "methods": ["gan1"], "seeds": len(SEEDS),
                                    "controls": ["none", "duplicates", "equal-steps"], "score_generated": score,
                                    "params": {"evaluate.classifier": classifier}}))
    spec, cells, runs, per_cell = load_plan(path)
    out = default_out(path)
    store = out.resolve() / "store"
    resnet = classifier != "hqcnn"
    by_key = {}
    for cell in cells:
        for stage, key in per_cell[cell.id].items():
            by_key[key] = (stage, cell)
    for i, (key, (stage, cell)) in enumerate(by_key.items()):
        run = runs[key]
        paths = outputs(store, run)
        acc = ACCURACY[cell.arm.name][cell.seed]
        if stage == "ingest":
            save_arrays(paths.train, images=np.zeros((14, 1, 2, 2), np.float32), labels=np.repeat(np.arange(3), TRAIN_COUNTS),
                        classes=np.array([0, 1, 2]))
        elif stage in ("train_baseline", "equal_steps", "resnet_baseline"):
            paths.metrics.parent.mkdir(parents=True, exist_ok=True)
            collapsed = cell.seed == {"train_baseline": 2 if resnet else 3, "resnet_baseline": 3, "equal_steps": 1}.get(stage)
            value = acc if stage == "equal_steps" else ACCURACY["none"][cell.seed]
            paths.metrics.write_text(json.dumps(metrics(value, collapsed=collapsed)))
        elif stage == "evaluate":
            paths.metrics.parent.mkdir(parents=True, exist_ok=True)
            paths.metrics.write_text(json.dumps(metrics(acc, generated=6 + cell.seed, steps=140,
                                                        **({"baseline_collapsed": cell.seed == 3} if resnet else {}))))
        elif stage == "score_generated":
            paths.metrics.parent.mkdir(parents=True, exist_ok=True)
            paths.metrics.write_text(json.dumps({"candidates": scored_set(30, 0.5), "accepted": scored_set(10, 0.8 + cell.seed / 100),
                                                 "judge_test_accuracy": 0.9 + cell.seed / 100, "judge_recall_floor": 0.5,
                                                 "judge_test_recall": {"0": 0.95}, "unjudged_classes": {}}))
        elif stage == "filter":
            paths.metrics.parent.mkdir(parents=True, exist_ok=True)
            paths.metrics.write_text(json.dumps({"accepted": min(cell.seed, 3), "needed": {0: 0, 1: 1}.get(cell.seed, 4)}))
        run_dir(store, run.stage, key).mkdir(parents=True, exist_ok=True)
        (run_dir(store, run.stage, key) / DONE).write_text(json.dumps({"seconds": 1.04 + 0.33 * (i % 3)}))
    published = []
    monkeypatch.setattr(grid.report, "write_report", lambda spec, summary, records: "<html>report</html>")
    monkeypatch.setattr(grid.report, "publish", lambda spec, summary, out: published.append(summary))
    return path, spec, cells, runs, per_cell, out, store, published


@pytest.fixture
def folder(tmp_path, monkeypatch):
    return make_folder(tmp_path, monkeypatch)


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_finish_writes_the_pairs_the_stats_give(folder) -> None:
    path, spec, cells, runs, per_cell, out, store, published = folder
    outcome = Outcome(executed=list(runs)[:3], reused=list(runs)[3:], seconds=12.34)
    result = finish(spec, cells, runs, per_cell, out, outcome)
    stages = [runs[k].stage for k in runs]
    assert result == {"grid": "g", "cells": 16, "cells_finished": 16, "wall_seconds": 12.3, "failed": {}, "blocked": [],
                      "executed": {s: stages[:3].count(s) for s in stages[:3]}, "reused": {s: stages[3:].count(s) for s in stages[3:]}}
    rows = read_csv(out / "comparisons.csv")
    assert list(rows[0]) == list(COMPARISON_COLUMNS)
    row = next(r for r in rows if (r["arm"], r["reference"], r["metric"]) == ("gan1", "none", "accuracy"))
    keep = [0, 1, 2]  # seed 3's baseline collapsed: out of every pair with none
    expected = paired(np.array([ACCURACY["gan1"][s] for s in keep]), np.array([ACCURACY["none"][s] for s in keep]))
    assert int(row["n"]) == 3 and json.loads(row["excluded_seeds"]) == [3] and row["excluded"] == "seed 3: baseline collapsed"
    assert float(row["mean"]) == pytest.approx(expected.mean, rel=1e-5) and float(row["p_t"]) == pytest.approx(expected.p_t, rel=1e-5)
    assert float(row["seeds_for_power"]) == expected.seeds_for_power
    assert float(row["method_mean"]) == pytest.approx(np.mean([ACCURACY["gan1"][s] for s in keep]), rel=1e-5)
    assert float(row["reference_mean"]) == pytest.approx(np.mean([ACCURACY["none"][s] for s in keep]), rel=1e-5)
    # the default primary (gan1 vs none and vs duplicates on accuracy): judged at one look of 4 seeds, on 3 pairs
    assert row["role"] == "primary" and row["verdict"] in ("better", "worse", "equivalent", "inconclusive") and float(row["margin"]) == 0.02
    assert (float(row["t_low"]), float(row["t_high"])) == pytest.approx((expected.t_low, expected.t_high), rel=1e-5)
    assert (float(row["boot_low"]), float(row["boot_high"])) == pytest.approx((expected.boot_low, expected.boot_high), rel=1e-5)
    assert float(row["sd"]) == pytest.approx(expected.sd, rel=1e-5) and row["p_wilcoxon"] == ""  # 3 seeds: it cannot reject
    assert row["regime"] == "default" and row["point"] == "{}"
    rare = next(r for r in rows if (r["arm"], r["reference"], r["metric"]) == ("gan1", "none", "rare_recall"))
    assert float(rare["method_mean"]) == pytest.approx(np.mean([ACCURACY["gan1"][s] / 2 for s in keep]), rel=1e-5)
    assert {(r["arm"], r["reference"]) for r in rows} == {("duplicates", "none"), ("equal-steps", "none"), ("gan1", "none"),
                                                          ("equal-steps", "duplicates"), ("gan1", "duplicates")}
    assert (out / "report.html").read_text() == "<html>report</html>" and len(published) == 1


def test_cell_records_and_the_tidy_table(folder) -> None:
    path, spec, cells, runs, per_cell, out, store, _ = folder
    finish(spec, cells, runs, per_cell, out, Outcome())
    records = {json.loads(p.read_text())["cell"]: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}
    assert set(records) == {c.id for c in cells}
    gan = next(r for r in records.values() if (r["arm"], r["seed"]) == ("gan1", 1))
    assert gan["metrics"]["accuracy"] == ACCURACY["gan1"][1] and gan["metrics"]["rare_recall"] == ACCURACY["gan1"][1] / 2
    assert gan["metrics"]["macro_f1"] == pytest.approx(ACCURACY["gan1"][1] - 0.1) and gan["metrics"]["recall/0"] == 0.9
    assert (gan["steps"], gan["train_images"], gan["collapsed"], gan["baseline_collapsed"]) == (140, 14, False, False)
    assert gan["generation"] == {"generated": 7, "accepted_fraction": 1.0}  # 1 accepted of 1 needed
    fractions = {r["seed"]: r["generation"]["accepted_fraction"] for r in records.values() if r["arm"] == "gan1"}
    assert fractions == {0: 0.0, 1: 1.0, 2: 0.5, 3: 0.75}  # seed 0 needed none: 0 of 0
    assert gan["samples"] == str(outputs(store, runs[gan["runs"]["filter"]]).figure.relative_to(out.resolve()))
    assert (gan["kind"], gan["control"], gan["regime"], gan["point"]) == ("augment", False, "default", {})
    none3 = next(r for r in records.values() if (r["arm"], r["seed"]) == ("none", 3))
    assert none3["collapsed"] is True and none3["baseline_collapsed"] is True and none3["generation"] == {}
    assert "samples" not in none3 and none3["kind"] == "none"
    steps3 = next(r for r in records.values() if (r["arm"], r["seed"]) == ("equal-steps", 3))
    assert steps3["collapsed"] is False and steps3["metrics"]["accuracy"] == ACCURACY["equal-steps"][3] and steps3["kind"] == "equal-steps"
    rows = read_csv(out / "results.csv")
    assert list(rows[0]) == ["regime", "arm", "kind", "seed", "metric", "value", "collapsed"]
    value = next(r for r in rows if (r["arm"], r["seed"], r["metric"]) == ("gan1", "1", "accuracy"))
    assert float(value["value"]) == ACCURACY["gan1"][1] and value["collapsed"] == "False"
    assert {r["collapsed"] for r in rows if r["seed"] == "3"} == {"True"}  # a collapsed baseline: every arm, equal-steps too


def test_summary_counts_seconds_and_collapses(folder) -> None:
    path, spec, cells, runs, per_cell, out, store, _ = folder
    (out / "cells").mkdir(parents=True)
    (out / "cells" / "gone.json").write_text("{}")  # a cell that left the grid file
    finish(spec, cells, runs, per_cell, out, Outcome(failed={list(runs)[0]: "boom"}, blocked=[list(runs)[1]], seconds=2.0))
    assert not (out / "cells" / "gone.json").exists()
    summary = json.loads((out / "summary.json").read_text())
    stages = [r.stage for r in runs.values()]
    assert summary["stage_runs"] == {s: stages.count(s) for s in set(stages)}
    assert summary["stage_runs"]["train_baseline"] == len(SEEDS)  # once per seed, shared by every arm
    assert summary["failed"] == {runs[list(runs)[0]].label: "boom"} and summary["blocked"] == [runs[list(runs)[1]].label]
    assert (summary["cells"], summary["cells_finished"], summary["unfinished_cells"]) == (16, 16, [])
    assert summary["seeds"] == list(SEEDS) and summary["arms"][0]["arm"] == "none" and summary["classifiers"] == ["hqcnn"]
    assert summary["arm_names"] == [a.name for a in spec.arms]
    assert summary["sweep"] == {} and summary["regimes"] == ["default"] and summary["grid"] == "g"
    assert summary["description"] == "" and summary["file"] == str(path) and {"python", "torch"} <= set(summary["environment"])
    collapsed = summary["collapsed"]
    assert {(c["arm"], c["seed"], c["why"]) for c in collapsed if c["seed"] == 3} == {
        (a.name, 3, "baseline collapsed") for a in spec.arms}  # every arm of the seed, equal-steps included
    assert {"cell": "equal-steps · default · seed 1", "regime": "default", "point": {}, "arm": "equal-steps", "seed": 1,
            "why": "equal-steps collapsed"} in collapsed
    assert all(c["cell"].endswith(("seed 3", "seed 1")) and c["regime"] == "default" and c["point"] == {} for c in collapsed)
    seconds = {k: json.loads((run_dir(store, r.stage, k) / DONE).read_text())["seconds"] for k, r in runs.items()}
    per_stage = {}
    for k, r in runs.items():
        per_stage[r.stage] = per_stage.get(r.stage, 0) + seconds[k]
    assert summary["stage_seconds"] == {s: round(v, 1) for s, v in per_stage.items()}
    assert list(summary["stage_seconds"].values()) == sorted(summary["stage_seconds"].values(), reverse=True)
    own = {}
    for c in cells:
        own.setdefault(c.arm.name, set()).update(k for s, k in per_cell[c.id].items()
                                                 if s not in ("ingest", "train_baseline", "analyze_errors", "resnet_baseline"))
    assert summary["arm_seconds"] == {arm: round(sum(seconds[k] for k in keys), 1) for arm, keys in own.items()}
    assert summary["arm_seconds"]["none"] == 0
    assert summary["comparisons"][0]["t_low"] is None or math.isfinite(summary["comparisons"][0]["t_low"])


def test_unfinished_cells_are_left_out_and_named(folder) -> None:
    path, spec, cells, runs, per_cell, out, store, _ = folder
    gan0 = next(c for c in cells if (c.arm.name, c.seed) == ("gan1", 0))
    evaluate = runs[per_cell[gan0.id]["evaluate"]]
    (run_dir(store, evaluate.stage, evaluate.key) / DONE).unlink()
    result = finish(spec, cells, runs, per_cell, out, Outcome())
    assert result["cells_finished"] == 15
    summary = json.loads((out / "summary.json").read_text())
    assert summary["unfinished_cells"] == [gan0.label]
    done = [json.loads((run_dir(store, r.stage, k) / DONE).read_text())["seconds"] for k, r in runs.items()
            if r.stage == "evaluate" and k != evaluate.key]
    assert summary["stage_seconds"]["evaluate"] == round(sum(done), 1)  # an unfinished run counts no time
    row = next(r for r in read_csv(out / "comparisons.csv") if (r["arm"], r["reference"], r["metric"]) == ("gan1", "duplicates", "accuracy"))
    assert int(row["n"]) == 2  # seeds 1 and 2 (3's baseline collapsed, 0 did not finish)


def test_status_counts_finished_runs_and_cells(folder) -> None:
    path, spec, cells, runs, per_cell, out, store, _ = folder
    s = status(path, out)
    assert (s["grid"], s["cells"], s["cells_done"], s["stage_runs"], s["stage_runs_done"]) == ("g", 16, 16, len(runs), len(runs))
    gan0 = next(c for c in cells if (c.arm.name, c.seed) == ("gan1", 0))
    ingest = runs[per_cell[gan0.id]["ingest"]]
    (run_dir(store, "ingest", ingest.key) / DONE).unlink()
    s = status(path, out)
    assert s["cells_done"] == 12 and s["stage_runs_done"] == len(runs) - 1  # every arm of seed 0 needs that ingest
    assert s["per_stage"]["ingest"] == {"runs": len(SEEDS), "done": len(SEEDS) - 1}
    assert s["per_stage"]["train_baseline"] == {"runs": len(SEEDS), "done": len(SEEDS)}


def test_under_a_resnet_judge_its_own_baselines_collapse_counts_not_the_hqcnns(tmp_path, monkeypatch) -> None:
    path, spec, cells, runs, per_cell, out, store, _ = make_folder(tmp_path, monkeypatch, "resnet18")
    finish(spec, cells, runs, per_cell, out, Outcome())
    records = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    flags = {(r["arm"], r["seed"]): (r["collapsed"], r["baseline_collapsed"]) for r in records}
    assert flags[("gan1", 3)] == (False, True) and flags[("gan1", 2)] == (False, False)  # the HQCNN of seed 2 is not the judge
    assert flags[("none", 3)] == (True, None) and flags[("none", 2)] == (False, None)  # none is the ResNet baseline itself
    row = next(r for r in read_csv(out / "comparisons.csv") if (r["arm"], r["reference"], r["metric"]) == ("gan1", "none", "accuracy"))
    assert int(row["n"]) == 3 and json.loads(row["excluded_seeds"]) == [3] and row["excluded"] == "seed 3: baseline collapsed"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["classifiers"] == ["resnet18"] and summary["arm_seconds"]["none"] == 0  # the ResNet baseline is shared


def test_values_as_written() -> None:
    assert _csv(0.123456789) == "0.123457" and _csv(1e-9) == "1e-09" and _csv(None) == "" and _csv(3) == 3 and _csv("x") == "x"
    assert _csv([1, 2]) == "[1, 2]" and _csv({"a": 1}) == '{"a": 1}'
    assert _finite({"a": [1.0, math.nan, (math.inf, 2)], "b": -math.inf, "c": "x"}) == {"a": [1.0, None, [None, 2]], "b": None, "c": "x"}
    assert default_out(PROJECT / "grids" / "quick.yaml") == PROJECT / "grids" / "quick"


def test_a_cell_records_its_accepted_sets_scores_and_judge(tmp_path, monkeypatch) -> None:
    path, spec, cells, runs, per_cell, out, store, _ = make_folder(tmp_path, monkeypatch, score=True)
    finish(spec, cells, runs, per_cell, out, Outcome(seconds=1.0))
    cell = next(json.loads(p.read_text()) for p in (out / "cells").glob("*.json") if json.loads(p.read_text())["arm"] == "gan1"
                and json.loads(p.read_text())["seed"] == 2)
    assert cell["generation"]["label_fidelity"] == pytest.approx(0.82) and cell["generation"]["judge_accuracy"] == pytest.approx(0.92)
    assert cell["generation"]["frechet_distance"] == pytest.approx(0.082) and cell["generation"]["diversity"] == pytest.approx(0.41)
    assert cell["judge"] == {"test_recall": {"0": 0.95}, "unjudged": [], "floor": 0.5}
    rows = [r for r in read_csv(out / "results.csv") if (r["arm"], r["seed"]) == ("gan1", "2")]
    assert {r["metric"]: float(r["value"]) for r in rows if r["metric"] in ("label_fidelity", "kid")} == pytest.approx(
        {"label_fidelity": 0.82, "kid": 0.0082})


def test_the_terminal_summary_fits_100_columns_and_leads_with_the_decisions(folder, monkeypatch, capsys) -> None:
    from grid.command import print_summary, show

    path, spec, cells, runs, per_cell, out, store, _ = folder
    finish(spec, cells, runs, per_cell, out, Outcome())
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: the tables still keep to 100
    print_summary(show(out))
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 100
    decisions = next(i for i, line in enumerate(lines) if "decisions" in line)
    assert any("gan1 vs none" in line and "seeds" not in line for line in lines[decisions:decisions + 6])
    assert not any(line.startswith("• Exploratory") for line in lines)  # exploratory arms are the tables, not sentences
