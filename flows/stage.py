"""One stage as its own flow run: what ``qaug stage NAME`` runs when a Prefect server is watching."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.steps import run_stage
from qaug.params import load_params


@flow(name="qaug-stage", flow_run_name="{name}")
def stage_flow(name: str, params_path: str = "params.yaml", root: str = ".") -> dict:
    return run_stage(name, load_params(Path(root) / params_path), root)
