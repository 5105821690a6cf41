"""The augmented training sets this repository has produced: one per commit that changed dvc.lock's hash of
``data/augmented/train.npz``, with what made it and how to get it back (from the cache or the DVC remote)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

AUGMENTED = "data/augmented/train.npz"


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def _at(root: Path, rev: str, path: str) -> str | None:
    proc = _git(root, "show", f"{rev}:{path}")
    return proc.stdout if proc.returncode == 0 else None


def _augmented_md5(lock_text: str | None) -> str | None:
    stages = (yaml.safe_load(lock_text or "") or {}).get("stages", {})
    return next((o.get("md5") for s in stages.values() for o in s.get("outs", []) if o.get("path") == AUGMENTED), None)


def versions(root: Path = Path("."), branches: bool = False) -> list[dict]:
    """Newest first: rev, date, method, strategy, sizes, accuracy delta, the dataset's md5 and the restore command.
    ``branches``: every local branch's commits, not only HEAD's."""
    log = _git(root, "log", "--date-order", "--format=%H %cs", *(["--branches"] if branches else []), "--", "dvc.lock")
    if log.returncode != 0:
        raise FileNotFoundError(f"{Path(root).resolve()} is not a git repository with commits (git log: {log.stderr.strip()})")
    found, seen = [], set()
    entries = [tuple(line.split(" ", 1)) for line in log.stdout.strip().splitlines()]
    for rev, date in reversed(entries):  # oldest first: a set is listed at the commit that first produced it
        md5 = _augmented_md5(_at(root, rev, "dvc.lock"))
        if md5 is None or md5 in seen:
            continue
        seen.add(md5)
        params = yaml.safe_load(_at(root, rev, "params.yaml") or "") or {}
        merge = json.loads(_at(root, rev, "metrics/merge.json") or "{}")
        comparison = json.loads(_at(root, rev, "metrics/comparison.json") or "{}")
        augment = params.get("augment", {})
        found.append({
            "rev": rev[:10], "date": date, "method": augment.get("method"), "strategy": augment.get("strategy"),
            "seed": params.get("seed"), "real": merge.get("real"), "generated": merge.get("generated"),
            "accuracy_delta": comparison.get("delta", {}).get("accuracy"), "md5": md5,
            "restore": f"dvc get . {AUGMENTED} --rev {rev[:10]} -o train-{rev[:10]}.npz",
        })
    return found[::-1]
