"""Baselines that make "new" samples from the real training images (He et al. 2025).

* ``duplicates``: random oversampling, copies of real images; the control that says
  whether a gain from generated data is more than more training steps on the same data;
* ``conventional``: random rotation, translation and contrast (torchvision.transforms.v2)
  of real images;
* ``prototype``: the class-mean image plus Gaussian noise with the real images' per-pixel
  spread; the control that says whether generated samples do more than a QGAN drifting
  toward the class mean would.

Both answer ``sample(cls, count, seed)`` like the GANs, so the pipeline's generate,
filter and merge stages treat every method alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch


@dataclass(frozen=True)
class ResampleConfig:
    method: Literal["duplicates", "conventional", "prototype"] = "conventional"
    rotation: float = 15.0  # degrees, uniform in ±rotation
    translate: float = 0.1  # fraction of the side, uniform in ±translate
    contrast: float = 0.3  # contrast factor uniform in [1 − contrast, 1 + contrast]


class Resampler:
    quantum_layers: list = []
    circuits_per_sample = 0

    def __init__(self, cfg: ResampleConfig, images: np.ndarray, labels: np.ndarray, num_classes: int) -> None:
        self.cfg, self.images, self.labels = cfg, np.asarray(images, dtype=np.float32), np.asarray(labels)
        self.pools = [np.flatnonzero(self.labels == c) for c in range(num_classes)]

    def sample(self, cls_index: int, count: int, seed: int) -> np.ndarray:
        pool = self.pools[cls_index]
        if count and not len(pool):
            raise ValueError(f"class {cls_index} has no training images to resample")
        if self.cfg.method == "prototype":
            real = self.images[pool]
            noise = np.random.default_rng(seed).standard_normal((count, *real.shape[1:]), dtype=np.float32)
            return np.clip(real.mean(0) + noise * real.std(0), 0, 1).astype(np.float32)
        picked = self.images[pool[np.random.default_rng(seed).integers(len(pool), size=count)]]
        if self.cfg.method == "duplicates" or not count:
            return picked
        from torchvision.transforms import v2  # ~5 s to import: only for this method

        c = self.cfg
        transform = v2.Compose([
            v2.RandomAffine(degrees=c.rotation, translate=(c.translate, c.translate)),
            v2.ColorJitter(contrast=c.contrast),
        ])
        with torch.random.fork_rng(devices=[]):  # transforms draw from torch's global RNG
            torch.manual_seed(seed)
            out = torch.stack([transform(torch.from_numpy(img)) for img in picked])
        return out.clamp(0, 1).numpy().astype(np.float32)

    def checkpoint(self) -> dict:
        """Tensors, not arrays: ``torch.load(weights_only=True)`` refuses numpy objects."""
        return {"config": asdict(self.cfg), "images": torch.from_numpy(self.images), "labels": torch.from_numpy(self.labels),
                "num_classes": len(self.pools)}

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> "Resampler":
        return cls(ResampleConfig(**ckpt["config"]), ckpt["images"].numpy(), ckpt["labels"].numpy(), ckpt["num_classes"])
