"""The ResNet that judges a run under ``evaluate.classifier: resnet18|resnet50`` (HybridQ's protocol): its params
(the ``evaluate`` section), how it is trained and how its training is recorded.

A module of its own so that resnet_baseline (the real-only ResNet), evaluate (the ResNet on the merged set)
and the grid's equal-steps control train the very same model, and so that the baseline's run key depends on
this code, not on evaluate's HQCNN and backend code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from qaug.data import ImageSet
from qaug.io import InputError, load_torch, sha256
from qaug.metrics import classification_metrics
from qaug.params import require
from qmodels.resnet import ResNetResult, ResNetTrainConfig, WeightsMismatch, resnet_proba, train_resnet


@dataclass(frozen=True)
class EvaluateParams:
    """The downstream classifier the merged set is judged by. ``hqcnn``: the baseline HQCNN retrained (the
    ``baseline`` section's settings; its baseline is train_baseline's model). ``resnet18``/``resnet50``: HybridQ's
    protocol, a torchvision ResNet trained with these settings and the run's seed, on the real training split
    (stage resnet_baseline) and on the merged set (evaluate); fine-tuned from ``weights`` (a local torchvision
    state dict, e.g. resnet18-f37072fd.pth; relative to the working directory) or from scratch."""

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


def read_backbone(params: EvaluateParams) -> dict[str, torch.Tensor] | None:
    """The weights ``evaluate.weights`` names (read once per stage), or None."""
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
