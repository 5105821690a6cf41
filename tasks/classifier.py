"""The HQCNN as the baseline and evaluate stages use it: params, training, checkpoints, scoring.

Both stages train with the same ``baseline`` params section and seed, so the
augmented model differs from the baseline only in its training data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch

from qaug.data import ImageSet
from qaug.io import InputError, load_torch, save_torch, write_csv
from qaug.metrics import classification_metrics
from qaug.params import require, to_dict
from qmodels.hqcnn import HQCNN, HQCNNConfig, TrainConfig, TrainResult, predict_proba, train_hqcnn


@dataclass(frozen=True)
class BaselineParams:
    conv_channels: int = 8
    qubits: int = 4
    layers: int = 2
    entangler: Literal["cnot-ring", "cnot-chain", "cz-ring", "cz-chain"] = "cnot-ring"
    epochs: int = 30
    min_steps: int = 600
    batch_size: int = 16
    lr: float = 0.01
    max_restarts: int = 3

    def validate(self) -> None:
        require(1 <= self.qubits <= 12, "qubits", f"must be between 1 and 12, got {self.qubits}")
        require(self.layers >= 1, "layers", "must be at least 1")
        require(self.conv_channels >= 1, "conv_channels", "must be at least 1")
        require(self.epochs >= 1, "epochs", "must be at least 1")
        require(self.batch_size >= 1, "batch_size", "must be at least 1")
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(self.min_steps >= 0, "min_steps", "must be 0 or more")
        require(self.max_restarts >= 0, "max_restarts", "must be 0 or more")


def fit(params: BaselineParams, seed: int, train: ImageSet, device: torch.device | str = "cpu") -> TrainResult:
    model_cfg = HQCNNConfig(
        in_channels=train.images.shape[1],
        image_size=train.images.shape[-1],
        num_classes=len(train.classes),
        conv_channels=params.conv_channels,
        num_qubits=params.qubits,
        num_layers=params.layers,
        entangler=params.entangler,
    )
    train_cfg = TrainConfig(
        epochs=params.epochs, min_steps=params.min_steps, batch_size=params.batch_size,
        lr=params.lr, seed=seed, max_restarts=params.max_restarts,
    )
    return train_hqcnn(model_cfg, train_cfg, train.images, train.labels, progress=True, device=device)


def training_summary(result: TrainResult, images: int, params: BaselineParams, seed: int) -> dict:
    """How the model was trained, stored next to its test metrics."""
    return {
        "images": images,
        "epochs": len(result.history["loss"]),
        "steps": len(result.history["loss"]) * math.ceil(images / params.batch_size),  # more data, more steps
        "final_loss": result.history["loss"][-1],
        "final_accuracy": result.history["accuracy"][-1],
        "restarts": result.restarts,
        "collapsed": result.restarts in result.collapsed_attempts,  # still near chance after the last restart
        "params": to_dict(params),
        "seed": seed,
    }


def save_model(path: Path, result: TrainResult) -> None:
    """The checkpoint holds CPU tensors whatever the model trained on (loads anywhere)."""
    result.model.to("cpu")
    save_torch(path, {
        "config": asdict(result.model.cfg),
        "state_dict": result.model.state_dict(),
        "history": result.history,
        "restarts": result.restarts,
    })


def load_model(path: Path, data: ImageSet, data_path: Path, device: torch.device | str = "cpu") -> HQCNN:
    """The HQCNN in checkpoint ``path``, made for ``data`` (read from ``data_path``), on ``device``; InputError
    when it holds something else, or a model of other images or classes."""
    ckpt = load_torch(path, "config", "state_dict")
    try:
        model = HQCNN(HQCNNConfig(**ckpt["config"]))
    except TypeError as err:  # e.g. a generator checkpoint's config
        raise InputError(f"{path} is not an HQCNN classifier checkpoint ({err})", path) from None
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise InputError(f"{path}'s weights do not fit its own configuration ({str(err).splitlines()[0]}...)", path) from None
    cfg, (c, h, w) = model.cfg, data.images.shape[1:]
    if (cfg.in_channels, cfg.image_size, cfg.image_size, cfg.num_classes) != (c, h, w, len(data.classes)):
        raise InputError(f"{path} classifies {cfg.num_classes} classes of {cfg.in_channels}×{cfg.image_size}×{cfg.image_size} images "
                         f"but {data_path} has {len(data.classes)} classes of {c}×{h}×{w}; it is from another run", path)
    return model.eval().to(device)


def score(model: HQCNN, test: ImageSet) -> dict:
    """Accuracy, per-class precision / recall / F1 / confidence and the confusion matrix on ``test``."""
    return classification_metrics(predict_proba(model, test.images), test.labels, [str(c) for c in test.classes])


def write_history(path: Path, result: TrainResult) -> None:
    """Per-epoch training loss and accuracy as CSV (a DVC plot)."""
    h = result.history
    write_csv(path, ["epoch", "loss", "accuracy"], [[e + 1, f"{l:.6f}", f"{a:.6f}"] for e, (l, a) in enumerate(zip(h["loss"], h["accuracy"]))])
