"""Stage 3, analyze_errors: per-class errors E[i], error shares R[i] and mean confidence.

R drives everything downstream: the QGAN's class weights, how many samples each
class gets, and the filter thresholds. It is measured on the validation split by
default; ``analysis.split: test`` reproduces the paper's choice, which lets test
data steer the augmentation (a warning says so).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from qaug.device import device_of
from qaug.io import load_image_set, write_json
from qaug.params import section
from qmodels.hqcnn import predict_proba
from tasks.classifier import load_model
from tasks.layout import dep, journal, out, rooted
from tasks.quantum import QuantumParams, model_device, on_backend

log = logging.getLogger("qaug.analyze_errors")


@dataclass(frozen=True)
class AnalysisParams:
    split: Literal["val", "test"] = "val"


@dataclass(frozen=True)
class AnalysisPaths:
    model: Path = dep("models/baseline.pt")
    val: Path = dep("data/prepared/val.npz")
    test: Path = dep("data/prepared/test.npz")
    errors: Path = out("data/analysis/errors.json")
    jobs: Path = journal("data/jobs/analyze_errors.json")


def error_shares(probs: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """E, R and mean true-class confidence; R falls back to 1 − confidence (then uniform) when ΣE = 0."""
    predicted = probs.argmax(1)
    errors = np.bincount(labels[predicted != labels], minlength=num_classes)
    support = np.bincount(labels, minlength=num_classes)
    true_conf = probs[np.arange(len(labels)), labels]
    confidence = np.array([true_conf[labels == c].mean() if support[c] else 0.0 for c in range(num_classes)])
    if errors.sum() > 0:
        shares, weighting = errors / errors.sum(), "errors"
    elif (1 - confidence).sum() > 0:
        shares, weighting = (1 - confidence) / (1 - confidence).sum(), "confidence"
    else:
        shares, weighting = np.full(num_classes, 1 / num_classes), "uniform"
    return {
        "errors": errors.tolist(),
        "support": support.tolist(),
        "error_share": shares.tolist(),
        "mean_confidence": confidence.tolist(),
        "weighting": weighting,
    }


def run(params: AnalysisParams, quantum: QuantumParams, device: torch.device, paths: AnalysisPaths) -> dict:
    if params.split == "test":
        log.warning(
            "analysis.split is 'test': the error shares that steer augmentation are measured on the test "
            "split, so the final test accuracy is no longer an unbiased estimate (the paper's setting)"
        )
    split = paths.val if params.split == "val" else paths.test
    data = load_image_set(split)
    model = load_model(paths.model, data, split)
    model.to(model_device(quantum, device, [model.quantum]))
    with on_backend(quantum, [model.quantum], paths.jobs) as backend:
        backend.announce("analyze_errors", len(data))
        probs = predict_proba(model, data.images)
    result = {"split": params.split, "classes": [str(c) for c in data.classes], "quantum": backend.record}
    result |= error_shares(probs, data.labels, len(data.classes))
    write_json(paths.errors, result)
    return {k: result[k] for k in ("errors", "error_share", "weighting")}


def parse(raw: dict) -> tuple:
    return (section(AnalysisParams, raw, "analysis"), section(QuantumParams, raw, "quantum"), device_of(raw))


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(AnalysisPaths(), root))
