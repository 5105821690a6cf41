"""A small classical CNN: the independent judge of generated samples (label fidelity)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class SmallCNN(nn.Module):
    """Two conv blocks and a linear head; works for any channel count and image size ≥ 8."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Linear(32 * (image_size // 4) ** 2, num_classes)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Last conv block's channels, averaged over space (B, 32): the space of classifier-feature FD and KID."""
        return self.features[:-1](images).mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def train_classifier(
    images: np.ndarray, labels: np.ndarray, num_classes: int, epochs: int = 15, seed: int = 0, device: torch.device | str = "cpu"
) -> SmallCNN:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(images, dtype=torch.float32).to(device)
    y = torch.as_tensor(labels, dtype=torch.long).to(device)
    model = SmallCNN(x.shape[1], x.shape[-1], num_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), 32):
            idx = order[start : start + 32].to(device)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def embed(model: SmallCNN, images: np.ndarray) -> np.ndarray:
    x, device = torch.as_tensor(images, dtype=torch.float32), next(model.parameters()).device
    if not len(x):
        return np.zeros((0, 32))
    return torch.cat([model.embed(x[i : i + 512].to(device)).cpu() for i in range(0, len(x), 512)]).double().numpy()


@torch.no_grad()
def predict(model: SmallCNN, images: np.ndarray) -> np.ndarray:
    x, device = torch.as_tensor(images, dtype=torch.float32), next(model.parameters()).device
    if not len(x):
        return np.zeros(0, dtype=np.int64)
    return torch.cat([model(x[i : i + 512].to(device)).argmax(1).cpu() for i in range(0, len(x), 512)]).numpy()
