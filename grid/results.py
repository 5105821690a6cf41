"""Finished cells → their records, one tidy table (a row per cell × metric) and the paired comparisons.

A cell's record holds its test metrics (accuracy, macro-F1, macro precision and recall,
per-class recall and, when the regime's training split is imbalanced, the rarest class's
recall), whether its classifier or the baseline it is compared with collapsed, and for
augmenting arms the generated set's scores. Comparisons pair
a method with ``none`` and ``duplicates`` seed by seed inside each (regime, sweep
point); a seed whose baseline collapsed is left out of every arm, one whose model
collapsed out of that arm and its pairs, reported apart, never averaged in.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from grid import stats
from grid.decide import d_z, p_better, wilcoxon_min_p
from grid.format import canonical
from grid.plan import StageRun, judged_by_resnet, result_stage
from grid.spec import REFERENCES, Cell
from grid.store import outputs
from qaug.io import load_arrays, read_json
from tasks.report import generation_rows

def cell_record(cell: Cell, keys: dict[str, str], runs: dict[str, StageRun], store: Path) -> dict:
    """The finished cell's numbers, read from the store."""
    run = runs[keys[result_stage(cell)]]
    paths = outputs(store, run)
    metrics = read_json(paths.metrics)
    if judged_by_resnet(cell):  # evaluate trained the baseline ResNet beside this cell's (none: the cell itself)
        baseline_collapsed = metrics["training"].get("baseline_collapsed") if cell.arm.kind == "augment" else None
    elif "train_baseline" in keys:  # the HQCNN every method of the seed shares: its collapse spoils the pair
        baseline_collapsed = bool(read_json(outputs(store, runs[keys["train_baseline"]]).metrics)["training"]["collapsed"])
    else:
        baseline_collapsed = None
    train_labels = load_arrays(outputs(store, runs[keys["ingest"]]).train)["labels"]
    record: dict[str, Any] = {
        "cell": cell.id, "label": cell.label, "regime": cell.regime, "point": dict(cell.point), "arm": cell.arm.name,
        "kind": cell.arm.kind, "control": cell.arm.control, "seed": cell.seed,
        "metrics": cell_metrics(metrics, np.bincount(train_labels)),
        "collapsed": bool(metrics["training"]["collapsed"]),
        "baseline_collapsed": baseline_collapsed,
        "steps": metrics["training"]["steps"], "train_images": int(metrics["training"]["images"]),
        "generation": {}, "runs": keys,
    }
    if cell.arm.kind == "augment":
        filt = read_json(outputs(store, runs[keys["filter"]]).metrics)
        record["generation"] = {"generated": metrics["training"]["generated"], "accepted_fraction": filt["accepted"] / max(filt["needed"], 1)}
        if "score_generated" in keys:
            scores, record["judge"] = generation_scores(read_json(outputs(store, runs[keys["score_generated"]]).metrics))
            record["generation"] |= scores
        record["samples"] = str(outputs(store, runs[keys["filter"]]).figure)
    return record


def generation_scores(g: dict) -> tuple[dict[str, float | None], dict]:
    """From score_generated's metrics: the accepted set's scores and the judge's test accuracy (numbers the tables
    average over seeds; label fidelity null where the judge could not measure it), and what the report's note on
    the judge needs (its recall per class, the classes it measured no label fidelity for, the recall floor)."""
    scored = {r["set"]: r for r in generation_rows(g) if r["class"] == "all"}
    scores = {k: scored["accepted"][k] for k in ("label_fidelity", "frechet_distance", "kid", "diversity")}
    judge = {"test_recall": g.get("judge_test_recall", {}), "unjudged": list(g.get("unjudged_classes", {})), "floor": g.get("judge_recall_floor")}
    return scores | {"judge_accuracy": g["judge_test_accuracy"]}, judge


def cell_metrics(metrics: dict, train_counts: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 (and macro precision and recall: HybridQ's Table 2), recall per class and, for an
    imbalanced training split, the rare classes' recall (the mean over the classes with the fewest training images)."""
    names = list(metrics["per_class"])
    out = {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro"]["f1"],
           "macro_precision": metrics["macro"]["precision"], "macro_recall": metrics["macro"]["recall"]}
    out |= {f"recall/{n}": metrics["per_class"][n]["recall"] for n in names}
    if len(set(train_counts.tolist())) > 1:
        rare = np.flatnonzero(train_counts == train_counts.min())
        out["rare_recall"] = float(np.mean([metrics["per_class"][names[k]]["recall"] for k in rare]))
    return out


def tidy(records: list[dict], sweep_keys: list[str]) -> list[dict]:
    """One row per cell × metric (generated-set scores included), for CSV; ``collapsed``: the cell is left out of
    the statistics (its model or its seed's baseline collapsed)."""
    dropped = {(r["regime"], canonical(r["point"]), r["arm"], r["seed"]) for r in left_out_cells(records)}
    rows = []
    for r in records:
        base = {"regime": r["regime"], **{k: r["point"].get(k) for k in sweep_keys}, "arm": r["arm"], "kind": r["kind"],
                "seed": r["seed"], "collapsed": (r["regime"], canonical(r["point"]), r["arm"], r["seed"]) in dropped}
        values = {**r["metrics"], "steps": r["steps"], "train_images": r["train_images"], **r["generation"]}
        rows += [base | {"metric": m, "value": v} for m, v in values.items() if v is not None]
    return rows


def left_out_cells(records: list[dict]) -> list[dict]:
    """Every cell :func:`left_out` drops from the statistics, with the reason, in the records' order."""
    why = {}
    for (regime, point), arms in by_group(records).items():
        for arm, seeds in left_out(arms).items():
            why |= {(regime, point, arm, s): reason for s, reason in seeds.items()}
    return [{"cell": r["label"], "regime": r["regime"], "point": r["point"], "arm": r["arm"], "seed": r["seed"], "why": reason}
            for r in records if (reason := why.get((r["regime"], canonical(r["point"]), r["arm"], r["seed"])))]


def left_out(arms: dict[str, dict[int, dict]]) -> dict[str, dict[int, str]]:
    """Per arm of one (regime, sweep point): the seeds left out of its mean and of every comparison it is in, and why.

    A seed whose baseline collapsed is left out of every arm (equal-steps included, whose own record cannot
    see the baseline): otherwise one comparison's arms would be averaged over different seeds. A seed whose
    own model collapsed is left out of that arm and of every pair it is compared in."""
    baseline = {s for cells in arms.values() for s, r in cells.items() if r["baseline_collapsed"]}
    baseline |= {s for s, r in arms.get("none", {}).items() if r["collapsed"]}  # none is the baseline itself
    return {arm: {s: "baseline collapsed" if s in baseline else f"{arm} collapsed"
                  for s, r in sorted(cells.items()) if s in baseline or r["collapsed"]}
            for arm, cells in arms.items()}


def by_group(records: list[dict]) -> dict[tuple, dict[str, dict[int, dict]]]:
    """(regime, canonical point) → arm → seed → record."""
    groups: dict[tuple, dict[str, dict[int, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in records:
        groups[(r["regime"], canonical(r["point"]))][r["arm"]][r["seed"]] = r
    return groups


def comparisons(records: list[dict], seeds_for: dict[tuple, list[int]] | None = None) -> list[dict]:
    """Every method (and control) against ``none`` and ``duplicates``, per regime and sweep point and metric: estimates
    with unadjusted intervals (whether a primary comparison is decided is grid.waves' business, not a p here).

    Both arms of a comparison use the same seeds: those both finished, less the seeds :func:`left_out` drops
    from either (listed with the reason in ``excluded``); ``seeds_for`` limits a comparison, keyed
    (regime, canonical point, arm, reference, metric), to the seeds its verdict was judged on."""
    rows = []
    for (regime, group_point), arms in by_group(records).items():
        point = next(iter(next(iter(arms.values())).values()))["point"]
        dropped = left_out(arms)
        for reference in REFERENCES:
            if reference not in arms:
                continue
            for arm, cells in arms.items():
                if arm == reference or arm == "none":
                    continue
                seeds = sorted(s for s in cells if s in arms[reference])
                excluded = {s: dropped[arm].get(s) or dropped[reference][s] for s in seeds if s in dropped[arm] or s in dropped[reference]}
                metrics = [m for m in cells[seeds[0]]["metrics"] if m in arms[reference][seeds[0]]["metrics"]] if seeds else []
                for metric in metrics:
                    limit = (seeds_for or {}).get((regime, group_point, arm, reference, metric))
                    used = [s for s in seeds if s not in excluded and (limit is None or s in limit)]
                    a = np.array([cells[s]["metrics"][metric] for s in used])
                    b = np.array([arms[reference][s]["metrics"][metric] for s in used])
                    result = stats.paired(a, b)
                    rows.append({"regime": regime, "point": point, "arm": arm, "reference": reference, "metric": metric,
                                 "method_mean": float(a.mean()) if len(a) else math.nan,
                                 "reference_mean": float(b.mean()) if len(b) else math.nan,
                                 **result.as_dict(), **effect_sizes(a - b), "excluded_seeds": [s for s in excluded if limit is None or s in limit],
                                 "excluded": "; ".join(f"seed {s}: {why}" for s, why in excluded.items() if limit is None or s in limit)})
    return rows


def effect_sizes(d: np.ndarray) -> dict[str, float]:
    """d_z and P(the method beats the reference on a seed) with its bootstrap CI; ``p_wilcoxon`` dropped (NaN) where
    the exact test cannot reach p < α with this many nonzero differences, whatever the data."""
    d = np.where(np.abs(d) < stats.ZERO, 0.0, d)
    share, low, high = p_better(d)
    out = {"d_z": d_z(d), "p_better": share, "p_better_low": low, "p_better_high": high}
    nonzero = int(np.count_nonzero(d))
    if nonzero == 0 or wilcoxon_min_p(nonzero) >= stats.ALPHA:
        out["p_wilcoxon"] = math.nan
    return out


def arm_summaries(records: list[dict]) -> list[dict]:
    """Mean ± sd of every metric per (regime, point, arm), over the seeds :func:`left_out` keeps (the rest counted)."""
    rows = []
    for (regime, _), arms in by_group(records).items():
        dropped = left_out(arms)
        for arm, by_seed in arms.items():
            cells = [by_seed[s] for s in sorted(by_seed)]
            usable = [c for c in cells if c["seed"] not in dropped[arm]]
            values: dict[str, list[float]] = defaultdict(list)
            for c in usable:
                for k, v in {**c["metrics"], **c["generation"]}.items():
                    if v is not None:
                        values[k].append(v)
            rows.append({"regime": regime, "point": cells[0]["point"], "arm": arm, "kind": cells[0]["kind"], "control": cells[0]["control"],
                         "seeds": len(cells), "collapsed": len(cells) - len(usable), "left_out": {str(s): why for s, why in dropped[arm].items()},
                         "metrics": {k: stats.summary(np.array(v)).__dict__ for k, v in values.items()}})
    return rows
