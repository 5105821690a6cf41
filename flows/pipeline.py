"""The pipeline's stages as one Prefect flow run, in this process (``qaug flow``)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.steps import publish_report, run_stage
from qaug.params import load_params
from tasks.preflight import check
from tasks.stages import STAGES


@flow(name="qaug-pipeline")
def augmentation_pipeline(params_path: str = "params.yaml", root: str = ".") -> dict:
    """Run every stage in order with the params file; returns each stage's summary."""
    raw = load_params(Path(root) / params_path)
    check(raw)  # data, classes and backend, before any stage writes (stages read data relative to this process)
    summaries = {stage.name: run_stage(stage.name, raw, root) for stage in STAGES}
    publish_report(root)
    return summaries
