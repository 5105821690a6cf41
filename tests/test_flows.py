"""The Prefect flows under a temporary server: stages as task runs, artifacts, the schedule."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

from flows.pipeline import augmentation_pipeline
from flows.scheduled import deployment
from flows.stage import stage_flow
from flows.steps import run_stage
from tasks.stages import IBM_TAG, NAMES
from tests.pipeline_helpers import tiny_params


@pytest.fixture(scope="module")
def flow_run(prefect_api, tmp_path_factory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("flow")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    state = augmentation_pipeline(params_path="params.yaml", root=str(root), return_state=True)
    return root, state


def test_pipeline_flow_runs_every_stage_as_a_task_in_order(flow_run) -> None:
    root, state = flow_run
    assert state.is_completed()
    summaries = state.result()
    assert list(summaries) == list(NAMES)
    assert (root / "data/augmented/train.npz").is_file() and (root / "metrics/comparison.json").is_file()
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    stage_runs = sorted((r for r in runs if r.name in NAMES), key=lambda r: r.start_time)
    assert [r.name for r in stage_runs] == list(NAMES)
    assert all(r.state.is_completed() for r in stage_runs)


def test_pipeline_flow_publishes_summary_and_metrics_table(flow_run) -> None:
    root, state = flow_run
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["qaug-summary", "qaug-metrics"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])),
        )
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == {"qaug-summary", "qaug-metrics"}
    comparison = json.loads((root / "metrics/comparison.json").read_text())
    assert f"| accuracy | {comparison['baseline']['accuracy']:.3f} | {comparison['augmented']['accuracy']:.3f} |" in by_key["qaug-summary"].data
    table = json.loads(by_key["qaug-metrics"].data)
    assert table[0]["metric"] == "accuracy" and table[0]["delta"] == pytest.approx(comparison["delta"]["accuracy"])


def test_bad_params_fail_the_flow_before_any_stage(prefect_api, tmp_path) -> None:
    raw = tiny_params()
    raw["filter"]["tau"] = 2.0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    state = augmentation_pipeline(params_path="params.yaml", root=str(tmp_path), return_state=True)
    assert state.is_failed() and "filter.tau must be in [0, 1]" in str(state.message)
    assert not (tmp_path / "data").exists()


def test_a_single_stage_as_its_own_flow_run(flow_run) -> None:
    root, _ = flow_run
    state = stage_flow("merge", root=str(root), return_state=True)
    assert state.is_completed() and state.result()["total"] > 0


def test_scheduled_deployment_carries_the_cron_schedule(prefect_api, tmp_path) -> None:
    deployment_id = deployment("0 3 * * *", "nightly-test", root=tmp_path).apply()
    with get_client(sync_client=True) as client:
        found = client.read_deployment_by_name("qaug-dvc-repro/nightly-test")
    assert found.id == deployment_id
    assert [s.schedule.cron for s in found.schedules] == ["0 3 * * *"]
    assert found.parameters == {"root": str(tmp_path)} and "qaug" in found.tags


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
