"""The Prefect flows under a temporary server: the pipeline through DVC as task runs (logs, progress, artifacts,
DVC's graph), busy projects and a server that is down, the deployment run by a worker from its work pool."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import yaml
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId, LogFilter,
                                            LogFilterTaskRunId)
from prefect.settings import get_current_settings

from flows.automations import ZOMBIES
from flows.pipeline import pipeline
from flows.record import commit_results
from flows.stage import stage_flow
from flows.steps import PROGRESS, metric_rows, run_stage
from qaug.checks import check_image_set
from qaug.data_docs import SITE, network_loads
from qaug.io import write_json
from qaug.repro import PipelineBusy, exclusive, repro_stage
from tasks.stages import IBM_TAG, NAMES
from tests.pipeline_helpers import dvc_project, project_env, tiny_params


@pytest.fixture(scope="module")
def flow_run(prefect_api, tmp_path_factory) -> tuple[Path, object]:
    from prefect.logging.handlers import APILogHandler

    root = dvc_project(tmp_path_factory.mktemp("flow") / "proj")
    state = pipeline(root=str(root), return_state=True)
    for name in ("prefect.flow_runs", "prefect.task_runs"):  # every log line sent before the tests read them back
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, APILogHandler):
                handler.flush()
    return root, state


def _task_runs(state) -> dict:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    return {r.name: r for r in runs}


def _artifacts(state, *keys: str) -> dict:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys))),
                                      flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    return {a.key: a for a in found}


def _dvc(root: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=project_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _upstream_from_dvc_yaml(root: Path) -> dict[str, set[str]]:
    """Each stage's upstream stages read straight from dvc.yaml: the stages whose outputs it lists as deps."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    names = lambda entries: {next(iter(e)) if isinstance(e, dict) else e for e in entries or []}  # noqa: E731
    writes = {s: names(v.get("outs")) | names(v.get("metrics")) | names(v.get("plots")) for s, v in stages.items()}
    return {s: {u for u, outs in writes.items() if outs & names(v.get("deps"))} for s, v in stages.items()}


def test_the_flow_runs_what_dvc_repro_runs_and_leaves_dvc_true(flow_run) -> None:
    root, state = flow_run
    assert state.is_completed(), state.message
    assert state.result() == dict.fromkeys(NAMES, "ran")
    status = _dvc(root, "status")
    assert "up to date" in status and "not in cache" not in status, status  # dvc.lock describes every output, cached
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert sorted(lock) == sorted(NAMES)


def test_task_runs_follow_dvc_yaml_graph_and_are_named_by_stage(flow_run) -> None:
    root, state = flow_run
    runs = _task_runs(state)
    stage_runs = {name: runs[name] for name in NAMES}
    by_id = {str(r.id): name for name, r in runs.items()}
    expected = _upstream_from_dvc_yaml(root)
    for name, run in stage_runs.items():
        upstream = {by_id[str(i.id)] for i in run.task_inputs.get("wait_for", [])}
        assert upstream == expected[name], name
    assert sum(r.name == "pre-flight check" for r in runs.values()) == 1
    started = sorted(stage_runs.values(), key=lambda r: r.start_time)
    assert all(a.end_time <= b.start_time for a, b in zip(started, started[1:]))  # one at a time (DVC's lock)
    params = yaml.safe_load((root / "params.yaml").read_text())
    with get_client(sync_client=True) as client:
        name = client.read_flow_run(state.state_details.flow_run_id).name
    method = params["augment"]["method"]
    model = f"/{params['qgan']['model']}" if method == "qgan" else ""
    assert name == f"{method}{model} · {params['augment']['strategy']} · seed {params['seed']}"  # e.g. "qgan/patch · customised · seed 0"


def test_every_stage_logs_its_work_and_training_shows_progress(flow_run) -> None:
    _, state = flow_run
    runs = _task_runs(state)
    with get_client(sync_client=True) as client:
        for name in NAMES:
            messages = [log.message for log in client.read_logs(LogFilter(task_run_id=LogFilterTaskRunId(any_=[runs[name].id])))]
            text = "\n".join(messages)
            assert f"Running stage '{name}'" in text and f"{name}: done in" in text, name
            assert "To enable auto staging" not in text and "dvc config core.autostage" not in text, name  # DVC's advice: DEBUG
            if name in ("train_baseline", "train_generator", "evaluate"):
                steps = [m for m in map(PROGRESS.search, messages) if m]
                assert steps and steps[-1]["done"] == steps[-1]["total"], name
            if name == "filter":
                assert "round 1:" in text
    progress = _artifacts(state, "qaug-train-baseline-progress", "qaug-train-generator-progress")
    assert {k: a.type for k, a in progress.items()} == {"qaug-train-baseline-progress": "progress", "qaug-train-generator-progress": "progress"}
    assert all(float(a.data) == 100.0 for a in progress.values())


def test_stage_metrics_and_figures_are_artifacts_rounded(flow_run) -> None:
    root, state = flow_run
    found = _artifacts(state, "qaug-train-baseline-baseline-metrics", "qaug-evaluate-comparison-metrics", "qaug-filter-accepted-samples",
                       "qaug-metrics", "qaug-summary")
    assert set(found) == {"qaug-train-baseline-baseline-metrics", "qaug-evaluate-comparison-metrics", "qaug-filter-accepted-samples",
                          "qaug-metrics", "qaug-summary"}
    assert found["qaug-filter-accepted-samples"].type == "image" and found["qaug-filter-accepted-samples"].data.startswith("data:image/png;base64,")
    comparison = json.loads((root / "metrics/comparison.json").read_text())
    rows = {r["metric"]: r["value"] for r in json.loads(found["qaug-evaluate-comparison-metrics"].data)}
    assert rows["delta.accuracy"] == float(f"{comparison['delta']['accuracy']:.4g}")
    headline = json.loads(found["qaug-metrics"].data)
    numbers = [v for row in headline for v in row.values() if isinstance(v, float)] + [v for v in rows.values() if isinstance(v, float)]
    assert numbers and all(v == float(f"{v:.4g}") for v in numbers)


def test_data_checks_are_data_docs_and_artifacts(flow_run) -> None:
    root, state = flow_run
    index = root / SITE / "index.html"
    assert index.is_file() and network_loads(index.read_text()) == set()
    found = _artifacts(state, "qaug-data-checks-all", "qaug-summary")
    rows = json.loads(found["qaug-data-checks-all"].data)
    assert {r["set"] for r in rows} == {"candidates", "accepted", "merged"} and all(r["passed"] for r in rows)
    assert f"Data Docs: {index.resolve().as_uri()}" in found["qaug-summary"].data


def test_a_stage_failing_its_data_checks_publishes_them(prefect_api, tmp_path, monkeypatch) -> None:
    import flows.steps

    def failing_filter(name, root, force):
        report = check_image_set("accepted", np.zeros((2, 1, 4, 4), np.float32), np.array([0, 1]), num_classes=3,
                                 image_shape=(1, 4, 4), required_per_class=[1, 1, 1], raise_on_failure=False)
        write_json(root / "data/checks/accepted.json", report.to_dict())
        yield "data checks failed for 'accepted'"
        raise RuntimeError("dvc repro failed")

    monkeypatch.setattr(flows.steps, "repro_stage", failing_filter)

    @flow
    def one_stage() -> str:
        return flows.steps.reproduce_stage("filter", str(tmp_path))

    state = one_stage(return_state=True)
    assert state.is_failed()
    rows = json.loads(_artifacts(state, "qaug-data-checks-failed")["qaug-data-checks-failed"].data)
    assert {r["set"] for r in rows} == {"accepted"} and not any(r["passed"] for r in rows)
    assert {r["expectation"] for r in rows} == {"expect_column_unique_value_count_to_be_between",
                                                "expect_column_pair_values_a_to_be_greater_than_b"}
    assert any(r["observed"] == "class 2: 0 of 1" for r in rows)
    assert (tmp_path / SITE / "index.html").is_file()


def test_metric_rows_flatten_nested_metrics_and_round() -> None:
    rows = metric_rows({"delta": {"accuracy": -0.019999999999999907}, "classes": ["0", "1"], "history": list(range(50)), "n": 3})
    assert rows == [{"metric": "delta.accuracy", "value": -0.02}, {"metric": "classes", "value": "0, 1"}, {"metric": "n", "value": 3}]


def test_a_second_run_reruns_nothing(flow_run) -> None:
    root, _ = flow_run
    lock = (root / "dvc.lock").read_bytes()
    stamp = (root / "models/baseline.pt").stat().st_mtime_ns
    state = pipeline(root=str(root), return_state=True)
    assert state.is_completed() and state.result() == dict.fromkeys(NAMES, "unchanged")
    assert (root / "dvc.lock").read_bytes() == lock and (root / "models/baseline.pt").stat().st_mtime_ns == stamp


def test_bad_params_fail_the_flow_before_any_stage(prefect_api, tmp_path) -> None:
    raw = tiny_params()
    raw["filter"]["tau"] = 2.0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    state = pipeline(root=str(tmp_path), return_state=True)
    assert state.is_failed() and "filter.tau must be in [0, 1]" in str(state.message)
    assert not (tmp_path / "data").exists()


def test_a_second_run_on_a_busy_project_is_refused_before_any_stage(flow_run) -> None:
    root, _ = flow_run
    with exclusive(root):
        state = pipeline(root=str(root), return_state=True)
    assert state.is_failed() and "another qaug run is running in" in str(state.message)
    assert not set(NAMES) & set(_task_runs(state))


def test_only_a_busy_repository_is_retried() -> None:
    from prefect.states import Failed

    from flows.steps import _busy

    assert _busy(None, None, Failed(data=PipelineBusy("another DVC command holds the lock")))
    assert not _busy(None, None, Failed(data=RuntimeError("stage filter failed")))  # deterministic: it would fail again


def test_a_held_dvc_lock_is_named_not_a_bare_exit_code(flow_run) -> None:
    from dvc.lock import make_lock

    root, _ = flow_run
    lock = make_lock(str(root / ".dvc" / "tmp" / "lock"), tmp_dir=str(root / ".dvc" / "tmp"))
    lock.lock()
    try:
        with pytest.raises(PipelineBusy, match="another DVC command holds .*stage merge did not start"):
            list(repro_stage("merge", root))
    finally:
        lock.unlock()


def _cli(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=root, env=project_env(**env), capture_output=True, text=True, timeout=900)


def test_a_server_that_is_down_costs_one_line(flow_run) -> None:
    root, _ = flow_run
    down = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}
    stage = _cli(root, "stage", "merge", **down)
    assert stage.returncode == 0, stage.stderr
    warnings = [line for line in stage.stderr.splitlines() if "Prefect" in line]
    assert len(warnings) == 1 and "does not answer" in warnings[0] and "running without Prefect" in warnings[0]
    assert "Traceback" not in stage.stderr
    run = _cli(root, "run", **down)  # falls back to plain dvc repro: one warning, not one per stage
    assert run.returncode == 0, run.stderr
    assert [line for line in run.stderr.splitlines() if "does not answer" in line] == warnings
    assert "pushed the run's data to the default DVC remote" in run.stdout
    flow_cli = _cli(root, "flow", **down)
    assert flow_cli.returncode == 2 and "Traceback" not in flow_cli.stderr
    (line,) = flow_cli.stderr.strip().splitlines()
    assert line.startswith(f"qaug flow: the Prefect server at {down['PREFECT_API_URL']} does not answer (")
    assert line.endswith("start it (`prefect server start`) or unset PREFECT_API_URL")


def test_the_nightly_deployment_runs_through_its_work_pool(flow_run) -> None:
    """prefect.yaml deployed with `qaug deploy`, a run triggered and executed by a worker process; the schedule's
    next runs are 03:00 in its time zone."""
    from prefect.deployments import run_deployment
    from prefect.server.schemas.schedules import CronSchedule

    root, _ = flow_run
    api = {"PREFECT_API_URL": get_current_settings().api.url}
    deployed = _cli(root, "deploy", **api)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    with get_client(sync_client=True) as client:
        found = client.read_deployment_by_name("qaug-pipeline/qaug-nightly")
        assert len(client.read_automations_by_name(ZOMBIES)) == 1  # deploy installs the zombie automation
        assert found.work_pool_name == "qaug" and found.global_concurrency_limit.limit == 1
        assert found.concurrency_options.collision_strategy == "ENQUEUE"
        (schedule,) = found.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 3 * * *", "UTC")
    start = datetime(2026, 3, 28, 12, tzinfo=timezone.utc)
    dates = asyncio.run(CronSchedule(cron=schedule.schedule.cron, timezone=schedule.schedule.timezone).get_dates(n=3, start=start))
    assert [d.isoformat() for d in dates] == ["2026-03-29T03:00:00+00:00", "2026-03-30T03:00:00+00:00", "2026-03-31T03:00:00+00:00"]

    run = run_deployment("qaug-pipeline/qaug-nightly", timeout=0)
    worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "qaug", "--run-once"], cwd=root,
                              env=project_env(**api), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = worker.communicate(timeout=600)
    finally:
        worker.kill()
    with get_client(sync_client=True) as client:
        final = client.read_flow_run(run.id)
    assert final.state.is_completed(), output
    assert "up to date" in _dvc(root, "status")


def test_a_single_stage_as_its_own_flow_run(flow_run) -> None:
    root, _ = flow_run
    state = stage_flow("merge", root=str(root), return_state=True)
    assert state.is_completed() and state.result()["total"] > 0


def test_ibm_stages_carry_the_queue_tag_and_its_limit_holds_them(prefect_api, monkeypatch) -> None:
    """Two runs' quantum stages on ibm: never overlap under `ibm-quantum` = 1; other stages are untagged."""
    import flows.steps
    from prefect.runtime import task_run

    windows: list[tuple[float, float, list[str]]] = []

    class Holding:  # stands in for a stage that holds IBM jobs for a while
        def run(self, raw, root):
            start = time.monotonic()
            time.sleep(0.8)
            windows.append((start, time.monotonic(), sorted(task_run.tags)))
            return {}

    monkeypatch.setattr(flows.steps, "get", lambda name: Holding())
    ibm = {"quantum": {"backend": "ibm:ibm_standin"}}

    @flow
    def one(name: str, raw: dict) -> None:
        run_stage(name, raw)

    with get_client(sync_client=True) as client:
        client.create_concurrency_limit(tag=IBM_TAG, concurrency_limit=1)
        try:
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda _: one("generate", ibm), range(2)))
        finally:
            client.delete_concurrency_limit_by_tag(IBM_TAG)
    (a0, a1, tags_a), (b0, b1, tags_b) = sorted(windows)
    assert tags_a == tags_b == sorted(["qaug", IBM_TAG])
    assert b0 >= a1  # the second waited for the first's slot
    windows.clear()
    one("merge", ibm)
    one("generate", {"quantum": {"backend": "fake:FakeBrisbane"}})
    one("generate", {**ibm, "augment": {"method": "dcgan"}})  # a classical generator runs no circuits
    assert [w[2] for w in windows] == [["qaug"], ["qaug"], ["qaug"]]


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, env=project_env(), timeout=900).stdout.strip()


def test_after_the_flow_dvc_repro_is_a_noop_and_a_param_reruns_only_downstream(flow_run) -> None:
    """Runs last: it changes the project's params."""
    root, _ = flow_run
    assert _ran(_dvc(root, "repro")) == []
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "first run")
    _dvc(root, "push")
    branch = _git(root, "branch", "--show-current")

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["filter"]["tau"] = 0.5
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    state = pipeline(root=str(root), commit_branch="qaug-results", return_state=True)
    assert state.is_completed(), state.message
    assert [name for name, outcome in state.result().items() if outcome == "ran"] == ["filter", "score_generated", "merge", "evaluate"]
    # the run recorded on its own branch, the checkout and the user's index untouched
    assert _git(root, "branch", "--show-current") == branch and _git(root, "diff", "--cached", "--name-only") == ""
    recorded = _git(root, "show", "--name-only", "--format=", "qaug-results").splitlines()
    assert "dvc.lock" in recorded and "params.yaml" in recorded and "metrics/comparison.json" in recorded
    assert _git(root, "show", "qaug-results:dvc.lock") == (root / "dvc.lock").read_text().strip()
    assert _git(root, "rev-parse", "qaug-results^") == _git(root, "rev-parse", branch)
    tip = _git(root, "rev-parse", "qaug-results")
    assert flow(lambda: commit_results(str(root), "qaug-results"))() is None and _git(root, "rev-parse", "qaug-results") == tip

    shown = _dvc(root, "metrics", "show")
    assert "metrics/summary.json" in shown and "accuracy_delta" in shown
    # the committed first run next to the workspace (what `qaug show --compare` does for experiments too)
    compared = _cli(root, "show", "--compare", branch, "workspace", "--json")
    assert compared.returncode == 0, compared.stderr
    runs = json.loads(compared.stdout)
    assert (runs[branch]["param filter.tau"], runs["workspace"]["param filter.tau"]) == (0.34, 0.5)
    assert [label for label in runs[branch] if label.startswith("param ")] == ["param filter.tau"]  # only what differs
    assert json.loads((root / "metrics/summary.json").read_text())["accuracy_delta"] == pytest.approx(
        json.loads((root / "metrics/comparison.json").read_text())["delta"]["accuracy"])
    columns = _dvc(root, "exp", "show", "--csv").splitlines()[0].split(",")
    metrics = list(json.loads((root / "metrics/summary.json").read_text()))
    assert set(metrics) < set(columns) and len(columns) == len(set(columns))  # flat, each number once
    assert not any(c.startswith(("environment", "per_class.", "delta.", "training.")) for c in columns), columns
    changed = _dvc(root, "exp", "show", "--csv", "--only-changed").splitlines()[0].split(",")
    assert "filter.tau" in changed and len(changed) <= 5 + 1 + len(metrics), changed  # what the README and docs/pipeline.md suggest fits a terminal
    committed = json.loads(_git(root, "show", f"{branch}:metrics/comparison.json"))
    assert runs[branch]["baseline accuracy"] == committed["baseline"]["accuracy"]
    assert runs["workspace"]["augmented accuracy"] == json.loads((root / "metrics/comparison.json").read_text())["augmented"]["accuracy"]
    for run in runs.values():
        assert run["backend"] == "exact" and 0 <= run["label fidelity, baseline HQCNN (candidates)"] <= 1
        assert run["Δ accuracy"] == pytest.approx(run["augmented accuracy"] - run["baseline accuracy"])

    # dataset versions: both runs' augmented sets, restored in a fresh clone from the default remote (../qaug-remote)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "tau 0.5")
    _dvc(root, "push")
    clone = root.parent / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True, env=project_env(), timeout=900)
    listed = _cli(clone, "datasets", "--json")
    assert listed.returncode == 0, listed.stderr
    versions = json.loads(listed.stdout)
    assert [v["accuracy_delta"] for v in versions] == [runs["workspace"]["Δ accuracy"], runs[branch]["Δ accuracy"]]
    oldest = versions[-1]
    assert oldest["method"] == params["augment"]["method"] and oldest["generated"] > 0
    restored = subprocess.run(oldest["restore"], shell=True, cwd=clone, env=project_env(), capture_output=True, text=True, timeout=900)
    assert restored.returncode == 0, restored.stderr
    path = clone / oldest["restore"].split(" -o ")[-1]
    assert hashlib.md5(path.read_bytes()).hexdigest() == oldest["md5"] != versions[0]["md5"]
    _dvc(clone, "pull")
    assert "up to date" in _dvc(clone, "status")
