"""Prefect tasks shared by the flows: run one stage, publish the run's report as artifacts."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks.report import comparison_rows, summary_markdown
from tasks.stages import get, tags


@task(task_run_name="{name}")
def _run_stage(name: str, raw: dict, root: str = ".") -> dict:
    return get(name).run(raw, Path(root))


def run_stage(name: str, raw: dict, root: str = ".") -> dict:
    """One pipeline stage (``tasks.stages``) as a task run tagged for concurrency limits; its summary as the result."""
    return _run_stage.with_options(tags=tags(name, raw))(name, raw, root)


@task
def publish_report(root: str = ".") -> None:
    """A markdown summary and a metrics table, shown on the flow run's Artifacts tab."""
    create_markdown_artifact(key="qaug-summary", markdown=summary_markdown(Path(root)), description="qaug run summary")
    create_table_artifact(key="qaug-metrics", table=comparison_rows(Path(root)), description="baseline vs augmented test metrics")
