"""The grid's content-addressed store: one folder per finished stage run, ``<store>/<stage>/<key>/``.

A run executes in a temporary folder beside its final place, with its inputs
hard-linked from the runs that made them at the paths the stage expects (the same
relative paths as in the workspace, so the stage code is exactly what ``qaug run``
executes). When the stage succeeds, the inputs are unlinked, ``run.json`` is written
and the folder is renamed into place: a folder without ``run.json`` never exists
under its key, so a killed grid leaves only ``.tmp`` folders, removed at the next start.

A run whose generated set fails its data checks (a ``DataCheckError``: an outcome of the method on that seed, the
same every time for the same key) leaves ``<stage>/<key>.failed.json`` with the message: its cell counts as run,
without a result, so the grid's waves can judge the look it belongs to; nothing else is recorded as failed, and
any other failure (a bug, a kill, a full disk) is retried by the next ``qaug grid``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from pathlib import Path

from grid.plan import ALL_STAGES, StageRun, producers
from qaug.checks import DataCheckError
from qaug.io import InputError, write_json
from qaug.reproducible import environment
from tasks.layout import files, rooted

DONE = "run.json"


def run_dir(store: Path, stage: str, key: str) -> Path:
    return store / stage / key


def is_done(store: Path, run: StageRun) -> bool:
    return (run_dir(store, run.stage, run.key) / DONE).is_file()


def failure_mark(store: Path, run: StageRun) -> Path:
    return store / run.stage / f"{run.key}.failed.json"


def failures(store: Path, runs: dict[str, StageRun]) -> dict[str, str]:
    """Key → message of every run of ``runs`` whose generated set failed its data checks (see the module docstring)."""
    marks = {k: failure_mark(store, r) for k, r in runs.items()}
    return {k: json.loads(path.read_text())["error"] for k, path in marks.items() if path.is_file()}


def clean_partial(store: Path) -> int:
    """Remove the temporary folders of runs a killed grid left behind; returns how many."""
    stale = list(store.glob("*/.*.tmp")) if store.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another file system
        shutil.copy2(src, dst)


def execute(store: Path, run: StageRun, runs_by_key: dict[str, StageRun]) -> dict:
    """Run one stage in the store (a no-op when it has run); returns its record (summary, seconds, environment)."""
    final = run_dir(store, run.stage, run.key)
    if (final / DONE).is_file():
        return json.loads((final / DONE).read_text())
    stage = ALL_STAGES[run.stage]
    work = final.parent / f".{run.key}.{os.getpid()}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    made = producers()
    try:
        inputs = files(stage.paths_object(), "dep")
        by_stage = {runs_by_key[k].stage: runs_by_key[k] for k in run.upstream}
        for rel in inputs:
            src = by_stage[made[rel]]
            _link(run_dir(store, src.stage, src.key) / rel, work / rel)
        start = time.perf_counter()
        summary = stage.run(run.params, work)
        seconds = time.perf_counter() - start
        if run.content is not None and stage.content_digest(run.params) != run.content:  # the key would name other data
            raise InputError(f"{run.label}: the data it reads changed while the grid ran (after it was planned); nothing was "
                             "stored: run `qaug grid` again, which keys the runs by the data as it is then")
        for rel in inputs:
            (work / rel).unlink()
        record = {"stage": run.stage, "key": run.key, "label": run.label, "summary": summary, "seconds": round(seconds, 2),
                  "upstream": list(run.upstream), "worker": {"host": platform.node(), "pid": os.getpid()}, "environment": environment()}
        write_json(work / DONE, record)
        try:
            work.rename(final)
        except OSError:  # another process finished the same run first: keep theirs
            shutil.rmtree(work, ignore_errors=True)
            return json.loads((final / DONE).read_text())
        return record
    except DataCheckError as err:
        shutil.rmtree(work, ignore_errors=True)
        write_json(failure_mark(store, run), {"label": run.label, "error": f"{type(err).__name__}: {err}"})
        raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def outputs(store: Path, run: StageRun) -> object:
    """The run's output paths (the stage's paths dataclass rooted at its folder)."""
    return rooted(ALL_STAGES[run.stage].paths_object(), run_dir(store, run.stage, run.key))
