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
    """A seeded SmallCNN trained class-balanced: every epoch oversamples each class to the largest class's count.

    Why: trained on the raw mix of an imbalanced split (60/60/8 images at 8 × 8) the judge never
    predicted the rare class (its test recall ≈ 0 on every seed), so even real images of that class
    scored label fidelity 0. Oversampling (every image at least once an epoch, the smaller classes'
    images repeated, their repeats drawn afresh each epoch) rather than a class-weighted loss: on those
    splits (MNIST 0/1/2 at 8 × 8, 10 seeds) the rare class's test recall was 0.84 on average (lowest
    0.74) with oversampling and 0.77 (lowest 0.39) with the loss weighted by inverse frequency, whose
    batches holding one rare image take noisy, outsized steps. A balanced split draws no repeats, so it
    trains exactly as an unbalanced judge would (the same permutation each epoch, the same weights); an
    imbalanced one takes more steps an epoch (C × the largest class's count images)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(images, dtype=torch.float32).to(device)
    y = torch.as_tensor(labels, dtype=torch.long).to(device)
    model = SmallCNN(x.shape[1], x.shape[-1], num_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    labels = np.asarray(labels)
    for _ in range(epochs):
        pool = balanced_pool(labels, gen)
        order = pool[torch.randperm(len(pool), generator=gen)]
        for start in range(0, len(order), 32):
            idx = order[start : start + 32].to(device)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def balanced_pool(labels: np.ndarray, gen: torch.Generator) -> torch.Tensor:
    """One epoch's image indices: every image once, then each class topped up to the largest class's count
    with its own images (a fresh random order per class, cycled); nothing is drawn for a class already there."""
    counts = np.bincount(labels)
    top = counts.max()
    extra = []
    for c in np.flatnonzero((counts > 0) & (counts < top)):
        own = torch.as_tensor(np.flatnonzero(labels == c))
        extra.append(own[torch.randperm(len(own), generator=gen)].repeat(-(-(top - len(own)) // len(own)))[: top - len(own)])
    return torch.cat([torch.arange(len(labels)), *extra])


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
