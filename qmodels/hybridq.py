"""HybridQ latent-space QGAN (Jiao et al. 2025, "latent space fusion"), one per class.

Per class c:

* classical pre-processing (encoder): 4×4 conv (stride 2) + LeakyReLU + linear → a latent
  of size d in [−1, 1], trained to reconstruct real images through the decoder;
* quantum sub-generators (``qmodels.subgenerators``): S circuits of n qubits (S·n = d),
  RY noise encoding, L layers of trainable RY, RX + CNOT chain, ⟨Z_i⟩ outputs, together
  one latent of size d made from noise drawn uniformly from [0, r);
* classical post-processing (decoder): linear + ReLU, upsampling + 3×3 conv + tanh →
  the image (rescaled to [0, 1]); real latents and quantum latents share it, which is the
  "fusion": the decoder learns the image manifold from real latents while the circuits
  learn to land on it;
* a CNN discriminator (the DCGAN one, with the class as extra input planes).

The noise range r adapts to the loss ratio as in MosaiQ. Paper settings as defaults:
d = 100 = 10 sub-generators × 10 qubits, 6 layers, Adam with lr 0.3 on the circuits,
2e-4 on encoder/decoder, 2e-3 on the discriminator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from qmodels.adversarial import GAN
from qmodels.classical_gan import ClassicalGANConfig, ConvDiscriminator
from qmodels.subgenerators import SubGeneratorBank


@dataclass(frozen=True)
class HybridQConfig:
    num_classes: int = 3
    image_size: int = 64
    in_channels: int = 3
    sub_generators: int = 10
    num_qubits: int = 10  # per sub-generator; the latent has sub_generators × num_qubits entries
    num_layers: int = 6
    lr_quantum: float = 0.3
    lr_classical: float = 2e-4
    noise_range: float = math.pi / 2  # initial r: noise ~ U[0, r)
    noise_adapt: float = 0.05  # relative change of r per step when the loss ratio leaves [1/1.5, 1.5]

    @property
    def latent(self) -> int:
        return self.sub_generators * self.num_qubits


class Encoder(nn.Module):
    def __init__(self, cfg: HybridQConfig) -> None:
        super().__init__()
        half = math.ceil(cfg.image_size / 2)
        self.net = nn.Sequential(nn.Conv2d(cfg.in_channels, 16, 4, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Flatten(),
                                 nn.Linear(16 * half * half, cfg.latent), nn.Tanh())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class Decoder(nn.Module):
    def __init__(self, cfg: HybridQConfig) -> None:
        super().__init__()
        quarter = math.ceil(cfg.image_size / 4)
        self.net = nn.Sequential(
            nn.Linear(cfg.latent, 16 * quarter * quarter), nn.ReLU(), nn.Unflatten(1, (16, quarter, quarter)),
            nn.Upsample(size=cfg.image_size, mode="bilinear", align_corners=False),
            nn.Conv2d(16, cfg.in_channels, 3, padding=1), nn.Tanh(),
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return (self.net(latent) + 1) / 2


class HybridQGenerator(SubGeneratorBank):
    def __init__(self, cfg: HybridQConfig, generator: torch.Generator | None = None) -> None:
        super().__init__(cfg.num_classes, cfg.sub_generators, cfg.num_qubits, cfg.num_layers, cfg.noise_range, generator)
        self.cfg = cfg
        self.encoders = nn.ModuleList(Encoder(cfg) for _ in range(cfg.num_classes))
        self.decoders = nn.ModuleList(Decoder(cfg) for _ in range(cfg.num_classes))

    def forward(self, noise: torch.Tensor, classes: Sequence[int] | None = None) -> torch.Tensor:
        classes = list(range(self.cfg.num_classes)) if classes is None else list(classes)
        latents = self.latents(noise, classes)
        return torch.stack([self.decoders[c](z) for c, z in zip(classes, latents)])


@dataclass
class HybridQ(GAN):
    cfg: HybridQConfig
    config_type = HybridQConfig

    @classmethod
    def create(cls, cfg: HybridQConfig, seed: int = 0) -> "HybridQ":
        torch.manual_seed(seed)
        critic = ConvDiscriminator(ClassicalGANConfig(num_classes=cfg.num_classes, image_size=cfg.image_size, in_channels=cfg.in_channels))
        return cls(cfg, HybridQGenerator(cfg, torch.Generator().manual_seed(seed)), critic)

    @property
    def circuits_per_sample(self) -> int:
        return self.cfg.sub_generators

    def generator_groups(self, lr: float) -> list[dict]:
        """The paper's learning rates: circuits at ``lr_quantum``, encoder/decoder at ``lr_classical``."""
        g = self.generator
        classical = [p for name, p in g.named_parameters() if not name.startswith("quantum.")]
        return [{"params": [g.quantum.weight], "lr": self.cfg.lr_quantum}, {"params": classical, "lr": self.cfg.lr_classical}]

    def auxiliary_loss(self, real: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Reconstruction of real images through each class's encoder and decoder (trains the latent space)."""
        g = self.generator
        loss = real.new_zeros(())
        for c in labels.unique().tolist():
            x = real[labels == c].detach()
            loss = loss + nn.functional.mse_loss(g.decoders[c](g.encoders[c](x)), x, reduction="sum")
        return loss / real[0].numel() / len(real)

    def after_step(self, loss_d: float, loss_g: float) -> None:
        """MosaiQ-style adaptive noise (``SubGeneratorBank.adapt_noise``)."""
        self.generator.adapt_noise(loss_d, loss_g, self.cfg.noise_adapt)
