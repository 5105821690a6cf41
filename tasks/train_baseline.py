"""Stage 2, train_baseline: the HQCNN on the real training split, scored on the test split."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from qaug.device import device_of
from qaug.io import load_image_set, write_metrics
from qaug.params import section, seed_of
from tasks.classifier import BaselineParams, fit, save_model, score, training_summary, write_history
from tasks.layout import dep, out, rooted


@dataclass(frozen=True)
class BaselinePaths:
    train: Path = dep("data/prepared/train.npz")
    test: Path = dep("data/prepared/test.npz")
    model: Path = out("models/baseline.pt")
    metrics: Path = out("metrics/baseline.json")
    history: Path = out("plots/data/baseline_history.csv")


def run(params: BaselineParams, seed: int, device: torch.device, paths: BaselinePaths) -> dict:
    train, test = load_image_set(paths.train), load_image_set(paths.test)
    start = time.perf_counter()
    result = fit(params, seed, train, device)
    metrics = score(result.model, test)
    metrics["training"] = training_summary(result, len(train), params, seed)
    save_model(paths.model, result)
    write_history(paths.history, result)
    write_metrics(paths.metrics, metrics, device)
    return {"test_accuracy": metrics["accuracy"], "restarts": result.restarts, "seconds": round(time.perf_counter() - start, 1)}


def parse(raw: dict) -> tuple:
    return (section(BaselineParams, raw, "baseline"), seed_of(raw), device_of(raw))


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(BaselinePaths(), root))
