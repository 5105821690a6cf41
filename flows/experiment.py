"""Under ``dvc exp run``: one flow run per experiment, a task run per stage, while a Prefect server watches.

DVC runs each stage of an experiment as its own ``qaug stage`` process, so no Prefect flow spans the
experiment (each stage opened its own flow run: one experiment scattered into nine). DVC names every experiment
in ``DVC_EXP_NAME`` (a random name when not given), and the stages find their flow run by it: the first makes it
(flow ``qaug-experiment``, named "<experiment> · qgan/patch · customised · seed 0", tagged ``dvc-exp:<name>``),
each stage adds its task run with its log lines, and leaves the run Completed (the next stage reopens it) or
Failed with the stage. These runs are made through the API, not by Prefect's flow engine: they send no
heartbeats, so the zombie automation does not watch them.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EXPERIMENT = "DVC_EXP_NAME"  # set by DVC 3 for every stage of `dvc exp run` (dvc/repo/experiments/queue/base.py)
FLOW = "qaug-experiment"


def current() -> str | None:
    """The DVC experiment this process runs a stage of, if any."""
    return os.environ.get(EXPERIMENT) or None


def _experiment_run(client, experiment: str, raw: dict):
    """The experiment's flow run, made by its first stage."""
    from prefect import Flow
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterTags
    from prefect.states import Running

    from flows.names import describe

    tag = f"dvc-exp:{experiment}"
    found = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW])),
                                  flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])), limit=1)
    if found:
        client.set_flow_run_state(found[0].id, Running(), force=True)
        return found[0]
    return client.create_flow_run(Flow(fn=lambda: None, name=FLOW), name=describe(raw, experiment=experiment), tags=["qaug", tag],
                                  state=Running())


@contextmanager
def _logs_to(flow_run_id, task_run_id) -> Iterator[None]:
    """The stage's log lines (loggers ``qaug.*``) at INFO and above into the task run's log, at their levels."""
    from prefect.logging.handlers import APILogHandler

    class Ids(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.flow_run_id, record.task_run_id = flow_run_id, task_run_id
            return True

    handler = APILogHandler()
    handler.addFilter(Ids())
    qaug = logging.getLogger("qaug")
    level = qaug.level
    qaug.addHandler(handler)
    qaug.setLevel(min(level or logging.INFO, logging.INFO))
    try:
        yield
    finally:
        handler.flush()
        qaug.removeHandler(handler)
        qaug.setLevel(level)


def _tag_limits(task_run):
    """The task run's tag concurrency limits (``ibm-quantum``: one IBM queue at a time), held as Prefect's task
    engine holds them (its private helper: the public one warns about every tag without a limit)."""
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.concurrency._sync import concurrency

    return concurrency(names=[f"tag:{t}" for t in task_run.tags], occupy=1, lease_duration=60, suppress_warnings=True,
                       holder=ConcurrencyLeaseHolder(type="task_run", id=task_run.id))


def run_stage(name: str, raw: dict, experiment: str, root: str = ".") -> dict:
    """Stage ``name`` of ``experiment`` in this process, as a task run of the experiment's flow run."""
    from prefect import Task
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Failed, Running

    from tasks.stages import get, tags

    with get_client(sync_client=True) as client:
        run = _experiment_run(client, experiment, raw)
        task = Task(fn=lambda: None, name=name, tags=tags(name, raw))
        task_run = client.create_task_run(task, flow_run_id=run.id, dynamic_key=f"{name}-{uuid.uuid4().hex[:8]}", name=name,
                                          state=Running())
        try:
            with _tag_limits(task_run), _logs_to(run.id, task_run.id):
                summary = get(name).run(raw, Path(root))
        except BaseException as err:
            why = f"stage {name} failed: {type(err).__name__}: {err}"
            client.set_task_run_state(task_run.id, Failed(message=why), force=True)
            client.set_flow_run_state(run.id, Failed(message=why), force=True)
            raise
        client.set_task_run_state(task_run.id, Completed(), force=True)
        client.set_flow_run_state(run.id, Completed(message=f"{experiment}: stage {name} done"), force=True)
    return summary
