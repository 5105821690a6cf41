"""After a scheduled run: what it produced, recorded — dvc.lock, metrics and plots committed to a branch, the
data pushed to the DVC remote. Both off by default (``pipeline(commit_branch=…, push=True)``)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from prefect import get_run_logger, task

from qaug.repro import dvc_push

RECORDED = ("dvc.lock", "params.yaml", "metrics", "plots")  # what git holds of a run; DVC holds the rest


def _git(root: str, *args: str, env: dict | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {root}: {proc.stderr.strip()}")
    return proc.stdout.strip()


ZERO = "0" * 40  # update-ref's "this ref must not exist yet"
IDENTITY = {"GIT_AUTHOR_NAME": "qaug", "GIT_AUTHOR_EMAIL": "qaug@localhost", "GIT_COMMITTER_NAME": "qaug",
            "GIT_COMMITTER_EMAIL": "qaug@localhost"}  # only where git has no identity configured (a bare worker)


@task(task_run_name="commit to {branch}")
def commit_results(root: str, branch: str) -> str | None:
    """Commit the checkout (HEAD) with this run's dvc.lock, params, metrics and plots onto ``branch`` (made when
    missing; its tip becomes the parent, so the branch is a history of runs), without touching the checkout or
    the user's index: a private index builds the commit. None when the branch already holds exactly this."""
    ref = f"refs/heads/{branch}"
    exists = subprocess.run(["git", "rev-parse", "--verify", "--quiet", ref], cwd=root, capture_output=True).returncode == 0
    parent = _git(root, "rev-parse", ref if exists else "HEAD")
    identity = subprocess.run(["git", "var", "GIT_COMMITTER_IDENT"], cwd=root, capture_output=True).returncode == 0
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, GIT_INDEX_FILE=str(Path(tmp) / "index"), **({} if identity else IDENTITY))
        _git(root, "read-tree", "HEAD", env=env)  # the code that made the run, with its results on top
        _git(root, "add", "--", *(p for p in RECORDED if (Path(root) / p).exists()), env=env)
        tree = _git(root, "write-tree", env=env)
        if tree == _git(root, "rev-parse", f"{parent}^{{tree}}"):
            get_run_logger().info("nothing to record: %s already holds these results", branch)
            return None
        commit = _git(root, "commit-tree", tree, "-p", parent, "-m", "qaug: scheduled run results (dvc.lock, params, metrics, plots)",
                      env=env)
    _git(root, "update-ref", ref, commit, parent if exists else ZERO)
    get_run_logger().info("recorded the run as %s on %s", commit[:12], branch)
    return commit


@task(task_run_name="dvc push")
def push_data(root: str) -> None:
    """``dvc push``: the run's data to the project's default DVC remote, its output in the log (no retries: a
    missing or misconfigured remote fails the same way again)."""
    proc = dvc_push(Path(root))
    for line in (proc.stdout + proc.stderr).splitlines():
        get_run_logger().info(line)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc push failed (exit code {proc.returncode}): is a default remote configured? `dvc remote list`")
