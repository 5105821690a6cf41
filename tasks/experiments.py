"""DVC experiments as rows a terminal can show: the params that differ between them and the headline metrics.

``dvc exp show --only-changed`` puts every metric that changed before the params, and the dependency hashes
(32 characters each) after them, so at 120 columns the param that made the experiment is cut to "…". These
rows come from ``dvc exp show --json`` (the workspace, each baseline commit, its experiments), keep only the
params whose values differ and the few numbers of ``metrics/summary.json`` that say how the run went.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tasks.report import flatten

SUMMARY = "metrics/summary.json"
# The headline numbers of metrics/summary.json and their short column labels.
HEADLINE = {"accuracy_baseline": "acc. base", "accuracy_augmented": "acc. aug.", "accuracy_delta": "Δ acc.",
            "macro_f1_delta": "Δ macro F1", "train_generated": "generated"}


def dvc_experiments(root: Path = Path("."), all_commits: bool = False) -> list[dict]:
    """``dvc exp show --json`` of ``root`` (HEAD's experiments, or every commit's); RuntimeError with DVC's message."""
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json", *(["--all-commits"] if all_commits else [])]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc exp show failed: {(proc.stderr.strip().splitlines() or [f'exit code {proc.returncode}'])[-1]}")
    return json.loads(proc.stdout)


def _params(data: dict | None) -> dict[str, object]:
    """A run's params as dotted keys; params files other than params.yaml keep their name as a prefix."""
    flat: dict[str, object] = {}
    for file, content in ((data or {}).get("params") or {}).items():
        flat |= flatten((content or {}).get("data") or {}, "" if file == "params.yaml" else f"{file}:")
    return flat


def _headline(data: dict | None) -> dict[str, object]:
    found = (((data or {}).get("metrics") or {}).get(SUMMARY) or {}).get("data") or {}
    return {key: found.get(key) for key in HEADLINE}


def rows(experiments: list[dict]) -> list[dict]:
    """One row per run, in ``dvc exp show``'s order: ``run`` (workspace, the commit's branch or short rev, or
    the experiment's name), ``experiment`` (whether it is one), ``changed`` ({param: value} for the params whose
    values differ between the runs shown), ``failed`` and the HEADLINE metrics (None when absent)."""
    runs = []
    for baseline in experiments:
        rev = str(baseline["rev"])
        name = baseline.get("name") or (rev if rev == "workspace" else rev[:7])
        runs.append({"run": name, "experiment": False, "data": baseline.get("data"), "error": baseline.get("error")})
        for exp in baseline.get("experiments") or []:
            last = (exp.get("revs") or [{}])[0]
            runs.append({"run": exp.get("name") or str(last.get("rev", "?"))[:7], "experiment": True, "data": last.get("data"),
                         "error": last.get("error")})
    params = [_params(r["data"]) for r in runs]
    keys = sorted({k for p in params for k in p})
    differ = [k for k in keys if len({json.dumps(p.get(k), sort_keys=True, default=str) for p in params}) > 1]
    return [{"run": r["run"], "experiment": r["experiment"], "failed": bool(r["error"]),
             "changed": {k: p.get(k) for k in differ}, **_headline(r["data"])} for r, p in zip(runs, params)]
