"""Stage 4, train_qgan: the class-conditional patch QGAN, weighted by the baseline's errors.

Class weights w_i = (1 − λ)/C + λ·R[i] set the class mix of every real batch and
scale each class's generator loss (see ``qmodels.qgan``); λ = 0 is uniform, λ = 1
trains only the classes the baseline gets wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from qaug.io import InputError, load_image_set, load_torch, read_json, save_torch, write_csv, write_json
from qaug.params import require, section, seed_of, to_dict
from qaug.plots import loss_curves
from qmodels.qgan import QGAN, QGANConfig, QGANTrainConfig, train_qgan
from tasks.layout import dep, out, rooted


@dataclass(frozen=True)
class QGANParams:
    error_weight: float = 0.5  # λ
    qubits: int = 5
    ancillas: int = 1
    layers: int = 6
    grid: int = 8  # side of the quantum-made image before classical upsampling
    entangler: Literal["cz-chain", "cz-ring", "cnot-chain", "cnot-ring"] = "cz-chain"
    steps: int = 1200
    batch_size: int = 32
    lr_generator: float = 0.02
    lr_discriminator: float = 0.002
    r1_gamma: float = 1.0
    ema_decay: float = 0.99

    def validate(self) -> None:
        require(0.0 <= self.error_weight <= 1.0, "error_weight", f"must be in [0, 1], got {self.error_weight}")
        require(2 <= self.qubits <= 10, "qubits", f"must be between 2 and 10, got {self.qubits}")
        require(0 <= self.ancillas < self.qubits, "ancillas", "must be at least 0 and below qubits")
        require(self.layers >= 1 and self.steps >= 1 and self.batch_size >= 1, "layers", "steps and batch_size must be at least 1")
        require(self.grid >= 2, "grid", "must be at least 2")
        require(0.0 <= self.ema_decay < 1.0, "ema_decay", "must be in [0, 1)")
        require(self.lr_generator > 0 and self.lr_discriminator > 0, "lr_generator", "and lr_discriminator must be positive")
        require(self.r1_gamma >= 0, "r1_gamma", "must be 0 or more")


@dataclass(frozen=True)
class QGANPaths:
    train: Path = dep("data/prepared/train.npz")
    errors: Path = dep("data/analysis/errors.json")
    model: Path = out("models/qgan.pt")
    metrics: Path = out("metrics/qgan.json")
    losses: Path = out("plots/data/qgan_loss.csv")
    figure: Path = out("plots/qgan_loss.png")


def class_weights(shares: list[float], error_weight: float) -> list[float]:
    C = len(shares)
    return [(1 - error_weight) / C + error_weight * r for r in shares]


def run(params: QGANParams, seed: int, paths: QGANPaths) -> dict:
    train = load_image_set(paths.train)
    shares = read_json(paths.errors)["error_share"]
    if len(shares) != len(train.classes):
        raise InputError(f"{paths.errors} has {len(shares)} classes but {paths.train} has {len(train.classes)}; rerun analyze_errors")
    weights = class_weights(shares, params.error_weight)
    C, size = train.images.shape[1], train.images.shape[-1]
    cfg = QGANConfig(
        num_classes=len(train.classes), image_size=size, in_channels=C, grid=min(params.grid, size),
        num_qubits=params.qubits, num_ancillas=params.ancillas, num_layers=params.layers, entangler=params.entangler,
    )
    train_cfg = QGANTrainConfig(
        steps=params.steps, batch_size=params.batch_size, lr_generator=params.lr_generator,
        lr_discriminator=params.lr_discriminator, r1_gamma=params.r1_gamma, ema_decay=params.ema_decay, seed=seed,
    )
    qgan = train_qgan(QGAN.create(cfg, seed=seed), train.images, train.labels, train_cfg, class_weights=weights, progress=True)
    ckpt = qgan.checkpoint() | {"class_weights": weights, "classes": [str(c) for c in train.classes]}
    h = qgan.history
    tail = max(1, len(h["loss_d"]) // 10)
    metrics = {
        "class_weights": weights,
        "final_loss_d": float(np.mean(h["loss_d"][-tail:])),
        "final_loss_g": float(np.mean(h["loss_g"][-tail:])),
        "params": to_dict(params),
    }
    save_torch(paths.model, ckpt)
    write_csv(paths.losses, ["step", "loss_d", "loss_g"], [[i + 1, f"{d:.6f}", f"{g:.6f}"] for i, (d, g) in enumerate(zip(h["loss_d"], h["loss_g"]))])
    loss_curves({"discriminator": h["loss_d"], "generator": h["loss_g"]}, paths.figure, title="QGAN losses")
    write_json(paths.metrics, metrics)
    return {"class_weights": [round(w, 3) for w in weights], "final_loss_d": round(metrics["final_loss_d"], 3), "final_loss_g": round(metrics["final_loss_g"], 3)}


def load_qgan(path: Path) -> QGAN:
    return QGAN.from_checkpoint(load_torch(path))


def parse(raw: dict) -> tuple:
    return (section(QGANParams, raw, "qgan"), seed_of(raw))


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(QGANPaths(), root))
