"""Hybrid QGAN of Gunduz (2025) for images, trained with WGAN-GP (``qgan.model: wgan-gp``).

Generator of class c: latent z → Linear → RY angle encoding on n qubits → L layers of
trainable RY, RX on every qubit + CNOT chain → ⟨Z_i⟩ on every qubit (n numbers in
[−1, 1]) → Linear → ``grid``×``grid`` image → the patch QGAN's classical
post-processing (bilinear upsampling + 3×3 conv + sigmoid). The quantum circuit is
the one of Gunduz's 1-D experiment (:mod:`qmodels.wgan`), widened to n qubits; the
critic is the patch QGAN's conditional discriminator without a sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from qmodels.adversarial import GAN
from qmodels.circuits import expval_generator_ansatz
from qmodels.classical_gan import GridDecoder
from qmodels.layer import QuantumLayer
from qmodels.qgan import Discriminator, QGANConfig


@dataclass(frozen=True)
class HybridQGANConfig:
    num_classes: int = 3
    image_size: int = 28
    in_channels: int = 1
    latent: int = 5
    num_qubits: int = 5
    num_layers: int = 6
    grid: int = 8
    disc_hidden: tuple[int, ...] = (128, 32)


class HybridGenerator(nn.Module):
    def __init__(self, cfg: HybridQGANConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        grid = min(cfg.grid, cfg.image_size)
        ansatz = expval_generator_ansatz(cfg.num_qubits, cfg.num_layers, ("ry", "rx"), "cnot-chain")
        self.encode = nn.ModuleList(nn.Linear(cfg.latent, cfg.num_qubits) for _ in range(cfg.num_classes))
        self.quantum = QuantumLayer(ansatz, copies=cfg.num_classes, generator=generator)
        self.decode = nn.ModuleList(
            nn.Sequential(nn.Linear(cfg.num_qubits, cfg.in_channels * grid * grid), GridDecoder(cfg.in_channels, grid, cfg.image_size))
            for _ in range(cfg.num_classes)
        )

    def sample_noise(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(batch, self.cfg.latent, generator=generator)

    def forward(self, noise: torch.Tensor, classes: Sequence[int] | None = None) -> torch.Tensor:
        """Images (K, B, C, H, W) for classes (default all) from noise (B, latent)."""
        classes = range(self.cfg.num_classes) if classes is None else classes
        out = []
        for c in classes:  # each class encodes the noise its own way: one executor call per class
            expvals = self.quantum.run(self.encode[c](noise), self.quantum.weight[c])
            out.append(self.decode[c](expvals))
        return torch.stack(out)


@dataclass
class HybridQGAN(GAN):
    cfg: HybridQGANConfig
    config_type = HybridQGANConfig

    @classmethod
    def create(cls, cfg: HybridQGANConfig, seed: int = 0) -> "HybridQGAN":
        torch.manual_seed(seed)
        critic = Discriminator(QGANConfig(num_classes=cfg.num_classes, image_size=cfg.image_size, in_channels=cfg.in_channels,
                                          disc_hidden=cfg.disc_hidden))
        return cls(cfg, HybridGenerator(cfg, torch.Generator().manual_seed(seed)), critic)

    @property
    def circuits_per_sample(self) -> int:
        return 1
