"""Which generator makes the augmentation (``augment`` section): the QGAN or a baseline.

``augment.method``: ``qgan`` (the quantum generator of the ``qgan`` section: the
patch QGAN or, with ``qgan.model: wgan-gp``, Gunduz's hybrid QGAN), the
classical GANs of He et al. (``gan1``, ``gan2``, ``dcgan``; trained with the ``qgan``
section's loss, steps and learning rates), ``conventional`` augmentation,
``duplicates`` (random oversampling of real images) or ``prototype`` (class mean plus
per-pixel noise, a control for QGANs that drift toward the class mean). Every method answers
``sample(cls, count, seed)``, so generate, filter and merge treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Protocol

import numpy as np
import torch

from qaug.io import InputError, load_torch
from qaug.params import require
from qaug.resample import Resampler
from qmodels.adversarial import GAN
from qmodels.classical_gan import ClassicalGAN
from qmodels.hybrid_qgan import HybridQGAN
from qmodels.hybridq import HybridQ
from qmodels.mosaiq import MosaiQ
from qmodels.qgan import QGAN

Method = Literal["qgan", "gan1", "gan2", "dcgan", "conventional", "duplicates", "prototype"]
GAN_METHODS = ("qgan", "gan1", "gan2", "dcgan")


@dataclass(frozen=True)
class AugmentParams:
    method: Method = "qgan"
    strategy: Literal["customised", "general"] = "customised"
    n_gen: int = 150  # generated samples to add in total
    oversample: int = 3  # candidates per needed sample (customised)
    rotation: float = 15.0  # conventional: degrees, ±
    translate: float = 0.1  # conventional: fraction of the side, ±
    contrast: float = 0.3  # conventional: factor in [1 − contrast, 1 + contrast]

    def validate(self) -> None:
        require(self.n_gen >= 1, "n_gen", "must be at least 1")
        require(self.oversample >= 1, "oversample", "must be at least 1")
        require(0 <= self.rotation <= 180, "rotation", "must be in [0, 180] degrees")
        require(0 <= self.translate < 1, "translate", "must be in [0, 1)")
        require(0 <= self.contrast < 1, "contrast", "must be in [0, 1)")


class Sampler(Protocol):
    quantum_layers: list
    circuits_per_sample: int

    def sample(self, cls_index: int, count: int, seed: int) -> np.ndarray: ...


def load_generator(path: Path, ckpt: dict | None = None,
                   device: Callable[[list], torch.device] = lambda layers: torch.device("cpu")) -> Sampler:
    """The generator in ``train_generator``'s checkpoint ``path`` (``ckpt``: its contents, when already loaded),
    a GAN on ``device(its quantum layers)`` (resamplers work on arrays)."""
    ckpt = load_torch(path, "method") if ckpt is None else ckpt
    try:
        sampler = load_sampler(ckpt)
        return sampler.to(device(sampler.quantum_layers)) if isinstance(sampler, GAN) else sampler
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as err:  # missing entries, another configuration
        raise InputError(f"{path} holds a {ckpt['method']} generator this configuration cannot rebuild "
                         f"({type(err).__name__}: {str(err).splitlines()[0]}); rerun train_generator", path) from None


def load_sampler(ckpt: dict) -> Sampler:
    """The generator a ``train_generator`` checkpoint holds."""
    method = ckpt["method"]
    if method == "qgan":
        qgans = {"wgan-gp": HybridQGAN, "hybridq": HybridQ, "mosaiq": MosaiQ}
        return qgans.get(ckpt.get("model", "patch"), QGAN).from_checkpoint(ckpt)
    if method in GAN_METHODS:
        return ClassicalGAN.from_checkpoint(ckpt)
    return Resampler.from_checkpoint(ckpt)
