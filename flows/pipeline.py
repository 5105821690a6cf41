"""The pipeline as one Prefect flow run: what ``dvc repro`` would run, a task run per dvc.yaml stage.

Every entry point goes through it — ``qaug flow``, ``qaug run`` when a Prefect server is watching, and the
scheduled deployment (``prefect.yaml``) — so dvc.lock always describes the outputs and a rerun runs only what
changed. The task graph is DVC's (each stage waits for the stages whose outputs it reads); stages run one at
a time because DVC holds the repository's lock while it runs one.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.runtime import flow_run

from flows.experiment import current
from flows.names import describe
from flows.record import commit_results, push_data
from flows.steps import publish_report, reproduce_stage
from qaug.lifeline import stopping_first
from qaug.params import ParamsError, load_params
from qaug.repro import exclusive, pipeline_stages
from tasks.preflight import before_repro
from tasks.stages import NAMES, tags


def run_name() -> str:
    """What the run is about rather than Prefect's random adjective-animal: "qgan/hybridq · customised · seed 3",
    the DVC experiment's name first under ``dvc exp run``."""
    params = flow_run.parameters or {}
    try:
        raw = load_params(Path(params.get("root", ".")) / "params.yaml")
    except (OSError, ParamsError):
        return "qaug (params.yaml unreadable)"
    return describe(raw, forced=bool(params.get("force")), experiment=current())


@task(task_run_name="pre-flight check")
def preflight(root: str, force: bool) -> None:
    """Params, data, classes and backend, before dvc repro deletes any stage's outputs."""
    before_repro(load_params(Path(root) / "params.yaml"), Path(root), force)


@flow(name="qaug-pipeline", flow_run_name=run_name)
def pipeline(root: str = ".", force: bool = False, commit_branch: str | None = None, push: bool = False) -> dict[str, str]:
    """Check the inputs, bring every stage up to date through DVC, publish the report; optionally record the
    run (dvc.lock, params, metrics and plots committed to ``commit_branch``) and ``dvc push`` its data.
    Returns each stage's outcome ("ran", "restored" from DVC's run cache, or "unchanged")."""
    outcome, done = {}, {}
    with exclusive(Path(root)), stopping_first():  # first: a second run must not even probe DVC or the backend
        preflight(root, force)
        raw = load_params(Path(root) / "params.yaml")
        for name, upstream in pipeline_stages(Path(root)):
            run = reproduce_stage.with_options(tags=tags(name, raw) if name in NAMES else ["qaug"])
            future = run.submit(name, root, force, wait_for=[done[u] for u in upstream])
            outcome[name] = future.result()  # raises the stage's error: later stages do not start
            done[name] = future
        publish_report(root)
        if commit_branch:
            commit_results(root, commit_branch)
        if push:
            push_data(root)
    return outcome
