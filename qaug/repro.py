"""``dvc repro`` as a subprocess of this environment: the whole pipeline (``qaug run``, output passed through to the
terminal) or one stage at a time with its output as lines (the Prefect flow, which logs them); either way, what
DVC did with each stage (ran, restored, unchanged) decides what the run may say it reproduced.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import yaml

from qaug.lock import held


def stale_stages(root: Path = Path(".")) -> set[str] | None:
    """Stages ``dvc repro`` would run first (changed deps or params, missing outputs); None when DVC cannot say."""
    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=root, env=_env(), capture_output=True, text=True)
    try:
        return set(json.loads(proc.stdout)) if proc.returncode == 0 else None
    except json.JSONDecodeError:
        return None


def committed_lock(root: Path = Path(".")) -> dict | None:
    """``dvc.lock`` as the checked-out commit has it (None outside git or without one)."""
    try:
        proc = subprocess.run(["git", "show", "HEAD:dvc.lock"], cwd=root, capture_output=True, text=True)
    except OSError:  # no git on this machine
        return None
    return yaml.safe_load(proc.stdout) if proc.returncode == 0 else None


def lock_difference(committed: dict, current: dict, order: list[str], outcome: Mapping[str, str]) -> str:
    """What this run showed about the commit's outputs, in words: the first stage (in ``order``) whose inputs or
    outputs differ between the two dvc.lock files; otherwise the stages that ran here and matched ("reproduced")
    and those it did not recompute, so did not compare. DVC skips a stage whose deps and params did not change
    (a fresh clone's git-tracked outputs, e.g. score_generated's metrics, stay the committed ones) or restores it
    from its run cache; ``outcome`` is what DVC said it did with each stage (:func:`stage_outcome`)."""
    def entries(lock: dict, stage: str, kind: str) -> dict:
        spec = lock.get("stages", {}).get(stage, {})
        if kind == "params":
            return spec.get("params", {})
        return {e["path"]: e.get("md5") for e in spec.get(kind, [])}

    reproduced, not_run = [], []
    for stage in order:
        changed = [k for k in ("deps", "params") if entries(committed, stage, k) != entries(current, stage, k)]
        if changed:
            return f"not comparable with the committed dvc.lock: stage {stage}'s {' and '.join(changed)} changed since the commit"
        outs = entries(current, stage, "outs")
        differ = sorted(p for p, h in entries(committed, stage, "outs").items() if outs.get(p) != h)
        if differ:
            earlier = "" if outcome.get(stage) == "ran" else " (outputs of an earlier run: this run did not recompute them)"
            return f"differs from the committed dvc.lock at stage {stage}: {', '.join(differ)}{earlier}"
        (reproduced if outcome.get(stage) == "ran" else not_run).append(stage)
    if not not_run:
        return "reproduced: every stage ran and every output has the committed dvc.lock's hash"
    why = {"unchanged": "skipped by DVC: no dep or param changed", "restored": "restored from DVC's run cache"}
    groups = "; ".join(f"{', '.join(s for s in not_run if outcome.get(s) == kind)} ({why.get(kind, 'not reported as run by DVC')})"
                       for kind in dict.fromkeys(outcome.get(s) for s in not_run))
    how = (f"`qaug run --force` recomputes and compares every stage; `dvc repro -f -s {not_run[0]}` then `git diff dvc.lock` "
           "checks one")
    if not reproduced:
        return f"not compared with the committed dvc.lock: this run recomputed no stage ({groups}); {how}"
    return (f"reproduced {', '.join(reproduced)}: they ran and every output has the committed dvc.lock's hash; not compared, "
            f"as this run did not recompute them: {groups}; {how}")


# What DVC 3 says it does with each stage of a ``dvc repro`` (dvc/stage/run.py, dvc/stage/cache.py,
# dvc/stage/__init__.py), one line each: run it, restore its outputs from the run cache, or skip it.
OUTCOMES = (("ran", re.compile(r"^Running stage '(?P<stage>[^']+)':")),
            ("restored", re.compile(r"^Stage '(?P<stage>[^']+)' is cached - skipping run, checking out outputs")),
            ("unchanged", re.compile(r"^Stage '(?P<stage>[^']+)' didn't change, skipping")))
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def stage_outcome(line: str) -> tuple[str, str] | None:
    """(stage, "ran" | "restored" | "unchanged") when ``line`` of ``dvc repro``'s output is DVC saying what it did
    with a stage; None for any other line (a stage's own output, DVC's advice)."""
    line = ANSI.sub("", line).strip()
    for outcome, pattern in OUTCOMES:
        said = pattern.match(line)
        if said:
            return said["stage"], outcome
    return None


# DVC's own words when another DVC process holds the repository (``dvc exp run``, a second ``dvc repro``).
DVC_LOCKED = "Unable to acquire lock"


# Set for the stage processes of a run that already decided about Prefect (the flow logs their output; a
# fallback run goes without): ``qaug stage`` then opens no flow run of its own and does not probe the server.
NO_STAGE_FLOW = "QAUG_NO_STAGE_FLOW"


class PipelineBusy(RuntimeError):
    """Another run holds the project: this one started no stage."""


def _env(**extra: str) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1", DVC_NO_ANALYTICS="1", **extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # stages run this env's `qaug`
    return env


class Repro(NamedTuple):
    code: int  # dvc repro's exit code
    outcome: dict[str, str]  # stage → "ran", "restored" or "unchanged", as DVC said (stages it did not reach: absent)


def dvc_repro(force: bool = False, root: Path = Path(".")) -> Repro:
    """Run ``dvc repro`` in ``root`` without Prefect. Its output goes to the terminal as it comes (stdout through
    this process, which notes what DVC says it did with each stage; stderr straight)."""
    cmd = [sys.executable, "-m", "dvc", "repro", *(["--force"] if force else [])]
    outcome: dict[str, str] = {}
    with subprocess.Popen(cmd, cwd=root, env=_env(**{NO_STAGE_FLOW: "1"}), stdout=subprocess.PIPE, text=True,
                          encoding="utf-8", errors="replace", bufsize=1) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            said = stage_outcome(line)
            if said:
                outcome[said[0]] = said[1]
    return Repro(proc.returncode, outcome)


def restore_hint(root: Path = Path(".")) -> str:
    """After a failed stage: the one command that puts back the outputs dvc.lock records. ``--force``: the failed
    stage may have written one of its outputs before failing (a data check writes its report, then fails), and a
    plain ``dvc checkout`` refuses to overwrite a file it has no copy of (exit 255). Metrics and plots are kept in
    git (``cache: false``): ``git checkout`` restores those of them git tracks."""
    try:
        tracked = subprocess.run(["git", "ls-files", "--", "metrics", "plots"], cwd=root, capture_output=True, text=True).stdout
    except OSError:  # no git on this machine
        tracked = ""
    folders = [f for f in ("metrics", "plots") if any(line.startswith(f"{f}/") for line in tracked.splitlines())]
    git = f" && git checkout -- {' '.join(folders)}" if folders else ""
    return (f"`dvc checkout --force{git}` restores the outputs of the last good run (overwriting what the failed stage "
            "wrote, e.g. a failed data check's report: its failures are above and in the Data Docs)")


def dvc_push(root: Path = Path(".")) -> subprocess.CompletedProcess:
    """``dvc push`` of the run's data to the default DVC remote; output captured for the caller to show."""
    return subprocess.run([sys.executable, "-m", "dvc", "push"], cwd=root, env=_env(), capture_output=True, text=True)


def pipeline_stages(root: Path = Path(".")) -> list[tuple[str, list[str]]]:
    """dvc.yaml's stages in an order ``dvc repro`` may run them (dvc.yaml's own order where it is free), each
    with the stages whose outputs it reads: DVC's graph, not a copy of it."""
    import networkx as nx
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        position = {stage: i for i, stage in enumerate(repo.index.stages)}
        order = nx.lexicographical_topological_sort(graph.reverse(copy=True), key=lambda s: position[s])
        return [(s.name, sorted(u.name for u in graph.successors(s) if isinstance(u, PipelineStage)))
                for s in order if isinstance(s, PipelineStage)]  # `dvc add`ed files (.dvc stages) have nothing to run


def repro_stage(name: str, root: Path = Path("."), force: bool = False) -> Iterator[str]:
    """``dvc repro --single-item NAME`` (DVC skips it when nothing it depends on changed), its output line by line;
    raises PipelineBusy when DVC's lock is held, RuntimeError when the stage fails. A consumer that stops early
    (an error, a cancelled or timed-out run) stops the stage too: DVC and the stage's process are one group."""
    cmd = [sys.executable, "-m", "dvc", "repro", "--single-item", *(["--force"] if force else []), name]
    proc = subprocess.Popen(cmd, cwd=root, env=_env(**{NO_STAGE_FLOW: "1"}), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, encoding="utf-8", errors="replace", bufsize=1, start_new_session=True)
    locked = False
    try:
        for line in proc.stdout:
            locked = locked or DVC_LOCKED in line
            yield line.rstrip("\n")
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
        proc.stdout.close()
    if proc.returncode == 0:
        return
    if locked:
        raise PipelineBusy(f"another DVC command holds {Path(root).resolve()}'s lock (a `dvc repro` or `dvc exp run`); stage {name} "
                           "did not start: wait for it and run again")
    raise RuntimeError(f"stage {name} failed (dvc repro exit code {proc.returncode}); its output is in the log above")


def exclusive(root: Path = Path(".")):
    """One qaug pipeline run per project at a time: a second is refused at once (DVC would fail it midway)."""
    return held(Path(root) / ".dvc" / "tmp" / "qaug-run.lock", lambda pid: PipelineBusy(
        f"another qaug run is running in {Path(root).resolve()} (pid {pid}); this one started nothing: wait for it "
        "(scheduled runs queue behind the deployment's concurrency limit)"))
