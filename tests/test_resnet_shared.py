"""The real-only ResNet trained once (stage resnet_baseline) and reused by evaluate: the same bytes as evaluate
training it beside its own model, as it did before, and one training per (regime, seed) in a ResNet grid."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from grid.plan import plan
from grid.spec import load_grid
from qaug.data import GENERATED, REAL
from qaug.device import device_of
from qaug.io import InputError, image_set, load_arrays, load_image_set, save_arrays, write_json, write_metrics
from qaug.metrics import compare, headline
from qaug.params import section
from tasks.classifier import write_history
from tasks.resnet_judge import EvaluateParams, fit_resnet, resnet_summary
from tasks.stages import get
from tests.pipeline_helpers import tiny_params

JUDGE = {"classifier": "resnet18", "weights": None, "epochs": 2, "batch_size": 8, "lr": 0.003}
WRITTEN = ("metrics/augmented.json", "metrics/comparison.json", "metrics/summary.json", "plots/data/augmented_history.csv")


def _colour(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 8×8 RGB images of three classes (class c: channel c bright)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.random((n, 3, 8, 8), dtype=np.float32) * 0.4
    images[np.arange(n), labels] += 0.6
    return images, labels


def inputs(root: Path) -> None:
    """What ingest and merge would leave: a real training split, a test split and real + generated images."""
    classes = np.array(["0", "1", "2"])
    train, test, generated = _colour(18, 0), _colour(12, 1), _colour(9, 2)
    save_arrays(root / "data/prepared/train.npz", images=train[0], labels=train[1], classes=classes)
    save_arrays(root / "data/prepared/test.npz", images=test[0], labels=test[1], classes=classes)
    save_arrays(root / "data/augmented/train.npz", images=np.concatenate([train[0], generated[0]]),
                labels=np.concatenate([train[1], generated[1]]), classes=classes,
                source=np.repeat([REAL, GENERATED], [len(train[1]), len(generated[1])]))


def old_evaluate(raw: dict, root: Path, out: Path) -> None:
    """evaluate's ResNet branch as it was before resnet_baseline (tasks/evaluate.py at 890dab5): both ResNets trained
    in the stage, the baseline first, and the files written as it wrote them."""
    params, seed, device = section(EvaluateParams, raw, "evaluate"), raw["seed"], device_of(raw)
    data = load_arrays(root / "data/augmented/train.npz")
    merged, source = image_set(data, root / "data/augmented/train.npz"), data["source"]
    train, test = load_image_set(root / "data/prepared/train.npz"), load_image_set(root / "data/prepared/test.npz")
    base_result, baseline = fit_resnet(params, seed, train, test, device, None)
    result, metrics = fit_resnet(params, seed, merged, test, device, None)
    backend, base_loss = {"backend": "none (classical classifier)"}, base_result.history["loss"]
    generated = int((source == GENERATED).sum())
    metrics["quantum"] = backend
    metrics["training"] = resnet_summary(result, len(merged), params, seed) | {
        "baseline_final_loss": base_loss[-1], "baseline_collapsed": base_result.collapsed(), "generated": generated}
    comparison = compare(baseline, {k: v for k, v in metrics.items() if k not in ("training", "quantum")}) | {"quantum": backend}
    comparison["classifier"] = params.classifier
    write_history(out / WRITTEN[3], result)
    write_metrics(out / WRITTEN[0], metrics, device)
    write_metrics(out / WRITTEN[1], comparison, device)
    write_json(out / WRITTEN[2], headline(comparison, generated, len(merged) - generated))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def judged(tmp_path_factory) -> tuple[Path, dict]:
    """A run judged by a ResNet-18 from scratch: resnet_baseline, then evaluate reading it."""
    root = tmp_path_factory.mktemp("resnet")
    inputs(root)
    raw = tiny_params() | {"evaluate": JUDGE}
    get("resnet_baseline").run(raw, root)
    get("evaluate").run(raw, root)
    return root, raw


def test_evaluate_on_the_shared_baseline_writes_the_bytes_of_training_it_inline(judged, tmp_path) -> None:
    root, raw = judged
    old_evaluate(raw, root, tmp_path)
    for rel in WRITTEN:
        assert digest(root / rel) == digest(tmp_path / rel), rel
    comparison = json.loads((root / "metrics/comparison.json").read_text())
    record = json.loads((root / "metrics/resnet_baseline.json").read_text())
    assert comparison["baseline"] == {k: record[k] for k in comparison["baseline"]} and record["training"]["images"] == 18


def test_a_baseline_of_other_settings_is_refused_before_training(judged, tmp_path) -> None:
    root, raw = judged
    inputs(tmp_path)
    other = raw | {"seed": raw["seed"] + 1}
    get("resnet_baseline").run(other, tmp_path)  # the seed evaluate does not run with
    with pytest.raises(InputError, match=r"resnet_baseline.json holds the baseline of other settings .*'seed': 1.*"
                                         r"run stage resnet_baseline first"):
        get("evaluate").run(raw, tmp_path)
    assert not (tmp_path / "metrics/comparison.json").exists()
    get("resnet_baseline").run(raw, tmp_path)
    get("evaluate").run(raw, tmp_path)
    assert digest(tmp_path / "metrics/comparison.json") == digest(root / "metrics/comparison.json")


def test_under_the_hqcnn_judge_the_stage_trains_nothing(tmp_path) -> None:
    """No inputs at all: it reads none of them, and its record says why."""
    summary = get("resnet_baseline").run(tiny_params(), tmp_path)
    record = json.loads((tmp_path / "metrics/resnet_baseline.json").read_text())
    assert summary == {"trained": False} and record["trained"] is False and "no ResNet judges this run" in record["note"]
    assert record["params"]["evaluate"]["classifier"] == "hqcnn" and list(tmp_path.rglob("*")) == [
        tmp_path / "metrics", tmp_path / "metrics/resnet_baseline.json"]


GRID = {  # two methods (a control counts), two seeds, two mixing ratios, judged by a ResNet-18
    "params": {"evaluate": JUDGE, "augment": {"strategy": "general", "n_gen": 36}},
    "methods": {"proto": {"augment.method": "prototype"}},
    "controls": ["none", "duplicates"],
    "regimes": {"tiny": {}},
    "sweep": {"merge.mixing_ratio": [0.25, 0.5]},
    "seeds": [0, 1],
    "score_generated": False,
}


def test_a_resnet_grid_trains_one_baseline_per_regime_and_seed(tmp_path) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    (tmp_path / "g.yaml").write_text(yaml.safe_dump({"base": str(tmp_path / "params.yaml"), **GRID}))
    spec = load_grid(tmp_path / "g.yaml")
    cells = spec.cells()
    runs, per_cell = plan(cells, spec.score_generated)
    stages = [r.stage for r in runs.values()]
    assert stages.count("resnet_baseline") == 2 and stages.count("evaluate") == 8  # 2 augmenting arms × 2 ratios × 2 seeds
    for cell in cells:  # every cell of a seed (none itself, every method at every ratio) reads the same baseline run
        none = next(c for c in cells if c.arm.name == "none" and c.seed == cell.seed)
        shared = per_cell[none.id]["resnet_baseline"]
        assert per_cell[cell.id]["resnet_baseline"] == shared
        if cell.arm.kind == "augment":
            assert shared in runs[per_cell[cell.id]["evaluate"]].upstream
