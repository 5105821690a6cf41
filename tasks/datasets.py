"""The augmented training sets this repository has produced: one per commit that changed dvc.lock's hash of
``data/augmented/train.npz``, with what made it, whether its bytes are in today's default DVC remote, and the
command that gets it back from there in any clone (a fresh one too)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import NamedTuple

import yaml

AUGMENTED = "data/augmented/train.npz"


class Remote(NamedTuple):
    """Today's default DVC remote as this clone's config has it, and which of the asked hashes it holds."""

    name: str | None  # None: no default remote, or it could not be asked
    holds: set[str]
    problem: str | None  # why no version counts as pushed (no default remote, the remote unreachable)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def _at(root: Path, rev: str, path: str) -> str | None:
    proc = _git(root, "show", f"{rev}:{path}")
    return proc.stdout if proc.returncode == 0 else None


def _augmented_out(lock_text: str | None) -> dict | None:
    stages = (yaml.safe_load(lock_text or "") or {}).get("stages", {})
    return next((o for s in stages.values() for o in s.get("outs", []) if o.get("path") == AUGMENTED and o.get("md5")), None)


def remote_holds(hashes: dict[str, str], root: Path = Path(".")) -> Remote:
    """Which of ``hashes`` (md5 → DVC hash name: "md5", or "md5-dos2unix" for DVC 2 entries) today's default remote
    holds. The remote of today's config, not of the commit that made a version: a commit made before the remote
    existed names none, and a version is restorable exactly when its bytes are there now."""
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            name = repo.config["core"].get("remote")
            if not name:
                return Remote(None, set(), "this clone's DVC config names no default remote (dvc remote add -d; then dvc push "
                                           "from a clone whose cache holds the data)")
            holds = set()
            for hash_name in set(hashes.values()):
                odb = repo.cloud.get_remote_odb(name, "datasets", hash_name=hash_name)
                holds |= set(odb.oids_exist([md5 for md5, h in hashes.items() if h == hash_name]))
            return Remote(name, holds, None)
    except Exception as err:  # noqa: BLE001 - an unreachable remote (network, credentials): say so, list the rest
        return Remote(None, set(), f"the default DVC remote could not be asked ({type(err).__name__}: {err})")


def restore_command(rev: str, remote: str) -> str:
    """One command that writes version ``rev`` next to the workspace (untouched) in any clone: ``dvc get`` of this
    repository at ``rev``, from today's remote ``remote`` (``--remote``: the commit's own config may name none)."""
    return f"dvc get . {AUGMENTED} --rev {rev} --remote {remote} -o train-{rev}.npz"


def versions(root: Path = Path("."), branches: bool = False) -> tuple[list[dict], str | None]:
    """Newest first: rev, date, method, strategy, sizes, accuracy delta, the dataset's md5, whether today's default
    remote holds it ("pushed") and the command restoring it (None when not pushed); and why no version is pushed,
    when the remote is missing or unreachable. ``branches``: every local branch's commits, not only HEAD's."""
    log = _git(root, "log", "--date-order", "--format=%H %cs", *(["--branches"] if branches else []), "--", "dvc.lock")
    if log.returncode != 0:
        raise FileNotFoundError(f"{Path(root).resolve()} is not a git repository with commits (git log: {log.stderr.strip()})")
    found, seen = [], set()
    entries = [tuple(line.split(" ", 1)) for line in log.stdout.strip().splitlines()]
    for rev, date in reversed(entries):  # oldest first: a set is listed at the commit that first produced it
        out = _augmented_out(_at(root, rev, "dvc.lock"))
        if out is None or out["md5"] in seen:
            continue
        seen.add(out["md5"])
        params = yaml.safe_load(_at(root, rev, "params.yaml") or "") or {}
        merge = json.loads(_at(root, rev, "metrics/merge.json") or "{}")
        comparison = json.loads(_at(root, rev, "metrics/comparison.json") or "{}")
        augment = params.get("augment", {})
        found.append({
            "rev": rev[:10], "date": date, "method": augment.get("method"), "strategy": augment.get("strategy"),
            "seed": params.get("seed"), "real": merge.get("real"), "generated": merge.get("generated"),
            "accuracy_delta": comparison.get("delta", {}).get("accuracy"), "md5": out["md5"],
            "hash": out.get("hash", "md5-dos2unix"),  # DVC 3 writes `hash: md5`; DVC 2's entries have none
        })
    remote = remote_holds({v["md5"]: v.pop("hash") for v in found}, root) if found else Remote(None, set(), None)
    for v in found:
        v["pushed"] = v["md5"] in remote.holds
        v["restore"] = restore_command(v["rev"], remote.name) if v["pushed"] else None
    return found[::-1], remote.problem
