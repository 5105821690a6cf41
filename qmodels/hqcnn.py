"""Hybrid quantum-classical CNN (HQCNN) and its training loop.

Conv2d 3×3 → MaxPool → ReLU → Linear to n_qubits → π·tanh angles → variational
circuit (RY encoding, RY/RZ layers, CNOT ring) → ⟨Z_i⟩ → Linear head to classes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from qmodels.circuits import hqcnn_ansatz
from qmodels.layer import QuantumLayer
from qmodels.progress import bar as progress_bar

log = logging.getLogger("qaug.hqcnn")


@dataclass(frozen=True)
class HQCNNConfig:
    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 3
    conv_channels: int = 8
    num_qubits: int = 4
    num_layers: int = 2
    entangler: str = "cnot-ring"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    min_steps: int = 600  # tiny training sets get more epochs: 10 images/class would be 60 steps
    batch_size: int = 16
    lr: float = 0.01
    weight_decay: float = 0.0
    seed: int = 0
    # Collapse handling: a run whose training accuracy is within `collapse_margin` of
    # chance after `collapse_check` of the epochs, or at the end, or that ends with
    # some class entirely wrong, is restarted with a fresh initialisation and half the
    # learning rate, at most `max_restarts` times.
    collapse_margin: float = 0.15
    collapse_check: float = 0.3
    max_restarts: int = 3


class HQCNN(nn.Module):
    def __init__(self, cfg: HQCNNConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.image_size < 4:
            raise ValueError(f"image_size must be >= 4, got {cfg.image_size}")
        self.features = nn.Sequential(
            nn.Conv2d(cfg.in_channels, cfg.conv_channels, kernel_size=3),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Flatten(),
        )
        side = (cfg.image_size - 2) // 2
        self.to_angles = nn.Linear(cfg.conv_channels * side * side, cfg.num_qubits)
        ansatz = hqcnn_ansatz(cfg.num_qubits, cfg.num_layers, cfg.entangler)  # type: ignore[arg-type]
        self.quantum = QuantumLayer(ansatz, generator=generator)
        self.head = nn.Linear(cfg.num_qubits, cfg.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits for images (B, C, H, W)."""
        angles = math.pi * torch.tanh(self.to_angles(self.features(images)))
        return self.head(self.quantum(angles))


@dataclass
class TrainResult:
    model: HQCNN
    history: dict[str, list[float]] = field(default_factory=lambda: {"loss": [], "accuracy": []})
    restarts: int = 0
    collapsed_attempts: list[int] = field(default_factory=list)


def _attempt(
    model_cfg: HQCNNConfig, cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor, attempt: int, progress: bool
) -> tuple[HQCNN, dict[str, list[float]], bool]:
    seed = cfg.seed + 7919 * attempt
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)  # on the CPU whatever the device: the same batches everywhere
    model = HQCNN(model_cfg, generator=gen).to(x.device)
    lr = cfg.lr / (2**attempt)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(x) / cfg.batch_size)
    epochs = max(cfg.epochs, math.ceil(cfg.min_steps / steps_per_epoch))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.1 if attempt == 0 else 0.3
    )
    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    chance = 1.0 / model_cfg.num_classes
    present = torch.bincount(y, minlength=model_cfg.num_classes) > 0
    check_at = max(1, round(cfg.collapse_check * epochs))
    bar = progress_bar(epochs, f"HQCNN (attempt {attempt + 1})", "epochs", progress)
    for epoch in bar:
        order = torch.randperm(len(x), generator=gen)
        total, correct = 0.0, 0
        hits = torch.zeros(model_cfg.num_classes, device=x.device)
        model.train()
        for start in range(0, len(x), cfg.batch_size):
            idx = order[start : start + cfg.batch_size].to(x.device)
            logits = model(x[idx])
            loss = nn.functional.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            right = logits.argmax(1) == y[idx]
            correct += int(right.sum())
            hits.index_add_(0, y[idx], right.float())
        history["loss"].append(total / len(x))
        history["accuracy"].append(correct / len(x))
        bar.set_postfix(loss=f"{history['loss'][-1]:.3f}", acc=f"{history['accuracy'][-1]:.3f}")
        near_chance = history["accuracy"][-1] < chance + cfg.collapse_margin
        class_lost = bool((hits[present] == 0).any())  # judged at the end only: early epochs may miss a class
        if (epoch + 1 == check_at and near_chance) or (epoch + 1 == epochs and (near_chance or class_lost)):
            return model, history, True
    return model, history, False


def train_hqcnn(
    model_cfg: HQCNNConfig, cfg: TrainConfig, images: np.ndarray, labels: np.ndarray, progress: bool = False,
    device: torch.device | str = "cpu",
) -> TrainResult:
    """Train an HQCNN with Adam + one-cycle schedule; restart collapsed runs.

    A collapsed run (training accuracy near chance) is detected at
    ``collapse_check`` of the epochs and at the end, logged, and restarted with a
    new seed and half the learning rate, up to ``max_restarts`` times.
    """
    x = torch.as_tensor(images, dtype=torch.float32).to(device)
    y = torch.as_tensor(labels, dtype=torch.long).to(device)
    if x.shape[1:] != (model_cfg.in_channels, model_cfg.image_size, model_cfg.image_size):
        raise ValueError(
            f"images have shape {tuple(x.shape[1:])}, the model expects "
            f"({model_cfg.in_channels}, {model_cfg.image_size}, {model_cfg.image_size})"
        )
    result = None
    collapsed_attempts = []
    for attempt in range(cfg.max_restarts + 1):
        model, history, collapsed = _attempt(model_cfg, cfg, x, y, attempt, progress)
        if not collapsed:
            result = TrainResult(model, history, attempt, collapsed_attempts)
            break
        collapsed_attempts.append(attempt)
        result = TrainResult(model, history, attempt, collapsed_attempts)
        if attempt < cfg.max_restarts:
            log.warning(
                "HQCNN training collapsed (attempt %d: training accuracy %.3f, chance %.3f, or a class never "
                "predicted); restarting with a fresh initialisation and learning rate %.2g",
                attempt + 1, history["accuracy"][-1], 1 / model_cfg.num_classes, cfg.lr / 2 ** (attempt + 1),
            )
        else:
            log.error("HQCNN training still collapsed after %d restarts; keeping the last attempt", cfg.max_restarts)
    assert result is not None
    result.model.eval()
    return result


@torch.no_grad()
def predict_proba(model: HQCNN, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (n, C) for images (n, C, H, W), computed on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    x = torch.as_tensor(images, dtype=torch.float32)
    out = [torch.softmax(model(x[i : i + batch_size].to(device)), dim=1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.cfg.num_classes), dtype=np.float32)
