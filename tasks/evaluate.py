"""Stage 8, evaluate: retrain the HQCNN on the augmented set (baseline settings and seed) and compare."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from qaug.data import GENERATED, ImageSet
from qaug.device import device_of
from qaug.io import InputError, image_set, load_arrays, load_image_set, load_torch, save_torch, sha256, write_json, write_metrics
from qaug.metrics import classification_metrics, compare, headline
from qaug.params import require, section, seed_of
from qaug.plots import confusion_matrices, loss_curves, per_class_accuracy
from qmodels.resnet import ResNetResult, ResNetTrainConfig, WeightsMismatch, resnet_proba, train_resnet
from tasks.classifier import BaselineParams, fit, load_model, save_model, score, training_summary, write_history
from tasks.layout import dep, journal, out, rooted
from tasks.quantum import QuantumParams, model_device, on_backend


@dataclass(frozen=True)
class EvaluateParams:
    """The downstream classifier the merged set is judged by. ``hqcnn``: the baseline HQCNN retrained (the
    ``baseline`` section's settings; its baseline is train_baseline's model). ``resnet18``/``resnet50``: HybridQ's
    protocol, a torchvision ResNet trained here twice with these settings and the run's seed, on the real training
    split (the baseline) and on the merged set; fine-tuned from ``weights`` (a local torchvision state dict, e.g.
    resnet18-f37072fd.pth; relative to the working directory) or from scratch."""

    classifier: Literal["hqcnn", "resnet18", "resnet50"] = "hqcnn"
    weights: str | None = None
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3

    def validate(self) -> None:
        require(self.epochs >= 1, "epochs", "must be at least 1")
        require(self.batch_size >= 2, "batch_size", "must be at least 2 (batch norm)")
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(self.weights is None or self.classifier != "hqcnn", "weights", "is for classifier resnet18 or resnet50")
        if self.weights is not None:  # checked with the params: a wrong path stops `qaug run` before stage 1
            require(Path(self.weights).expanduser().is_file(), "weights",
                    f"{self.weights!r} is not a file; give a local copy of torchvision's {self.classifier} weights "
                    "(qaug never downloads weights), or null to train from scratch")


@dataclass(frozen=True)
class EvaluatePaths:
    merged: Path = dep("data/augmented/train.npz")
    train: Path = dep("data/prepared/train.npz")
    test: Path = dep("data/prepared/test.npz")
    baseline_model: Path = dep("models/baseline.pt")
    baseline_history: Path = dep("plots/data/baseline_history.csv")
    model: Path = out("models/augmented.pt")
    metrics: Path = out("metrics/augmented.json")
    comparison: Path = out("metrics/comparison.json")
    summary: Path = out("metrics/summary.json")
    history: Path = out("plots/data/augmented_history.csv")
    accuracy_figure: Path = out("plots/per_class_accuracy.png")
    confusion_figure: Path = out("plots/confusion_matrices.png")
    loss_figure: Path = out("plots/classifier_loss.png")
    jobs: Path = journal("data/jobs/evaluate.json")


def run(params: BaselineParams, downstream: EvaluateParams, quantum: QuantumParams, seed: int, device: torch.device,
        paths: EvaluatePaths) -> dict:
    data = load_arrays(paths.merged, "images", "labels", "classes", "source")
    merged, source = image_set(data, paths.merged), data["source"]
    test = load_image_set(paths.test)
    start = time.perf_counter()
    if downstream.classifier == "hqcnn":
        result = fit(params, seed, merged, device)  # trained exactly, like the baseline
        scoring = model_device(quantum, device, [result.model.quantum])
        baseline_model = load_model(paths.baseline_model, test, paths.test, scoring)
        result.model.to(scoring)
        ran_on = scoring
        with on_backend(quantum, [baseline_model.quantum, result.model.quantum], paths.jobs) as run_on:
            run_on.announce("evaluate (baseline and augmented on the test split)", 2 * len(test))
            baseline = score(baseline_model, test)  # both scored here, on the same backend
            metrics = score(result.model, test)
        backend = run_on.record
        training = training_summary(result, len(merged), params, seed)
        base_loss = np.loadtxt(paths.baseline_history, delimiter=",", skiprows=1, ndmin=2)[:, 1].tolist()
        save_model(paths.model, result)
    else:
        train, backbone = load_image_set(paths.train), read_backbone(downstream)
        base_result, baseline = fit_resnet(downstream, seed, train, test, device, backbone)
        result, metrics = fit_resnet(downstream, seed, merged, test, device, backbone)
        backend, base_loss, ran_on = {"backend": "none (classical classifier)"}, base_result.history["loss"], device
        training = resnet_summary(result, len(merged), downstream, seed) | {"baseline_final_loss": base_loss[-1],
                                                                           "baseline_collapsed": base_result.collapsed()}
        save_torch(paths.model, {"classifier": downstream.classifier, "classes": [str(c) for c in test.classes],
                                 "state_dict": result.model.to("cpu").state_dict(), "history": result.history})
    metrics["quantum"] = backend
    metrics["training"] = training | {"generated": int((source == GENERATED).sum())}
    comparison = compare(baseline, {k: v for k, v in metrics.items() if k not in ("training", "quantum")}) | {"quantum": backend}
    if downstream.classifier != "hqcnn":
        comparison["classifier"] = downstream.classifier
    write_history(paths.history, result)
    write_metrics(paths.metrics, metrics, ran_on)
    write_metrics(paths.comparison, comparison, ran_on)
    generated = int((source == GENERATED).sum())
    write_json(paths.summary, headline(comparison, generated, len(merged) - generated))
    names = [str(c) for c in test.classes]
    per_class_accuracy(
        names, [baseline["per_class"][n]["accuracy"] for n in names], [metrics["per_class"][n]["accuracy"] for n in names],
        paths.accuracy_figure,
    )
    confusion_matrices(
        names, {"baseline": np.array(baseline["confusion_matrix"]), "augmented": np.array(metrics["confusion_matrix"])},
        paths.confusion_figure,
    )
    title = "HQCNN training loss" if downstream.classifier == "hqcnn" else f"{downstream.classifier} training loss"
    loss_curves({"baseline": base_loss, "augmented": result.history["loss"]}, paths.loss_figure, title=title, xlabel="epoch")
    return {
        "baseline_accuracy": baseline["accuracy"],
        "augmented_accuracy": metrics["accuracy"],
        "delta": metrics["accuracy"] - baseline["accuracy"],
        "seconds": round(time.perf_counter() - start, 1),
    }


def read_backbone(params: EvaluateParams) -> dict[str, torch.Tensor] | None:
    """The weights ``evaluate.weights`` names (once per stage: both ResNets start from them), or None."""
    if params.weights is None:
        return None
    backbone = load_torch(Path(params.weights).expanduser())
    return backbone["state_dict"] if isinstance(backbone, dict) and "state_dict" in backbone else backbone  # a checkpoint around them


def resnet_summary(result: ResNetResult, images: int, params: EvaluateParams, seed: int) -> dict:
    """How a ResNet was trained, stored next to its test metrics (the weights by name and SHA-256)."""
    weights = None if params.weights is None else Path(params.weights).expanduser()
    return {"images": images, "epochs": len(result.history["loss"]), "steps": result.steps, "classifier": params.classifier,
            "weights": None if weights is None else weights.name, "weights_sha256": None if weights is None else sha256(weights),
            "seed": seed, "final_loss": result.history["loss"][-1], "final_accuracy": result.history["accuracy"][-1],
            "collapsed": result.collapsed()}


def fit_resnet(params: EvaluateParams, seed: int, train: ImageSet, test: ImageSet, device: torch.device,
               backbone: dict[str, torch.Tensor] | None) -> tuple[ResNetResult, dict]:
    """A ResNet trained on ``train`` with ``params`` from ``backbone`` (None: from scratch), and its test metrics."""
    cfg = ResNetTrainConfig(epochs=params.epochs, batch_size=params.batch_size, lr=params.lr, seed=seed)
    try:  # the weights go in before the first step: another architecture's are named before any training
        result = train_resnet(params.classifier, train.images, train.labels, len(train.classes), cfg, backbone, device, progress=True)
    except WeightsMismatch as err:
        path = Path(params.weights or "").expanduser()
        raise InputError(f"{path}: {err}; evaluate.weights must be torchvision {params.classifier} weights", path) from None
    return result, classification_metrics(resnet_proba(result.model, test.images), test.labels, [str(c) for c in test.classes])


def parse(raw: dict) -> tuple:
    return (section(BaselineParams, raw, "baseline"), section(EvaluateParams, raw, "evaluate"), section(QuantumParams, raw, "quantum"),
            seed_of(raw), device_of(raw))


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(EvaluatePaths(), root))
