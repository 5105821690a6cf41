"""The entry point for scheduled runs: ``dvc repro`` inside a Prefect flow.

Scheduled and manual runs execute the same stage commands (dvc.yaml's
``qaug stage NAME``), so ``dvc.lock`` stays true; with ``PREFECT_API_URL`` set,
each stage also shows up as its own flow run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from prefect import flow, serve as prefect_serve, task
from prefect.deployments.runner import RunnerDeployment

from flows.steps import publish_report
from qaug.params import load_params
from qaug.repro import dvc_repro
from tasks.preflight import RESTORE_HINT, before_repro


@task(task_run_name="pre-flight check")
def preflight(root: str, force: bool) -> None:
    """Params, data, classes and backend, before dvc repro deletes any stage's outputs."""
    before_repro(load_params(Path(root) / "params.yaml"), Path(root), force)


@task(task_run_name="dvc repro")
def reproduce(root: str, force: bool) -> None:
    code = dvc_repro(force=force, root=Path(root))
    if code != 0:
        raise RuntimeError(f"dvc repro failed with exit code {code}; see the log above. {RESTORE_HINT}")


@flow(name="qaug-dvc-repro")
def scheduled_repro(root: str = ".", force: bool = False) -> None:
    """Check the inputs, bring every stage up to date, then publish the report artifacts."""
    preflight(root, force)
    reproduce(root, force)
    publish_report(root)


def deployment(cron: str, name: str, root: Path | None = None) -> RunnerDeployment:
    """The scheduled-run deployment: ``scheduled_repro`` in ``root`` (default: here) on ``cron``."""
    return scheduled_repro.to_deployment(name=name, cron=cron, parameters={"root": str(root or Path.cwd())}, tags=["qaug"])


def serve(cron: str, name: str) -> int:
    """Register the deployment with the Prefect server and run it on ``cron`` until interrupted."""
    if not os.environ.get("PREFECT_API_URL"):  # a temporary server would forget the schedule at exit
        print("PREFECT_API_URL is not set: start `prefect server start` and export PREFECT_API_URL=http://127.0.0.1:4200/api", file=sys.stderr)
        return 2
    prefect_serve(deployment(cron, name))
    return 0
