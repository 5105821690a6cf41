"""Classical GAN baselines of He et al. (2025): GAN-1, GAN-2 and DCGAN, one generator per class.

They train with the same loop, losses, class weights and discriminator as the patch
QGAN (:func:`qmodels.adversarial.train_gan`), so a comparison isolates the generator:

* ``gan1``: an MLP with about as many trainable parameters per class as the QGAN's
  quantum angles (noise → h → grid² pixels, h chosen to match), then the QGAN's own
  classical post-processing (bilinear upsampling + 3×3 conv + sigmoid);
* ``gan2``: a larger MLP (noise → 128 → 256 → image, sigmoid);
* ``dcgan`` (Radford et al. 2016): noise → linear → 64 × s/4 × s/4 → transposed convs
  with batch norm and ReLU → sigmoid image, and a convolutional discriminator with
  the class as extra input planes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import nn

from qmodels.adversarial import GAN
from qmodels.qgan import Discriminator, QGANConfig

Kind = Literal["gan1", "gan2", "dcgan"]


@dataclass(frozen=True)
class ClassicalGANConfig:
    kind: Kind = "gan1"
    num_classes: int = 3
    image_size: int = 28
    in_channels: int = 1
    latent: int = 5  # the QGAN's noise size (one angle per qubit)
    grid: int = 8  # gan1: side of the MLP-made image, as the QGAN's grid
    match_parameters: int = 120  # gan1: trainable parameters per class to match (the QGAN's angles per class)
    disc_hidden: tuple[int, ...] = (128, 32)

    @property
    def gan1_hidden(self) -> int:
        """h with (latent + 1)·h + (h + 1)·grid² ≈ ``match_parameters`` (at least 1)."""
        pixels = self.in_channels * self.grid**2
        return max(1, round((self.match_parameters - pixels) / (self.latent + 1 + pixels)))


class _PerClass(nn.Module):
    """C independent generators behind the interface ``train_gan`` expects."""

    def __init__(self, cfg: ClassicalGANConfig, nets: Sequence[nn.Module]) -> None:
        super().__init__()
        self.cfg = cfg
        self.nets = nn.ModuleList(nets)

    def sample_noise(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(batch, self.cfg.latent, generator=generator)

    def forward(self, noise: torch.Tensor, classes: Sequence[int] | None = None) -> torch.Tensor:
        classes = range(self.cfg.num_classes) if classes is None else classes
        return torch.stack([self.nets[c](noise) for c in classes])


class GridDecoder(nn.Module):
    """grid → image size: bilinear + 3×3 conv + sigmoid, the QGAN's post-processing."""

    def __init__(self, channels: int, grid: int, size: int) -> None:
        super().__init__()
        self.channels, self.grid, self.size = channels, grid, size
        self.conv = nn.Conv2d(channels, channels, 3, padding=1) if grid < size else None

    def forward(self, flat: torch.Tensor) -> torch.Tensor:
        img = torch.sigmoid(flat).view(-1, self.channels, self.grid, self.grid)
        if self.conv is None:
            return img
        up = nn.functional.interpolate(img, size=self.size, mode="bilinear", align_corners=False)
        return torch.sigmoid(self.conv(up) * 4 - 2)


def _gan1(cfg: ClassicalGANConfig) -> nn.Module:
    h, grid = cfg.gan1_hidden, min(cfg.grid, cfg.image_size)
    return nn.Sequential(nn.Linear(cfg.latent, h), nn.LeakyReLU(0.2), nn.Linear(h, cfg.in_channels * grid**2),
                         GridDecoder(cfg.in_channels, grid, cfg.image_size))


def _gan2(cfg: ClassicalGANConfig) -> nn.Module:
    c, s = cfg.in_channels, cfg.image_size
    return nn.Sequential(nn.Linear(cfg.latent, 128), nn.LeakyReLU(0.2), nn.Linear(128, 256), nn.LeakyReLU(0.2),
                         nn.Linear(256, c * s * s), nn.Sigmoid(), nn.Unflatten(1, (c, s, s)))


def _dcgan(cfg: ClassicalGANConfig) -> nn.Module:
    c, s = cfg.in_channels, cfg.image_size
    base = math.ceil(s / 4)
    layers: list[nn.Module] = [
        nn.Linear(cfg.latent, 64 * base * base), nn.Unflatten(1, (64, base, base)), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.ConvTranspose2d(32, c, 4, stride=2, padding=1), nn.Sigmoid(),
    ]
    if 4 * base != s:
        layers.append(nn.Upsample(size=s, mode="bilinear", align_corners=False))
    return nn.Sequential(*layers)


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator: strided convs with LeakyReLU; the class enters as one-hot planes."""

    def __init__(self, cfg: ClassicalGANConfig) -> None:
        super().__init__()
        self.num_classes = cfg.num_classes
        self.net = nn.Sequential(
            nn.Conv2d(cfg.in_channels + cfg.num_classes, 32, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64 * 4, 1),
        )

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        planes = nn.functional.one_hot(labels, self.num_classes).to(images.dtype)[:, :, None, None]
        return self.net(torch.cat([images, planes.expand(-1, -1, *images.shape[2:])], dim=1)).squeeze(1)


_BUILDERS = {"gan1": _gan1, "gan2": _gan2, "dcgan": _dcgan}


@dataclass
class ClassicalGAN(GAN):
    cfg: ClassicalGANConfig
    config_type = ClassicalGANConfig

    @classmethod
    def create(cls, cfg: ClassicalGANConfig, seed: int = 0) -> "ClassicalGAN":
        if cfg.kind not in _BUILDERS:
            raise ValueError(f"unknown classical GAN {cfg.kind!r}; expected one of {', '.join(_BUILDERS)}")
        torch.manual_seed(seed)
        generator = _PerClass(cfg, [_BUILDERS[cfg.kind](cfg) for _ in range(cfg.num_classes)])
        if cfg.kind == "dcgan":
            discriminator: nn.Module = ConvDiscriminator(cfg)
        else:
            discriminator = Discriminator(QGANConfig(num_classes=cfg.num_classes, image_size=cfg.image_size,
                                                     in_channels=cfg.in_channels, disc_hidden=cfg.disc_hidden))
        return cls(cfg, generator, discriminator)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
