"""``dvc repro`` as a subprocess of this environment.

Output is not captured: each stage (``qaug stage NAME``) prints its own
"[k/8] name" line, progress bars and timing straight to the terminal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml


def stale_stages(root: Path = Path(".")) -> set[str] | None:
    """Stages ``dvc repro`` would run first (changed deps or params, missing outputs); None when DVC cannot say."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=root, env=env, capture_output=True, text=True)
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


def dvc_repro(force: bool = False, root: Path = Path(".")) -> int:
    """Run ``dvc repro`` in ``root``; returns its exit code."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # stages run this env's `qaug`
    cmd = [sys.executable, "-m", "dvc", "repro", *(["--force"] if force else [])]
    return subprocess.run(cmd, cwd=root, env=env).returncode
