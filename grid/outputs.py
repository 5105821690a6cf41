"""What a grid leaves in its folder (``grids/<name>/`` by default), written atomically after every run.

* ``cells/<cell>.json``: each finished cell's numbers (test metrics, collapse flags,
  generated-set scores, the stage-run keys it used);
* ``results.csv``: the tidy table, a row per cell × metric;
* ``comparisons.csv``: every method against ``none`` and ``duplicates``: paired mean
  difference, unadjusted t and bootstrap 95 % CIs, t / Wilcoxon p, d_z, P(better), seeds for 80 % power, and
  whether it is a primary comparison (its verdict, margin and deciding interval) or exploratory;
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

from grid.decisions import decision_fields, decision_rows, family_text, seeds_judged, verdict_text
from grid.format import canonical
from grid.plan import StageRun, plan
from grid.pooled import pooled
from grid.primaries import Design, design
from grid.results import arm_summaries, cell_record, comparisons, left_out_cells, tidy
from grid.spec import Cell, GridError, GridSpec, load_grid
from grid.store import DONE, failures, is_done, run_dir
from grid.waves import Replay, open_arms, replay
from qaug.reproducible import environment
from qaug.io import write_bytes, write_csv, write_json

COMPARISON_COLUMNS = ("regime", "point", "arm", "reference", "metric", "role", "n", "method_mean", "reference_mean", "mean", "sd",
                      "t_low", "t_high", "boot_low", "boot_high", "p_t", "p_wilcoxon", "d_z", "p_better", "p_better_low", "p_better_high",
                      "seeds_for_power", "verdict", "margin", "decision_low", "decision_high", "decision_level", "excluded_seeds", "excluded")


def default_out(grid_file: Path) -> Path:
    return grid_file.parent / grid_file.stem


def load_plan(grid_file: Path, spec: GridSpec | None = None) -> tuple[GridSpec, list[Cell], dict[str, StageRun], dict[str, dict[str, str]]]:
    """The grid file's spec (``spec`` when the caller loaded and checked it already), cells and stage runs."""
    spec = spec or load_grid(grid_file)
    design(spec)  # primaries and margins: named errors before any work
    cells = spec.cells()
    try:
        runs, per_cell = plan(cells, spec.score_generated)
    except GridError as err:  # a regime's data: name the grid file too
        raise GridError(f"{grid_file}: {err}") from None
    return spec, cells, runs, per_cell


def finished_records(cells: list[Cell], runs: dict[str, StageRun], per_cell: dict[str, dict[str, str]], store: Path) -> list[dict]:
    """The record of every cell whose stage runs are all in the store."""
    return [cell_record(c, per_cell[c.id], runs, store) for c in cells if all(is_done(store, runs[k]) for k in per_cell[c.id].values())]


def failed_cells(cells: list[Cell], runs: dict[str, StageRun], per_cell: dict[str, dict[str, str]], store: Path) -> dict[str, str]:
    """Cell id → why, for every cell with a run whose generated set failed its data checks (it ran, without a result)."""
    marks = failures(store, runs)
    return {c.id: f"{runs[k].label}: {marks[k]}" for c in cells for k in per_cell[c.id].values() if k in marks}


def status(grid_file: Path, out: Path) -> dict:
    """How far the grid is: cells and stage runs finished, per stage; the looks judged, each primary's verdict so far,
    and what the next wave will run (cells per arm, stage runs still to run)."""
    spec, cells, runs, per_cell = load_plan(grid_file)
    questions, store = design(spec), out / "store"
    done = {k for k, r in runs.items() if is_done(store, r)}
    by_stage = Counter(r.stage for r in runs.values())
    done_by_stage = Counter(runs[k].stage for k in done)
    failed = failed_cells(cells, runs, per_cell, store)
    state = replay(spec, questions, cells, finished_records(cells, runs, per_cell, store), set(failed))
    next_keys = {k for c in state.to_run for k in per_cell[c.id].values() if k not in done}
    return {"grid": spec.name, "cells": len(cells), "cells_done": sum(all(k in done for k in keys.values()) for keys in per_cell.values()),
            "stage_runs": len(runs), "stage_runs_done": len(done), "cells_failed": len(failed),
            "per_stage": {s: {"runs": n, "done": done_by_stage[s]} for s, n in by_stage.items()},
            "plan": list(questions.plan), "looks_judged": state.judged,
            "decisions": [{"comparison": p.label, "seeds": f["n"], **f, "text": verdict_text(f)}
                          for p, v in zip(questions.primaries, state.verdicts) for f in [decision_fields(v) | {"margin": p.margin}]],
            "next_wave": None if state.finished else {
                "look": state.judged + 1 if state.missing else None, "seeds": questions.plan[state.judged] if state.missing else questions.plan[0],
                "cells_to_run": dict(Counter(c.arm.name for c in state.to_run)), "stage_runs_to_run": len(next_keys)}}


def finish(spec: GridSpec, cells: list[Cell], runs: dict[str, StageRun], per_cell: dict[str, dict[str, str]], out: Path, outcome) -> dict:
    """Records of every finished cell → the verdicts, tables, summary and report; publish them as Prefect artifacts."""
    from grid.report import publish, write_report

    questions = design(spec)
    store = out.resolve() / "store"
    records = finished_records(cells, runs, per_cell, store)
    finished_ids = {r["cell"] for r in records}
    for r in records:
        # sample paths relative to the grid's folder: the cell files are committed and read on other machines
        write_json(out / "cells" / f"{r['cell']}.json", {**r, **({"samples": os.path.relpath(r["samples"], out)} if r.get("samples") else {})})
    for stale in set((out / "cells").glob("*.json")) - {out / "cells" / f"{r['cell']}.json" for r in records}:
        stale.unlink()  # a cell that failed this time, or left the grid file
    sweep_keys = list(spec.sweep)
    rows = tidy(records, sweep_keys)
    columns = ["regime", *sweep_keys, "arm", "kind", "seed", "metric", "value", "collapsed"]
    write_csv(out / "results.csv", columns, [[row[c] for c in columns] for row in rows])
    failed = failed_cells(cells, runs, per_cell, store)
    state = replay(spec, questions, cells, records, set(failed))
    compared = comparisons(records, seeds_judged(spec, questions, state))
    decisions = decision_rows(questions, state, compared)
    write_csv(out / "comparisons.csv", COMPARISON_COLUMNS,
              [[_csv(r.get(c)) for c in COMPARISON_COLUMNS] for r in compared])
    summary = {
        "grid": spec.name, "description": spec.description, "file": str(spec.path),
        "cells": len(cells), "cells_finished": len(records),
        "classifiers": sorted({c.params.get("evaluate", {}).get("classifier", "hqcnn") for c in cells}),
        "seeds": list(spec.seeds), "regimes": list(spec.regimes), "arm_names": [a.name for a in spec.arms], "sweep": {k: list(v) for k, v in spec.sweep.items()},
        "design": {"plan": list(questions.plan), "looks_judged": state.judged, "finished": state.finished,
                   "margins": questions.margins, "primaries": len(questions.primaries)},
        "family": family_text(questions),
        "decisions": decisions,
        "stage_runs": dict(Counter(r.stage for r in runs.values())),
        "executed": dict(Counter(runs[k].stage for k in outcome.executed)),
        "reused": dict(Counter(runs[k].stage for k in outcome.reused)),
        "failed": {runs[k].label: err for k, err in outcome.failed.items()},
        "failed_cells": [{"cell": c.label, "why": failed[c.id]} for c in cells if c.id in failed],  # ran without a result
        "blocked": [runs[k].label for k in outcome.blocked],
        "unfinished_cells": [c.label for c in _still_needed(cells, finished_ids | set(failed), spec, questions, state)],
        "wall_seconds": round(outcome.seconds, 1),
        "stage_seconds": _seconds(runs, store),
        "collapsed": left_out_cells(records),
        "arms": arm_summaries(records),
        "comparisons": compared,
        "pooled": pooled(compared),
        "environment": environment(),
    }
    summary["arm_seconds"] = _arm_seconds(cells, runs, per_cell, store)
    summary = _finite(summary)
    write_json(out / "summary.json", summary)
    write_bytes(out / "report.html", write_report(spec, summary, records).encode())
    publish(spec, summary, out)
    return {k: summary[k] for k in ("grid", "cells", "cells_finished", "executed", "reused", "failed", "blocked", "wall_seconds")}


def _still_needed(cells: list[Cell], finished: set[str], spec: GridSpec, questions: Design, state: Replay) -> list[Cell]:
    """Unfinished cells the plan still wants: the current look's, not the later seeds of arms whose questions are decided."""
    if state.finished:
        return []
    active = open_arms(questions, state.verdicts)
    later = set(spec.seeds[:questions.plan[-1]])
    return [c for c in cells if c.id not in finished and (c in state.missing or c in state.exploratory or (c.seed in later and
            (c.regime, canonical(dict(c.point)), c.arm.name) in active))]


def _csv(value) -> object:
    """An undefined statistic (NaN: no spread, too few seeds, a test that cannot reject) is an empty cell, as in summary.json."""
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else ""
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
    return {arm: round(math.fsum(_run_seconds(store, runs[k]) for k in ks), 1) for arm, ks in keys.items()}  # exact: a set's order varies


def _seconds(runs: dict[str, StageRun], store: Path) -> dict:
    """Seconds of every stage run in the plan (this run's and reused ones), per stage."""
    per_stage: dict[str, float] = defaultdict(float)
    for run in runs.values():
        per_stage[run.stage] += _run_seconds(store, run)
    return {k: round(v, 1) for k, v in sorted(per_stage.items(), key=lambda kv: -kv[1])}
