"""Cells → the unique stage runs they need, each named by what determines its outputs.

A stage run's key is a digest of the stage's name, the params it reads, the source
of its code and the keys of the runs that made its inputs — what DVC's run cache
would compare. Cells that agree on all of that share the run: within a (regime,
sweep point, seed) block every method gets the same ingest, baseline and error
analysis, computed once; a rerun finds finished runs in the store and skips them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from grid.format import canonical
from grid.spec import Cell
from tasks.layout import files
from tasks.stages import _HQCNN, STAGES, Stage

# The grid's own stage: the baseline retrained for as many optimiser steps as an augmented model gets.
# Its code is the HQCNN's; tasks/methods.py only supplies the params dataclass (augment.n_gen is in the key).
EQUAL_STEPS = Stage("equal_steps", "grid.equal_steps", ("seed", "baseline", "augment.n_gen"), "EqualStepsPaths",
                    ("grid/equal_steps.py", *_HQCNN))
ALL_STAGES = {s.name: s for s in (*STAGES, EQUAL_STEPS)}
_AUGMENT = ("ingest", "train_baseline", "analyze_errors", "train_generator", "generate", "filter", "merge", "evaluate")


@dataclass(frozen=True)
class StageRun:
    stage: str
    key: str
    params: dict[str, Any]  # the cell's full params (a stage reads only its own sections)
    upstream: tuple[str, ...]  # keys of the runs whose outputs this run reads
    label: str  # readable: "train_baseline · scarce10 · seed 3"


def stages_of(cell: Cell, score: bool) -> tuple[str, ...]:
    if cell.arm.kind == "none":
        return ("ingest", "train_baseline")
    if cell.arm.kind == "equal-steps":
        return ("ingest", "equal_steps")
    return (*_AUGMENT[:6], *(("score_generated",) if score else ()), *_AUGMENT[6:])


def result_stage(cell: Cell) -> str:
    """The stage whose metrics hold the cell's test scores."""
    return {"none": "train_baseline", "equal-steps": "equal_steps"}.get(cell.arm.kind, "evaluate")


@cache
def producers() -> dict[Path, str]:
    """Output path → the stage that writes it."""
    return {path: s.name for s in ALL_STAGES.values() for path in files(s.paths_object(), "out")}


@cache
def _code_digest(paths: tuple[str, ...]) -> str:
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for p in paths:
        h.update(p.encode() + b"\0" + (root / p).read_bytes())
    return h.hexdigest()


def _read(raw: dict[str, Any], key: str) -> Any:
    node: Any = raw
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def plan(cells: list[Cell], score: bool) -> tuple[dict[str, StageRun], dict[str, dict[str, str]]]:
    """The unique stage runs (key → run, in an order where inputs come first) and each cell's stage → key."""
    runs: dict[str, StageRun] = {}
    per_cell: dict[str, dict[str, str]] = {}
    made = producers()
    for cell in cells:
        keys: dict[str, str] = {}
        for name in stages_of(cell, score):
            stage = ALL_STAGES[name]
            upstream = tuple(dict.fromkeys(keys[made[p]] for p in files(stage.paths_object(), "dep") if made.get(p) in keys))
            missing = [p for p in files(stage.paths_object(), "dep") if made.get(p) not in keys]
            if missing:
                raise RuntimeError(f"stage {name} reads {missing}, which no earlier stage of the cell writes")
            ident = {"stage": name, "params": {k: _read(cell.params, k) for k in stage.params},
                     "code": _code_digest(stage.code), "inputs": upstream}
            key = hashlib.sha256(canonical(ident).encode()).hexdigest()[:20]
            keys[name] = key
            if key not in runs:
                shared = name in ("ingest", "train_baseline", "analyze_errors", "equal_steps")
                tag = "" if shared else cell.arm.name
                label = " · ".join(filter(None, [name, tag, cell.regime, cell.point_label, f"seed {cell.seed}"]))
                runs[key] = StageRun(name, key, cell.params, upstream, label)
        per_cell[cell.id] = keys
    return runs, per_cell
