"""MosaiQ-style QGAN (Silver et al. 2023): quantum sub-generators make PCA coefficients, inverse PCA makes the image.

Per class c, fitted on that class's real training images before training (``prepare``):
a PCA basis of k = S·n components, the mean image, and per-component scales (the largest
|coefficient| among the real images), so the ⟨Z⟩ outputs in [−1, 1] span the real
coefficients' range. The generator is a bank of S sub-generators of n qubits
(``qmodels.subgenerators``, adaptive noise range) whose k outputs, times the scales, are
the coefficients; the image is mean + coefficients · basis, clipped to [0, 1]. The
discriminator works where MosaiQ's does, on the scaled PCA coefficients (of real images
and of generated ones alike), so it cannot win on the detail PCA throws away.

This is the hybrid baseline HybridQ compares against: the same kind of sub-generators,
with a fixed linear decoder (inverse PCA) instead of HybridQ's trained one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from qmodels.adversarial import GAN
from qmodels.subgenerators import SubGeneratorBank


@dataclass(frozen=True)
class MosaiQConfig:
    num_classes: int = 3
    image_size: int = 28
    in_channels: int = 1
    sub_generators: int = 8
    num_qubits: int = 5  # per sub-generator; k = sub_generators × num_qubits PCA components (MosaiQ: 8 × 5 = 40)
    num_layers: int = 6
    noise_range: float = math.pi / 2
    noise_adapt: float = 0.05
    disc_hidden: int = 64

    @property
    def components(self) -> int:
        return self.sub_generators * self.num_qubits

    @property
    def pixels(self) -> int:
        return self.in_channels * self.image_size * self.image_size


class PCABasis(nn.Module):
    """Per-class mean, k components and coefficient scales, as buffers (saved with the model)."""

    def __init__(self, cfg: MosaiQConfig) -> None:
        super().__init__()
        C, k, D = cfg.num_classes, cfg.components, cfg.pixels
        self.register_buffer("mean", torch.zeros(C, D))
        self.register_buffer("basis", torch.zeros(C, k, D))
        self.register_buffer("scale", torch.ones(C, k))

    @torch.no_grad()
    def fit(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        k = self.basis.shape[1]
        for c in range(self.mean.shape[0]):
            x = images[labels == c].flatten(1).double()
            if len(x) <= k:
                raise ValueError(f"MosaiQ: class {c} has {len(x)} training images; {k} PCA components need at least {k + 1} "
                                 f"(lower mosaiq.sub_generators or mosaiq.qubits)")
            mean = x.mean(0)
            _, _, vh = torch.linalg.svd(x - mean, full_matrices=False)
            basis = vh[:k]
            largest = basis.gather(1, basis.abs().argmax(1, keepdim=True))  # SVD's sign is arbitrary: make each
            basis = basis * torch.sign(largest)  # component's largest-magnitude entry positive (scikit-learn's svd_flip)
            scale = ((x - mean) @ basis.T).abs().amax(0)
            # Directions the class does not span (rank < k) would scale rounding noise up to ±1, which a
            # discriminator could tell apart from the generator's outputs: floor them relative to the largest.
            self.mean[c], self.basis[c] = mean.float(), basis.float()
            self.scale[c] = scale.clamp_min(1e-4 * float(scale.max())).float()

    def coefficients(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, k) scaled coefficients of images (B, C, H, W), each with its class's basis; ~[−1, 1] for real images.

        Projects onto every class's basis (B × C × k numbers) and keeps each image's own, rather than
        gathering a (B, k, D) copy of the bases: that would be gigabytes per call for large colour images."""
        x = images.flatten(1) - self.mean[labels]
        every = torch.einsum("bd,ckd->bck", x, self.basis)
        return every[torch.arange(len(x)), labels] / self.scale[labels]

    def images(self, coefficients: torch.Tensor, c: int, shape: Sequence[int]) -> torch.Tensor:
        """Inverse PCA of (B, k) scaled coefficients of class c → images (B, *shape) in [0, 1]."""
        x = self.mean[c] + (coefficients * self.scale[c]) @ self.basis[c]
        return x.view(len(x), *shape).clamp(0, 1)


class MosaiQGenerator(SubGeneratorBank):
    def __init__(self, cfg: MosaiQConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg.num_classes, cfg.sub_generators, cfg.num_qubits, cfg.num_layers, cfg.noise_range, generator)
        self.cfg = cfg
        self.pca = PCABasis(cfg)

    def forward(self, noise: torch.Tensor, classes: Sequence[int] | None = None) -> torch.Tensor:
        classes = list(range(self.cfg.num_classes)) if classes is None else list(classes)
        shape = (self.cfg.in_channels, self.cfg.image_size, self.cfg.image_size)
        return torch.stack([self.pca.images(z, c, shape) for c, z in zip(classes, self.latents(noise, classes))])


class CoefficientDiscriminator(nn.Module):
    """MLP on the scaled PCA coefficients and the one-hot class; shares the generator's (fixed) basis."""

    def __init__(self, cfg: MosaiQConfig, pca: PCABasis) -> None:
        super().__init__()
        self.num_classes = cfg.num_classes
        self._pca = [pca]  # a reference, not a submodule: the basis is saved once, with the generator
        h = cfg.disc_hidden
        self.net = nn.Sequential(nn.Linear(cfg.components + cfg.num_classes, h), nn.LeakyReLU(0.2),
                                 nn.Linear(h, h), nn.LeakyReLU(0.2), nn.Linear(h, 1))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        coef = self._pca[0].coefficients(images, labels)
        onehot = nn.functional.one_hot(labels, self.num_classes).to(coef)
        return self.net(torch.cat([coef, onehot], 1)).squeeze(1)


@dataclass
class MosaiQ(GAN):
    cfg: MosaiQConfig
    config_type = MosaiQConfig

    @classmethod
    def create(cls, cfg: MosaiQConfig, seed: int = 0) -> "MosaiQ":
        torch.manual_seed(seed)
        generator = MosaiQGenerator(cfg, torch.Generator().manual_seed(seed))
        return cls(cfg, generator, CoefficientDiscriminator(cfg, generator.pca))

    @property
    def circuits_per_sample(self) -> int:
        return self.cfg.sub_generators

    def prepare(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Fit the per-class PCA on the real training images."""
        self.generator.pca.fit(images, labels)

    def after_step(self, loss_d: float, loss_g: float) -> None:
        self.generator.adapt_noise(loss_d, loss_g, self.cfg.noise_adapt)
