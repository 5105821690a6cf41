"""Colour images end to end: an RGB image folder the test makes, through every stage."""

from __future__ import annotations

import json


from qaug.io import load_arrays
from tasks.stages import STAGES
from tests.pipeline_helpers import colour_folder, tiny_params


def test_an_rgb_folder_runs_through_the_whole_pipeline(tmp_path) -> None:
    colour_folder(tmp_path / "images")
    raw = tiny_params()
    raw["ingest"].update(source="folder", root=str(tmp_path / "images"), classes=[], channels="rgb", image_size=16,
                         train_per_class=10, val_per_class=6, test_per_class=8)
    raw["filter"]["min_accepted_fraction"] = 0.0
    for stage in STAGES:
        stage.run(raw, tmp_path)
    train = load_arrays(tmp_path / "data/prepared/train.npz")
    merged = load_arrays(tmp_path / "data/augmented/train.npz")
    assert train["images"].shape[1:] == (3, 16, 16) and merged["images"].shape[1:] == (3, 16, 16)
    assert train["classes"].tolist() == ["blue", "green", "red"]
    comparison = json.loads((tmp_path / "metrics/comparison.json").read_text())
    assert comparison["baseline"]["accuracy"] > 0.5  # colour is learnable through the 3-channel conv front end
    assert json.loads((tmp_path / "metrics/generation.json").read_text())["judge_test_accuracy"] > 0.5
