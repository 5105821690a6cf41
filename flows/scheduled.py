"""The nightly run: the pipeline flow (``flows.pipeline``) on a cron schedule.

Two ways to run it. ``prefect.yaml`` + ``prefect deploy`` puts it on a process work pool that a worker
(``prefect worker start --pool qaug``) executes: the team setup; the schedule lives on the server, and the
deployment's concurrency limit of 1 queues a run that finds the last one still going (runs that fell due while
no worker was up then run one after another). ``qaug schedule`` serves the same deployment from this process,
for a single machine. Scheduled runs stop after 12 hours (``nightly``); runs started by hand have no limit.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import serve as prefect_serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.pipeline import pipeline
from flows.server import api_url

# What prefect.yaml deploys: the pipeline flow with a time limit for unattended runs.
nightly = pipeline.with_options(timeout_seconds=12 * 3600)


def deployment(cron: str, name: str, root: Path | None = None, timezone: str = "UTC") -> RunnerDeployment:
    """The pipeline in ``root`` (default: here) on ``cron`` in ``timezone``, one run at a time (others queue)."""
    return nightly.to_deployment(
        name=name, schedules=[Cron(cron, timezone=timezone)], parameters={"root": str(root or Path.cwd())}, tags=["qaug"],
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
    )


def serve(cron: str, name: str, timezone: str = "UTC") -> int:
    """Register the deployment with the Prefect server and run it on ``cron`` until interrupted."""
    if not api_url():  # a temporary server would forget the schedule at exit
        print("qaug schedule: PREFECT_API_URL is not set: start `prefect server start` and export "
              "PREFECT_API_URL=http://127.0.0.1:4200/api", file=sys.stderr)
        return 2
    prefect_serve(deployment(cron, name, timezone=timezone))
    return 0


def deploy(name: str = "qaug-nightly", prefect_file: Path = Path("prefect.yaml")) -> int:
    """``prefect deploy`` of ``prefect.yaml``'s deployment ``name``, creating its process work pool when missing."""
    import subprocess

    import yaml
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    if not api_url():
        print("qaug deploy: PREFECT_API_URL is not set: a deployment needs a running server (`prefect server start`)", file=sys.stderr)
        return 2
    spec = next((d for d in yaml.safe_load(prefect_file.read_text())["deployments"] if d["name"] == name), None)
    if spec is None:
        print(f"qaug deploy: {prefect_file} has no deployment named {name!r}", file=sys.stderr)
        return 2
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=spec["work_pool"]["name"], type="process"))
        except ObjectAlreadyExists:
            pass
    cmd = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--prefect-file", str(prefect_file), "--name", name]
    return subprocess.run(cmd).returncode
