"""Stage 8, evaluate: retrain the judge (the HQCNN with the baseline's settings and seed, or evaluate's ResNet) on the
augmented set and compare it with the baseline (train_baseline's HQCNN, or resnet_baseline's ResNet)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from qaug.data import GENERATED
from qaug.device import device_of
from qaug.io import image_set, load_arrays, load_image_set, save_torch, write_json, write_metrics
from qaug.metrics import compare, headline
from qaug.params import section, seed_of
from qaug.plots import confusion_matrices, loss_curves, per_class_accuracy
from tasks.classifier import BaselineParams, fit, load_model, save_model, score, training_summary, write_history
from tasks.layout import dep, journal, out, rooted
from tasks.quantum import QuantumParams, model_device, on_backend
from tasks.resnet_baseline import read_baseline
from tasks.resnet_judge import EvaluateParams, fit_resnet, read_backbone, resnet_summary


@dataclass(frozen=True)
class EvaluatePaths:
    merged: Path = dep("data/augmented/train.npz")
    test: Path = dep("data/prepared/test.npz")
    baseline_model: Path = dep("models/baseline.pt")
    baseline_history: Path = dep("plots/data/baseline_history.csv")
    resnet_baseline: Path = dep("metrics/resnet_baseline.json")
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
        base = read_baseline(paths.resnet_baseline, downstream, seed)  # trained once by stage resnet_baseline
        result, metrics = fit_resnet(downstream, seed, merged, test, device, read_backbone(downstream))
        backend, baseline, base_loss, ran_on = {"backend": "none (classical classifier)"}, base.metrics, base.loss, device
        training = resnet_summary(result, len(merged), downstream, seed) | {"baseline_final_loss": base_loss[-1],
                                                                           "baseline_collapsed": base.training["collapsed"]}
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


def parse(raw: dict) -> tuple:
    return (section(BaselineParams, raw, "baseline"), section(EvaluateParams, raw, "evaluate"), section(QuantumParams, raw, "quantum"),
            seed_of(raw), device_of(raw))


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(EvaluatePaths(), root))
