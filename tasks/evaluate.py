"""Stage 8, evaluate: retrain the HQCNN on the augmented set (baseline settings and seed) and compare."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qaug.data import GENERATED
from qaug.io import image_set, load_arrays, load_image_set, write_json, write_metrics
from qaug.metrics import compare, headline
from qaug.params import section, seed_of
from qaug.plots import confusion_matrices, loss_curves, per_class_accuracy
from tasks.classifier import BaselineParams, fit, load_model, save_model, score, training_summary, write_history
from tasks.layout import dep, journal, out, rooted
from tasks.quantum import QuantumParams, on_backend


@dataclass(frozen=True)
class EvaluatePaths:
    merged: Path = dep("data/augmented/train.npz")
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


def run(params: BaselineParams, quantum: QuantumParams, seed: int, paths: EvaluatePaths) -> dict:
    data = load_arrays(paths.merged, "images", "labels", "classes", "source")
    merged, source = image_set(data, paths.merged), data["source"]
    test = load_image_set(paths.test)
    start = time.perf_counter()
    result = fit(params, seed, merged)  # trained exactly, like the baseline
    baseline_model = load_model(paths.baseline_model, test, paths.test)
    with on_backend(quantum, [baseline_model.quantum, result.model.quantum], paths.jobs) as run_on:
        run_on.announce("evaluate (baseline and augmented on the test split)", 2 * len(test))
        baseline = score(baseline_model, test)  # both scored here, on the same backend
        metrics = score(result.model, test)
    backend = run_on.record
    metrics["quantum"] = backend
    metrics["training"] = training_summary(result, len(merged), params, seed) | {"generated": int((source == GENERATED).sum())}
    comparison = compare(baseline, {k: v for k, v in metrics.items() if k not in ("training", "quantum")}) | {"quantum": backend}
    save_model(paths.model, result)
    write_history(paths.history, result)
    write_metrics(paths.metrics, metrics)
    write_metrics(paths.comparison, comparison)
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
    base_loss = np.loadtxt(paths.baseline_history, delimiter=",", skiprows=1, ndmin=2)[:, 1]
    loss_curves({"baseline": base_loss.tolist(), "augmented": result.history["loss"]}, paths.loss_figure, title="HQCNN training loss", xlabel="epoch")
    return {
        "baseline_accuracy": baseline["accuracy"],
        "augmented_accuracy": metrics["accuracy"],
        "delta": metrics["accuracy"] - baseline["accuracy"],
        "seconds": round(time.perf_counter() - start, 1),
    }


def parse(raw: dict) -> tuple:
    return (section(BaselineParams, raw, "baseline"), section(QuantumParams, raw, "quantum"), seed_of(raw))


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(EvaluatePaths(), root))
