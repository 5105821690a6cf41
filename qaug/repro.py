"""``dvc repro`` as a subprocess of this environment: the whole pipeline (``qaug run``, output straight to the
terminal) or one stage at a time with its output as lines (the Prefect flow, which logs them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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


def lock_difference(committed: dict, current: dict, order: list[str]) -> str:
    """Whether this run reproduced the commit's outputs: the first stage (in ``order``) whose inputs or
    outputs differ between the two dvc.lock files, in words."""
    def entries(lock: dict, stage: str, kind: str) -> dict:
        spec = lock.get("stages", {}).get(stage, {})
        if kind == "params":
            return spec.get("params", {})
        return {e["path"]: e.get("md5") for e in spec.get(kind, [])}

    for stage in order:
        changed = [k for k in ("deps", "params") if entries(committed, stage, k) != entries(current, stage, k)]
        if changed:
            return f"not comparable with the committed dvc.lock: stage {stage}'s {' and '.join(changed)} changed since the commit"
        outs = entries(current, stage, "outs")
        differ = sorted(p for p, h in entries(committed, stage, "outs").items() if outs.get(p) != h)
        if differ:
            return f"differs from the committed dvc.lock at stage {stage}: {', '.join(differ)}"
    return "reproduced: every output has the committed dvc.lock's hash"


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


def dvc_repro(force: bool = False, root: Path = Path(".")) -> int:
    """Run ``dvc repro`` in ``root`` without Prefect; returns its exit code."""
    cmd = [sys.executable, "-m", "dvc", "repro", *(["--force"] if force else [])]
    return subprocess.run(cmd, cwd=root, env=_env(**{NO_STAGE_FLOW: "1"})).returncode


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
