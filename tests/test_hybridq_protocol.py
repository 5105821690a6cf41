"""HybridQ's evaluation protocol: a mixing ratio α in merge, a torchvision ResNet as the downstream classifier
(from scratch or from a weights file the test writes), end to end on synthetic colour data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision
import yaml

from qaug.io import load_arrays, load_torch
from qaug.params import ParamsError, section
from qmodels.resnet import ResNetClassifier, ResNetTrainConfig, resnet_proba, train_resnet
from tasks.evaluate import EvaluateParams
from tasks.report import summary_markdown
from tasks.merge import mix, mixing_counts
from tasks.stages import STAGES, get
from tests.pipeline_helpers import colour_folder, dvc_project, project_env, tiny_params


@pytest.mark.parametrize(("real", "alpha", "expected"), [
    ([100, 100, 10], 0.0, [0, 0, 0]),           # α = 0: no generated image
    ([100, 100, 10], 0.5, [100, 100, 10]),      # α = 0.5: as many generated as real, class by class
    ([100, 100, 10], 0.2, [25, 25, 2]),         # 0.25 · 210 = 52.5 → 52, split 100:100:10 by largest remainder
    ([12, 12, 12], 0.75, [36, 36, 36]),
])
def test_mixing_counts_follow_alpha_and_the_real_class_distribution(real, alpha, expected) -> None:
    counts = mixing_counts(np.array(real), alpha)
    assert counts.tolist() == expected
    if alpha:
        assert counts.sum() / (counts.sum() + sum(real)) == pytest.approx(alpha, abs=0.01)


def test_mix_draws_each_class_without_replacement_and_names_a_shortfall() -> None:
    labels = np.repeat(np.arange(3), 20)
    acc = {"images": np.arange(60, dtype=np.float32).reshape(60, 1, 1, 1), "labels": labels, "round": np.zeros(60, np.int64),
           "method": np.array("qgan")}
    picked = mix(acc, np.array([10, 10, 4]), 0.5, seed=0, names=["a", "b", "c"])
    assert np.bincount(picked["labels"]).tolist() == [10, 10, 4]
    assert len(set(picked["images"].ravel().tolist())) == 24  # no image twice
    assert np.array_equal(mix(acc, np.array([10, 10, 4]), 0.5, 0, ["a", "b", "c"])["images"], picked["images"])  # seeded
    with pytest.raises(ParamsError, match=r"merge.mixing_ratio 0.75 .*class c: 30 needed, 20 accepted.*augment.n_gen"):
        mix(acc, np.array([10, 10, 10]), 0.75, seed=0, names=["a", "b", "c"])


def test_evaluate_params_name_a_missing_weights_file(tmp_path) -> None:
    with pytest.raises(ParamsError, match="evaluate.weights.*not a file.*never downloads"):
        section(EvaluateParams, {"evaluate": {"classifier": "resnet18", "weights": str(tmp_path / "none.pth")}}, "evaluate")
    with pytest.raises(ParamsError, match="evaluate.weights.*resnet18 or resnet50"):
        section(EvaluateParams, {"evaluate": {"weights": str(tmp_path)}}, "evaluate")


def _colour_data(n: int = 36, size: int = 16):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 3
    images = rng.random((n, 3, size, size), dtype=np.float32) * 0.4
    images[np.arange(n), labels] += 0.6  # class c: channel c bright
    return images, labels


def test_resnet_learns_from_scratch_and_is_seeded() -> None:
    images, labels = _colour_data()
    cfg = ResNetTrainConfig(epochs=4, batch_size=8, lr=3e-3)
    first = train_resnet("resnet18", images, labels, 3, cfg)
    again = train_resnet("resnet18", images, labels, 3, cfg)
    assert first.history == again.history
    assert (resnet_proba(first.model, images).argmax(1) == labels).mean() > 0.8


def test_resnet_fine_tunes_from_a_weights_file_and_refuses_other_weights(tmp_path) -> None:
    imagenet_like = torchvision.models.resnet18(weights=None)  # 1000 classes, as torchvision's files are
    torch.save(imagenet_like.state_dict(), tmp_path / "resnet18.pth")
    state = load_torch(tmp_path / "resnet18.pth")
    model = ResNetClassifier("resnet18", 3)
    assert sorted(model.load_backbone(state)) == ["fc.bias", "fc.weight"]  # only the head starts fresh
    assert torch.equal(model.net.conv1.weight, imagenet_like.conv1.weight)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "resnet50.pth")
    with pytest.raises(ValueError, match="not resnet18 weights"):
        ResNetClassifier("resnet18", 3).load_backbone(load_torch(tmp_path / "resnet50.pth"))


def test_evaluate_with_a_resnet_compares_two_resnets_on_colour_images(tmp_path) -> None:
    colour_folder(tmp_path / "images")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18.pth")
    raw = tiny_params()
    raw["ingest"].update(source="folder", root=str(tmp_path / "images"), classes=[], channels="rgb", image_size=16,
                         train_per_class=10, val_per_class=6, test_per_class=8)
    raw["augment"].update(strategy="general", n_gen=30)
    raw["merge"] = {"mixing_ratio": 0.5}
    raw["evaluate"] = {"classifier": "resnet18", "weights": str(tmp_path / "resnet18.pth"), "epochs": 2, "batch_size": 8}
    for stage in STAGES:
        stage.run(raw, tmp_path)
    merge = json.loads((tmp_path / "metrics/merge.json").read_text())
    assert merge["mixing_ratio"] == 0.5 and merge["generated"] == merge["real"] == 30
    assert {c["generated"] for c in merge["per_class"].values()} == {10}
    comparison = json.loads((tmp_path / "metrics/comparison.json").read_text())
    assert comparison["classifier"] == "resnet18"
    for side in ("baseline", "augmented"):  # HybridQ's Table 2: accuracy, macro precision and recall
        assert {"precision", "recall"} <= set(comparison[side]["macro"]) and 0 <= comparison[side]["accuracy"] <= 1
    augmented = json.loads((tmp_path / "metrics/augmented.json").read_text())
    assert augmented["training"]["weights"] == "resnet18.pth" and augmented["training"]["generated"] == 30
    assert len(augmented["training"]["weights_sha256"]) == 64 and augmented["environment"]["device"] == "cpu"
    checkpoint = load_torch(tmp_path / "models/augmented.pt")
    assert checkpoint["classifier"] == "resnet18" and "net.fc.weight" in checkpoint["state_dict"]
    assert "Classifier: resnet18, trained on the real split" in summary_markdown(tmp_path)


def test_weights_of_another_architecture_are_named_before_training(tmp_path) -> None:
    from qaug.data import ImageSet
    from qaug.io import InputError
    from tasks.evaluate import fit_resnet, read_backbone

    torch.save(torchvision.models.resnet50(weights=None).state_dict(), tmp_path / "r50.pth")
    images, labels = _colour_data(6)
    data = ImageSet(images, labels, ("a", "b", "c"))
    params = EvaluateParams(classifier="resnet18", weights=str(tmp_path / "r50.pth"), epochs=1, batch_size=4)
    with pytest.raises(InputError, match="r50.pth: not resnet18 weights.*must be torchvision resnet18 weights"):
        fit_resnet(params, 0, data, data, torch.device("cpu"), read_backbone(params))


@pytest.mark.slow
def test_hybridq_with_a_resnet_and_alpha_through_dvc_repro_on_64px_colour(tmp_path) -> None:
    """The issue's end-to-end check: qgan/hybridq, the ResNet evaluator and α, 64×64 RGB, through `dvc repro`."""
    colour_folder(tmp_path / "images", per_class=30, size=64)
    root = dvc_project(tmp_path / "proj")
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["ingest"].update(source="folder", root=str(tmp_path / "images"), classes=[], channels="rgb", image_size=64,
                         train_per_class=12, val_per_class=8, test_per_class=10)
    raw["qgan"].update(model="hybridq", steps=4, batch_size=4)
    raw["hybridq"].update(sub_generators=2, qubits=3, layers=1)
    raw["augment"].update(strategy="general", n_gen=36)
    raw["filter"].update(min_accepted_fraction=0.0)
    raw["merge"] = {"mixing_ratio": 0.5}
    raw["evaluate"] = {"classifier": "resnet18", "weights": None, "epochs": 1, "batch_size": 8, "lr": 0.001}
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=root, env=project_env(), capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    merged = load_arrays(root / "data/augmented/train.npz")
    assert merged["images"].shape[1:] == (3, 64, 64) and int(merged["source"].sum()) == 36  # α 0.5: 36 generated for 36 real
    comparison = json.loads((root / "metrics/comparison.json").read_text())
    assert comparison["classifier"] == "resnet18"
    assert json.loads((root / "metrics/generator.json").read_text())["model"] == "hybridq"
