"""Cells → the unique stage runs they need, each named by what determines its outputs.

A stage run's key is a digest of the stage's name, the params it reads, the source
of its code, the content of the external data it reads (ingest's images) and the keys
of the runs that made its inputs — what DVC would compare. Cells that agree on all of
that share the run: within a (regime, sweep point, seed) block every method gets the
same ingest, baseline and error analysis, computed once; a rerun finds finished runs
in the store and skips them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from grid.format import canonical
from grid.spec import Cell, GridError
from qaug.params import lookup
from tasks.layout import files
from tasks.stages import _DEVICE, _GENERATORS, _HQCNN, _RESNET, NAMES, STAGES, Stage, _files, get

# The grid's own stage, equal_steps: the baseline classifier retrained for as many optimiser steps as an augmented
# model gets (the generated count, from augment.n_gen or merge.mixing_ratio, is in the key). A ResNet grid's `none`
# control is the pipeline's resnet_baseline stage: the very run every method's evaluate of the seed reads.
EQUAL_STEPS = Stage("equal_steps", "grid.equal_steps", ("seed", "device", "baseline", "evaluate", "augment.n_gen", "merge.mixing_ratio"),
                    "EqualStepsPaths", _files("grid/equal_steps.py", *get("merge").code, *_GENERATORS, *_DEVICE, *_HQCNN, *_RESNET),
                    content="tasks.source:evaluate_weights")
ALL_STAGES = {s.name: s for s in (*STAGES, EQUAL_STEPS)}
_SHARED = ("ingest", "train_baseline", "analyze_errors", "equal_steps", "resnet_baseline")  # one run per (regime, point, seed)


@dataclass(frozen=True)
class StageRun:
    stage: str
    key: str
    params: dict[str, Any]  # the cell's full params (a stage reads only its own sections)
    upstream: tuple[str, ...]  # keys of the runs whose outputs this run reads
    label: str  # readable: "train_baseline · scarce10 · seed 3"
    content: str | None = None  # the digest of the external data it reads, as planned (checked again after the run)


def judged_by_resnet(cell: Cell) -> bool:
    return lookup(cell.params, "evaluate.classifier") not in (None, "hqcnn")


def reference_stage(cell: Cell) -> str:
    """The stage that trains the ``none`` control: train_baseline's HQCNN, or resnet_baseline's ResNet."""
    return "resnet_baseline" if judged_by_resnet(cell) else "train_baseline"


def stages_of(cell: Cell, score: bool) -> tuple[str, ...]:
    if cell.arm.kind == "none":
        return ("ingest", reference_stage(cell))
    if cell.arm.kind == "equal-steps":
        return ("ingest", "equal_steps")
    return tuple(name for name in NAMES if score or name != "score_generated")  # what `qaug run` runs, in its order


def result_stage(cell: Cell) -> str:
    """The stage whose metrics hold the cell's test scores."""
    return {"none": reference_stage(cell), "equal-steps": "equal_steps"}.get(cell.arm.kind, "evaluate")


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


def _key_params(stage: Stage, params: dict[str, Any]) -> dict[str, Any]:
    """The params that determine a run's outputs (``Stage.params_read``: train_generator's Inception settings only
    when it scores over training, so those meant for score_generated do not retrain every generator)."""
    return {k: lookup(params, k) for k in stage.params_read(params)}


def axes(cell: Cell) -> str:
    """Where in the grid file a cell's data comes from: its regime (and sweep point)."""
    return f"regimes.{cell.regime}" + (f" at sweep point {cell.point_label}" if cell.point else "")


def plan(cells: list[Cell], score: bool) -> tuple[dict[str, StageRun], dict[str, dict[str, str]]]:
    """The unique stage runs (key → run, in an order where inputs come first) and each cell's stage → key."""
    runs: dict[str, StageRun] = {}
    per_cell: dict[str, dict[str, str]] = {}
    made = producers()
    contents: dict[tuple[str, str], str] = {}  # (stage, its key params) → digest of the external data it reads
    for cell in cells:
        keys: dict[str, str] = {}
        for name in stages_of(cell, score):
            stage = ALL_STAGES[name]
            upstream = tuple(dict.fromkeys(keys[made[p]] for p in files(stage.paths_object(), "dep") if made.get(p) in keys))
            missing = [p for p in files(stage.paths_object(), "dep") if made.get(p) not in keys]
            if missing:
                raise RuntimeError(f"stage {name} reads {missing}, which no earlier stage of the cell writes")
            ident = {"stage": name, "params": _key_params(stage, cell.params),
                     "code": _code_digest(stage.code), "inputs": upstream}
            if stage.content:  # the data's content, not its path (ingest); the seed picks images, it reads none
                memo = (name, canonical({k: v for k, v in ident["params"].items() if k != "seed"}))
                if memo not in contents:
                    try:
                        contents[memo] = stage.content_digest(cell.params)
                    except (ValueError, FileNotFoundError) as err:  # a missing folder or class, an unreadable image
                        raise GridError(f"{axes(cell)}: {str(err).removeprefix('params.yaml: ')}") from None
                ident["content"] = contents[memo]
            key = hashlib.sha256(canonical(ident).encode()).hexdigest()[:20]
            keys[name] = key
            if key not in runs:
                tag = "" if name in _SHARED else cell.arm.name
                label = " · ".join(filter(None, [name, tag, cell.regime, cell.point_label, f"seed {cell.seed}"]))
                runs[key] = StageRun(name, key, cell.params, upstream, label, ident.get("content"))
        per_cell[cell.id] = keys
    return runs, per_cell
