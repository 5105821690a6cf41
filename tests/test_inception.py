"""Inception-v3 FID through torchmetrics from a local weights file (made here, randomly initialised: no download)."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from qaug.generation_metrics import frechet_distance
from qaug.inception import inception_features, load_fid_metric
from qaug.io import InputError
from qaug.params import ParamsError
from tasks.stages import get
from tests.pipeline_helpers import tiny_params


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """A state dict with the FID Inception-v3's keys and shapes, random values (what a user's file looks like)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    def no_download(*args, **kwargs):
        raise AssertionError("the test must not download")

    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
         mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None):
        torch.manual_seed(0)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("inception") / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), path)
    with mock.patch.object(fe, "load_state_dict_from_url", no_download):
        yield path


@pytest.fixture(scope="module")
def metric(weights):
    return load_fid_metric(weights, features=64)


def images(seed: int, n: int, channels: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.uniform(0, 1, (n, channels, 8, 8)) * 0.5 + shift, 0, 1).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 3])
def test_features_give_the_fid_that_torchmetrics_computes(metric, channels) -> None:
    real, fake = images(0, 16, channels), images(1, 16, channels, shift=0.2)
    ours = frechet_distance(inception_features(metric, real), inception_features(metric, fake))
    metric.reset()
    to_rgb = (lambda x: x) if channels == 3 else (lambda x: x.expand(-1, 3, -1, -1))
    metric.update(to_rgb(torch.as_tensor(real)), real=True)
    metric.update(to_rgb(torch.as_tensor(fake)), real=False)
    assert ours == pytest.approx(float(metric.compute()), rel=1e-4)


def test_identical_sets_score_zero_and_shifts_score_more(metric) -> None:
    real = inception_features(metric, images(0, 20, 1))
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-9)
    near, far = (inception_features(metric, images(2, 20, 1, shift=s)) for s in (0.05, 0.4))
    assert frechet_distance(real, near) < frechet_distance(real, far)
    assert inception_features(metric, images(0, 0, 1)).shape == (0, 64)


def test_a_wrong_weights_file_is_named_with_the_fix(tmp_path) -> None:
    junk = tmp_path / "inception.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, junk)
    with pytest.raises(InputError, match=r"metrics.inception_weights: .*inception.pth is not the FID Inception-v3 state dict"):
        load_fid_metric(junk)
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(2, 2)}, junk)  # one right key, wrong shape, the rest missing
    with pytest.raises(InputError, match="is not the FID Inception-v3 state dict"):
        load_fid_metric(junk)
    pickled = tmp_path / "pickled.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(1), "extra": object()}, pickled)  # would need full unpickling
    with pytest.raises(InputError, match="is not the FID Inception-v3 state dict"):
        load_fid_metric(pickled)
    with pytest.raises(InputError, match="does not exist; set metrics.inception_weights"):
        load_fid_metric(tmp_path / "missing.pth")


def test_params_name_the_field_before_any_stage_runs(tmp_path) -> None:
    stage = get("score_generated")
    with pytest.raises(ParamsError, match=r"metrics.inception_weights '.*nope.pth' is not a file; set metrics.inception_weights"):
        stage.parse({**tiny_params(), "metrics": {"inception_weights": str(tmp_path / "nope.pth")}})
    with pytest.raises(ParamsError, match=r"metrics.inception_features must be one of \(64, 192, 768, 2048\)"):
        stage.parse({**tiny_params(), "metrics": {"inception_features": 100}})


def test_score_generated_adds_inception_fid_per_class_only_with_weights(weights, tmp_path, capsys) -> None:
    raw = tiny_params()
    root = tmp_path / "project"
    for name in ("ingest", "train_baseline", "analyze_errors", "train_generator", "generate", "filter"):
        get(name).run(raw, root)
    get("score_generated").run(raw, root)
    plain = json.loads((root / "metrics/generation.json").read_text())
    assert plain["inception"]["enabled"] is False and "set metrics.inception_weights" in capsys.readouterr().out
    assert plain["accepted"]["inception_fid"] is None

    raw["metrics"] = {"inception_weights": str(weights), "inception_features": 64}
    summary = get("score_generated").run(raw, root)
    scored = json.loads((root / "metrics/generation.json").read_text())
    info = scored["inception"]
    assert info["enabled"] and info["features"] == 64 and info["weights"] == weights.name and len(info["sha256"]) == 64
    assert info["published_weights"] is False and "not comparable to published ones" in capsys.readouterr().out  # random weights
    for key in ("candidates", "accepted"):
        per_class = [v["inception_fid"] for v in scored[key]["per_class"].values() if v["n"] >= 2]
        assert per_class and all(v >= 0 for v in per_class)
        assert scored[key]["inception_fid"] == pytest.approx(np.mean(per_class))
        assert scored[key]["pooled_inception_fid"] >= 0
        assert scored[key]["frechet_distance"] == plain[key]["frechet_distance"]  # the other scores are untouched
    assert summary["inception_fid"] == scored["accepted"]["inception_fid"]


def test_generator_quality_over_training_adds_inception_fid_with_weights(weights, tmp_path) -> None:
    """qgan.score_every with metrics.inception_weights: Inception FID per class and mean at every scoring (HybridQ
    Fig. 4a), next to the judge-feature FD/KID, which stay what they are without it; the generator is unchanged."""
    import csv

    raw = tiny_params()
    raw["qgan"].update(score_every=4, score_samples=6)
    plain, scored = tmp_path / "plain", tmp_path / "scored"
    for name in ("ingest", "train_baseline", "analyze_errors", "train_generator"):
        get(name).run(raw, plain)
    for rel in ("data/prepared/train.npz", "data/analysis/errors.json"):
        (scored / rel).parent.mkdir(parents=True, exist_ok=True)
        (scored / rel).write_bytes((plain / rel).read_bytes())
    get("train_generator").run({**raw, "metrics": {"inception_weights": str(weights), "inception_features": 64}}, scored)
    before, after = (list(csv.DictReader((root / "plots/data/generator_quality.csv").open())) for root in (plain, scored))
    assert "inception_fid" not in before[0] and [int(r["step"]) for r in after] == [4, 8]
    for row, base in zip(after, before):
        per_class = [float(row[f"inception_fid_{c}"]) for c in ("0", "1", "2")]
        assert all(v >= 0 for v in per_class) and float(row["inception_fid"]) == pytest.approx(np.mean(per_class), abs=1e-5)
        assert {k: row[k] for k in base} == base  # FD and KID in the judge's features: the same numbers
    metrics = json.loads((scored / "metrics/generator.json").read_text())
    assert metrics["quality_inception"]["weights"] == weights.name and metrics["quality"]["inception_fid"] >= 0
    assert (scored / "models/generator.pt").read_bytes() == (plain / "models/generator.pt").read_bytes()
