"""What the Prefect UI shows of a run is true: a stage's warnings and errors at their levels, retry delays as numbers,
run names that say what runs, and no Failed run for a run that was refused."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.settings import get_current_settings

from qaug.settings import LOG_FORMAT
from tests.pipeline_helpers import project_env


def _flush_run_logs() -> None:
    from prefect.logging.handlers import APILogHandler

    for name in ("prefect.flow_runs", "prefect.task_runs"):  # every line sent before the test reads them back
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, APILogHandler):
                handler.flush()


def _record(name: str, level: int, message: str) -> str:
    """A line as `qaug stage` writes a log record of logger ``name``."""
    return logging.Formatter(LOG_FORMAT).format(logging.LogRecord(name, level, __file__, 1, message, None, None))


def test_a_stages_warnings_and_errors_reach_the_run_log_at_their_levels(prefect_api, tmp_path, monkeypatch) -> None:
    import flows.steps

    lines = {"Running stage 'merge':": logging.INFO,
             _record("qaug.merge", logging.INFO, "merged 36 images"): logging.INFO,
             _record("qaug.filter", logging.WARNING, "class 2: 1 of 4 candidates accepted"): logging.WARNING,
             _record("qaug.merge", logging.ERROR, "accepted.npz has no class 2"): logging.ERROR,
             "WARNING: some of the stage's outputs were not cached": logging.WARNING,  # DVC's own
             "ERROR: failed to reproduce 'merge': failed to run: qaug stage merge, exited with 1": logging.ERROR,
             "qaug stage: params.yaml: merge.ratio must be positive": logging.ERROR}

    def stage_output(name, root, force):
        yield from lines

    monkeypatch.setattr(flows.steps, "repro_stage", stage_output)

    @flow
    def one_stage() -> str:
        return flows.steps.reproduce_stage("merge", str(tmp_path))

    state = one_stage(return_state=True)
    assert state.is_completed(), state.message
    _flush_run_logs()
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        (task_run,) = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    levels = {log.message: log.level for log in logs}
    assert {line: levels.get(line) for line in lines} == lines
    # the UI formats this number as the task's retry delay; a list of delays showed as "NaNs"
    assert task_run.empirical_policy.retries == 4 and isinstance(task_run.empirical_policy.retry_delay, (int, float))


def test_every_task_with_retries_has_one_delay() -> None:
    """The UI shows a task's retry delay as seconds: a list (escalating delays) shows as "NaNs"."""
    from prefect import Task

    import flows.pipeline
    import flows.record
    import flows.stage
    import flows.steps
    import grid.engine

    tasks = [t for m in (flows.pipeline, flows.record, flows.stage, flows.steps, grid.engine) for t in vars(m).values() if isinstance(t, Task)]
    assert len(tasks) >= 6
    for t in tasks:
        assert t.retry_delay_seconds is None or isinstance(t.retry_delay_seconds, (int, float)), t.name


def test_run_names_say_method_model_strategy_seed_and_experiment() -> None:
    from flows.names import describe

    raw = {"seed": 3, "augment": {"method": "qgan", "strategy": "customised"}, "qgan": {"model": "hybridq"}}
    assert describe(raw) == "qgan/hybridq · customised · seed 3"
    assert describe(raw, forced=True, experiment="tau-05") == "tau-05 · qgan/hybridq · customised · seed 3 · forced"
    raw["augment"] = {"method": "dcgan", "strategy": "general"}
    assert describe(raw) == "dcgan · general · seed 3"


def test_a_refused_concurrent_run_makes_no_flow_run_and_no_traceback(prefect_api, tmp_path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; from qaug.repro import exclusive\n"
                               "with exclusive(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(120)", str(tmp_path)],
                              env=project_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with get_client(sync_client=True) as client:
            pipelines = FlowFilter(name=FlowFilterName(any_=["qaug-pipeline"]))
            before = {r.id for r in client.read_flow_runs(flow_filter=pipelines)}
            started = time.time()
            cli = subprocess.run([sys.executable, "-m", "cli", "flow"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                                 env=project_env(PREFECT_API_URL=get_current_settings().api.url))
            after = {r.id for r in client.read_flow_runs(flow_filter=pipelines)}
    finally:
        holder.kill()
    assert cli.returncode == 2, cli.stderr
    (line,) = cli.stderr.strip().splitlines()
    assert line.startswith(f"qaug flow: another qaug run is running in {tmp_path.resolve()} (pid {holder.pid})"), line
    assert after == before, f"{len(after - before)} flow run(s) made in {time.time() - started:.0f} s"


def test_grid_task_runs_carry_their_stages_log_lines(prefect_api, tmp_path) -> None:
    """A grid stage run in a worker process (as `qaug grid` runs it): its stage's INFO lines in its task run's log."""
    from prefect.client.schemas.filters import LogFilterTaskRunId
    from prefect.task_runners import ProcessPoolTaskRunner

    from grid.engine import stage_task
    from grid.plan import StageRun
    from tests.pipeline_helpers import tiny_params

    run = StageRun("ingest", "k0", tiny_params(), (), "ingest · tiny · seed 0")

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def one_cell() -> str:
        future = stage_task.submit(run, str(tmp_path / "store"), {})
        future.result()
        return future.task_run_id

    state = one_cell(return_state=True)
    assert state.is_completed(), state.message
    task_run_id = state.result()
    deadline = time.monotonic() + 30  # the worker process sends its log lines on its own schedule
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(LogFilter(task_run_id=LogFilterTaskRunId(any_=[task_run_id])))
        if any(log.name == "qaug.ingest" for log in logs):
            break
        time.sleep(1)
    ingested = [log for log in logs if log.name == "qaug.ingest"]
    assert ingested and ingested[0].message.startswith("ingested ") and ingested[0].level == logging.INFO, [log.message for log in logs]


def test_a_dvc_experiment_is_one_flow_run_named_after_it(prefect_api, tmp_path, monkeypatch) -> None:
    """`dvc exp run` runs `qaug stage NAME` once per stage with DVC_EXP_NAME set: one flow run for the experiment,
    a task run per stage with its log lines; a stage of no experiment keeps its own flow run."""
    import uuid

    import yaml
    from prefect.client.schemas.filters import FlowRunFilterTags, LogFilterTaskRunId

    from cli.main import main
    from tests.pipeline_helpers import tiny_params

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    experiment = f"exp-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("DVC_EXP_NAME", experiment)
    with get_client(sync_client=True) as client:
        stage_runs = lambda: {r.id for r in client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["qaug-stage"])))}  # noqa: E731
        before = stage_runs()
        for name in ("ingest", "train_baseline"):
            assert main(["stage", name]) == 0
        _flush_run_logs()
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"dvc-exp:{experiment}"])))
        assert stage_runs() == before  # no flow run per stage
        (run,) = runs
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        ingest = next(t for t in tasks if t.name == "ingest")
        logs = client.read_logs(LogFilter(task_run_id=LogFilterTaskRunId(any_=[ingest.id])))
    assert run.name == f"{experiment} · qgan/patch · customised · seed 0" and run.state.is_completed()
    assert sorted(t.name for t in tasks) == ["ingest", "train_baseline"] and all(t.state.is_completed() for t in tasks)
    assert any(log.name == "qaug.ingest" and log.message.startswith("ingested ") for log in logs), [log.message for log in logs]
