"""A torchvision ResNet as HybridQ's downstream classifier (Jiao et al.: ResNet fine-tuned on real + generated).

Built from torchvision's definition with a head for the task's classes, from scratch or from a state dict the
caller loaded (ImageNet or other weights; nothing is downloaded). Gray images are repeated to the three
channels the stem expects; every image is normalised with ImageNet's mean and spread, as the published weights
were trained. Batches are drawn on a CPU generator and moved, so a run is the same on every device up to the
kernels' rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torchvision
from torch import nn

from qmodels.progress import bar as progress_bar

Arch = Literal["resnet18", "resnet50"]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class WeightsMismatch(ValueError):
    """A state dict that is not this architecture's."""


class ResNetClassifier(nn.Module):
    """ImageNet-normalised input → torchvision ResNet with a ``num_classes`` head."""

    def __init__(self, arch: Arch, num_classes: int) -> None:
        super().__init__()
        self.arch, self.num_classes = arch, num_classes
        self.net = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def load_backbone(self, state: dict[str, torch.Tensor]) -> list[str]:
        """Weights for everything but the head (its shape is the task's); returns the keys left at their init.
        WeightsMismatch when ``state`` is not this architecture's."""
        own = self.net.state_dict()
        body = {k: v for k, v in state.items() if not k.startswith("fc.")}
        wrong = [k for k, v in body.items() if k not in own or getattr(v, "shape", None) != own[k].shape]
        missing = [k for k in own if not k.startswith("fc.") and k not in body]
        if wrong or missing:
            raise WeightsMismatch(f"not {self.arch} weights: {len(wrong)} tensors of another name or shape (e.g. {wrong[:3]}), "
                             f"{len(missing)} missing (e.g. {missing[:3]})")
        self.net.load_state_dict(body, strict=False)
        return [k for k in own if k.startswith("fc.")]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        return self.net((x - self.mean) / self.std)


@dataclass(frozen=True)
class ResNetTrainConfig:
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0


@dataclass
class ResNetResult:
    model: ResNetClassifier
    history: dict[str, list[float]] = field(default_factory=lambda: {"loss": [], "accuracy": []})
    steps: int = 0  # optimiser steps taken (a last batch of one image is skipped)

    def collapsed(self, margin: float = 0.15) -> bool:
        """Training accuracy still within ``margin`` of chance at the end (the HQCNN's collapse rule): such a
        model says nothing about its training data, and a comparison built on it is reported apart."""
        return self.history["accuracy"][-1] < 1 / self.model.num_classes + margin


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Optimiser steps of one epoch: batch norm cannot train on one image, so a last batch of one is left out."""
    return images // batch_size + (images % batch_size >= 2)


def train_resnet(arch: Arch, images: np.ndarray, labels: np.ndarray, num_classes: int, cfg: ResNetTrainConfig,
                 backbone: dict[str, torch.Tensor] | None = None, device: torch.device | str = "cpu",
                 progress: bool = False) -> ResNetResult:
    """Adam with cosine decay over every step; ``backbone``: weights to fine-tune from (None: from scratch)."""
    if len(images) < 2:
        raise ValueError(f"a ResNet needs at least 2 training images (batch norm), got {len(images)}")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = ResNetClassifier(arch, num_classes)
    if backbone is not None:
        model.load_backbone(backbone)
    model.to(device)
    x = torch.as_tensor(images, dtype=torch.float32).to(device)
    y = torch.as_tensor(labels, dtype=torch.long).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs * steps_per_epoch(len(x), cfg.batch_size)))
    result = ResNetResult(model)
    for _ in progress_bar(cfg.epochs, f"{arch}", "epochs", progress):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total, correct, seen = 0.0, 0, 0
        for start in range(0, len(x), cfg.batch_size):
            idx = order[start : start + cfg.batch_size].to(device)
            if len(idx) < 2:  # batch norm cannot train on one image: a last batch of one is left out
                continue
            logits = model(x[idx])
            loss = nn.functional.cross_entropy(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            result.steps += 1
            total, seen = total + loss.item() * len(idx), seen + len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
        result.history["loss"].append(total / seen)
        result.history["accuracy"].append(correct / seen)
    model.eval()
    return result


@torch.no_grad()
def resnet_proba(model: ResNetClassifier, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (n, C), computed on the model's device (eval mode: batch-norm running statistics)."""
    model.eval()
    device = model.mean.device
    x = torch.as_tensor(images, dtype=torch.float32)
    out = [torch.softmax(model(x[i : i + batch_size].to(device)), dim=1).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.num_classes), dtype=np.float32)
