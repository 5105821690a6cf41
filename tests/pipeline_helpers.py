"""Tiny pipeline params shared by the stage, dvc and flow tests (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]


def tiny_params() -> dict:
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    raw["ingest"].update(train_per_class=12, val_per_class=10, test_per_class=10, image_size=8)
    raw["baseline"].update(epochs=2, min_steps=90, max_restarts=0)
    raw["qgan"].update(steps=8, layers=2, grid=4, batch_size=8)
    raw["augment"].update(n_gen=12)
    raw["filter"].update(tau=0.34, max_rounds=2)
    raw["checks"].update(max_duplicate_fraction=0.5)
    return raw
