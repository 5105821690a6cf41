"""What a grid leaves in its folder (``grids/<name>/`` by default), written atomically after every run.

* ``cells/<cell>.json``: each finished cell's numbers (test metrics, collapse flags,
  generated-set scores, the stage-run keys it used);
* ``results.csv``: the tidy table, a row per cell × metric;
* ``comparisons.csv``: every method against ``none`` and ``duplicates``: paired mean
  difference, t and bootstrap 95 % CIs, t / Wilcoxon / Holm-adjusted p, seeds for 80 % power, verdict;
* ``summary.json``: the above per arm, stage-run counts (how many baselines were trained),
  where the time went, failures, the environment;
* ``report.html``: one self-contained page (``grid.report``);
* ``store/``: the stage runs themselves (models, data; reused by the next run).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter, defaultdict
from pathlib import Path

from grid.plan import StageRun, plan
from grid.results import arm_summaries, cell_record, comparisons, left_out_cells, tidy
from grid.spec import Cell, GridError, GridSpec, load_grid
from grid.store import DONE, is_done, run_dir
from qaug.reproducible import environment
from qaug.io import write_bytes, write_csv, write_json

COMPARISON_COLUMNS = ("regime", "point", "arm", "reference", "metric", "n", "method_mean", "reference_mean", "mean", "sd",
                      "t_low", "t_high", "boot_low", "boot_high", "p_t", "p_wilcoxon", "p_holm", "seeds_for_power", "verdict", "excluded_seeds",
                      "excluded")


def default_out(grid_file: Path) -> Path:
    return grid_file.parent / grid_file.stem


def load_plan(grid_file: Path, spec: GridSpec | None = None) -> tuple[GridSpec, list[Cell], dict[str, StageRun], dict[str, dict[str, str]]]:
    """The grid file's spec (``spec`` when the caller loaded and checked it already), cells and stage runs."""
    spec = spec or load_grid(grid_file)
    cells = spec.cells()
    try:
        runs, per_cell = plan(cells, spec.score_generated)
    except GridError as err:  # a regime's data: name the grid file too
        raise GridError(f"{grid_file}: {err}") from None
    return spec, cells, runs, per_cell


def status(grid_file: Path, out: Path) -> dict:
    """How much of the grid has run: cells and stage runs finished, per stage."""
    spec, cells, runs, per_cell = load_plan(grid_file)
    store = out / "store"
    done = {k for k, r in runs.items() if is_done(store, r)}
    by_stage = Counter(r.stage for r in runs.values())
    done_by_stage = Counter(runs[k].stage for k in done)
    return {"grid": spec.name, "cells": len(cells), "cells_done": sum(all(k in done for k in keys.values()) for keys in per_cell.values()),
            "stage_runs": len(runs), "stage_runs_done": len(done),
            "per_stage": {s: {"runs": n, "done": done_by_stage[s]} for s, n in by_stage.items()}}


def finish(spec: GridSpec, cells: list[Cell], runs: dict[str, StageRun], per_cell: dict[str, dict[str, str]], out: Path, outcome) -> dict:
    """Records of every finished cell → the tables, summary and report; publish them as Prefect artifacts."""
    from grid.report import publish, write_report

    store = out.resolve() / "store"
    finished = [c for c in cells if all(is_done(store, runs[k]) for k in per_cell[c.id].values())]
    records = [cell_record(c, per_cell[c.id], runs, store) for c in finished]
    for r in records:
        # sample paths relative to the grid's folder: the cell files are committed and read on other machines
        write_json(out / "cells" / f"{r['cell']}.json", {**r, **({"samples": os.path.relpath(r["samples"], out)} if r.get("samples") else {})})
    for stale in set((out / "cells").glob("*.json")) - {out / "cells" / f"{r['cell']}.json" for r in records}:
        stale.unlink()  # a cell that failed this time, or left the grid file
    sweep_keys = list(spec.sweep)
    rows = tidy(records, sweep_keys)
    columns = ["regime", *sweep_keys, "arm", "kind", "seed", "metric", "value", "collapsed"]
    write_csv(out / "results.csv", columns, [[row[c] for c in columns] for row in rows])
    compared = comparisons(records)
    write_csv(out / "comparisons.csv", COMPARISON_COLUMNS,
              [[_csv(r[c]) for c in COMPARISON_COLUMNS] for r in compared])
    summary = {
        "grid": spec.name, "description": spec.description, "file": str(spec.path),
        "cells": len(cells), "cells_finished": len(finished),
        "classifiers": sorted({c.params.get("evaluate", {}).get("classifier", "hqcnn") for c in cells}),
        "seeds": list(spec.seeds), "regimes": list(spec.regimes), "arm_names": [a.name for a in spec.arms], "sweep": {k: list(v) for k, v in spec.sweep.items()},
        "stage_runs": dict(Counter(r.stage for r in runs.values())),
        "executed": dict(Counter(runs[k].stage for k in outcome.executed)),
        "reused": dict(Counter(runs[k].stage for k in outcome.reused)),
        "failed": {runs[k].label: err for k, err in outcome.failed.items()},
        "blocked": [runs[k].label for k in outcome.blocked],
        "unfinished_cells": [c.label for c in cells if c not in finished],  # failed, blocked, or not run yet
        "wall_seconds": round(outcome.seconds, 1),
        "stage_seconds": _seconds(runs, store),
        "collapsed": left_out_cells(records),
        "arms": arm_summaries(records),
        "comparisons": compared,
        "environment": environment(),
    }
    summary["arm_seconds"] = _arm_seconds(cells, runs, per_cell, store)
    summary = _finite(summary)
    write_json(out / "summary.json", summary)
    write_bytes(out / "report.html", write_report(spec, summary, records).encode())
    publish(spec, summary, out)
    return {k: summary[k] for k in ("grid", "cells", "cells_finished", "executed", "reused", "failed", "blocked", "wall_seconds")}


def _csv(value) -> object:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else value


def _finite(obj):
    """NaN/inf (an undefined statistic, e.g. a CI from one seed) → None, which JSON can hold."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _run_seconds(store: Path, run: StageRun) -> float:
    path = run_dir(store, run.stage, run.key) / DONE
    return json.loads(path.read_text())["seconds"] if path.is_file() else 0.0


def _arm_seconds(cells: list[Cell], runs: dict[str, StageRun], per_cell: dict[str, dict[str, str]], store: Path) -> dict:
    """Seconds of the stage runs each arm needs beyond the shared ingest and baseline (summed over seeds and regimes)."""
    shared = {"ingest", "train_baseline", "analyze_errors", "resnet_baseline"}
    keys: dict[str, set[str]] = defaultdict(set)
    for c in cells:
        keys[c.arm.name] |= {k for s, k in per_cell[c.id].items() if s not in shared}
    return {arm: round(sum(_run_seconds(store, runs[k]) for k in ks), 1) for arm, ks in keys.items()}


def _seconds(runs: dict[str, StageRun], store: Path) -> dict:
    """Seconds of every stage run in the plan (this run's and reused ones), per stage."""
    per_stage: dict[str, float] = defaultdict(float)
    for run in runs.values():
        per_stage[run.stage] += _run_seconds(store, run)
    return {k: round(v, 1) for k, v in sorted(per_stage.items(), key=lambda kv: -kv[1])}
