"""Adversarial training shared by every class-conditional generator in qaug (quantum or classical).

A model here has ``cfg`` (``num_classes``, ``image_size``, ``in_channels``), a
``generator`` whose ``forward(noise, classes=None)`` returns images (K, B, C, H, W) and
``sample_noise(B, generator)``, a conditional ``discriminator(images, labels)`` returning
logits, and a ``history`` dict; :class:`qmodels.qgan.QGAN` and
:class:`qmodels.classical_gan.ClassicalGAN` both are.

Losses: minimax BCE (non-saturating for the generator) with an R1 penalty on the
discriminator's gradient at real images, or WGAN-GP (see :mod:`qmodels.wgan`), with the
penalty at interpolates of real and generated images of the same class.
``class_weights`` w set the class distribution of every real batch (C·B images split
in proportion to w by largest remainder, see ``batch_counts``) and scale each class's
fake-image terms in both losses by C·w_i/Σw (mean 1), so the discriminator and the
generators see the classes in proportion to w; a class with weight 0 gets no training
signal. The returned generator is the moving average (EMA) of its weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar, Literal, Sequence

import numpy as np
import torch
from torch import nn

from qmodels.counts import batch_counts
from qmodels.ema import WeightAverage
from qmodels.layer import QuantumLayer
from qmodels.progress import bar as progress_bar
from qmodels.wgan import critic_loss, generator_loss, gradient_penalty


@dataclass(frozen=True)
class GANTrainConfig:
    steps: int = 1200
    batch_size: int = 32
    lr_generator: float = 0.02
    lr_discriminator: float = 0.002
    r1_gamma: float = 1.0  # R1 penalty (Mescheder et al. 2018): keeps the discriminator from overpowering
    ema_decay: float = 0.99  # the returned generator is an exponential moving average of its weights (0 = off)
    loss: Literal["minimax", "wgan-gp"] = "minimax"
    gp_lambda: float = 10.0  # WGAN-GP gradient penalty weight λ
    n_critic: int = 5  # WGAN-GP critic steps per generator step
    seed: int = 0


@dataclass
class GAN:
    """A class-conditional generator and its discriminator; subclasses say how to build them."""

    cfg: Any
    generator: nn.Module
    discriminator: nn.Module
    history: dict[str, list[float]] = field(default_factory=lambda: {"loss_d": [], "loss_g": []})
    config_type: ClassVar[type]  # the frozen config dataclass ``create`` takes

    @classmethod
    def create(cls, cfg: Any, seed: int = 0) -> "GAN":
        raise NotImplementedError

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> "GAN":
        raw = {k: tuple(v) if isinstance(v, list) else v for k, v in ckpt["config"].items()}  # JSON-ish lists → tuples
        return cls.create(cls.config_type(**raw)).restore(ckpt)

    def checkpoint(self) -> dict:
        """Everything needed to rebuild the model (config, weights, loss history)."""
        return {
            "config": asdict(self.cfg),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "history": self.history,
        }

    def restore(self, ckpt: dict) -> "GAN":
        self.generator.load_state_dict(ckpt["generator"])
        self.discriminator.load_state_dict(ckpt["discriminator"])
        self.history = {k: list(v) for k, v in ckpt["history"].items()}
        return self

    def generator_groups(self, lr: float) -> list[dict]:
        """Optimiser parameter groups of the generator (one learning rate unless a model says otherwise)."""
        return [{"params": list(self.generator.parameters()), "lr": lr}]

    def prepare(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Data-dependent set-up before the first step (MosaiQ fits its PCA here); nothing for most GANs."""

    def auxiliary_loss(self, real: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        """An extra generator-side loss on the real batch (HybridQ's reconstruction); None for plain GANs."""
        return None

    def after_step(self, loss_d: float, loss_g: float) -> None:
        """Called after every generator step with both losses (HybridQ and MosaiQ adapt their noise range)."""

    @property
    def quantum_layers(self) -> list[QuantumLayer]:
        """Layers that run circuits (what a shot-based backend takes over)."""
        return [m for m in self.generator.modules() if isinstance(m, QuantumLayer)]

    @property
    def circuits_per_sample(self) -> int:
        return 0

    def to(self, device: torch.device | str) -> "GAN":
        """Generator and discriminator on ``device`` (their weights, buffers and circuits)."""
        self.generator.to(device)
        self.discriminator.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @torch.no_grad()
    def sample(self, cls_index: int, count: int, seed: int, batch_size: int = 256) -> np.ndarray:
        """``count`` images (count, C, H, W) of class ``cls_index``, reproducible from ``seed`` (the noise is
        drawn on the CPU, so the same on every device)."""
        gen = torch.Generator().manual_seed(seed)
        self.generator.eval()
        out = []
        for start in range(0, count, batch_size):
            noise = self.generator.sample_noise(min(batch_size, count - start), gen).to(self.device)
            out.append(self.generator(noise, [cls_index])[0].cpu())
        if not out:
            s = self.cfg.image_size
            return np.zeros((0, self.cfg.in_channels, s, s), dtype=np.float32)
        return torch.cat(out).numpy().astype(np.float32)


def normalise_weights(class_weights: Sequence[float] | None, num_classes: int) -> torch.Tensor:
    """Per-class loss scale with mean 1 (uniform when None)."""
    if class_weights is None:
        return torch.ones(num_classes)
    w = torch.as_tensor(class_weights, dtype=torch.float32)
    if w.shape != (num_classes,) or (w < 0).any() or w.sum() <= 0 or not torch.isfinite(w).all():
        raise ValueError(f"class_weights must be {num_classes} non-negative finite numbers with a positive sum, got {list(class_weights)}")
    return w * num_classes / w.sum()


def same_class_fakes(fake: torch.Tensor, real_labels: torch.Tensor, per_class: int) -> torch.Tensor:
    """For each real image, a generated image of its own class (``fake`` holds ``per_class`` images of each
    class in class order): WGAN-GP's interpolates then lie between images of one class."""
    index = torch.arange(len(real_labels), device=real_labels.device) % per_class
    return fake.view(-1, per_class, *fake.shape[1:])[real_labels, index]


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor, fake_weight: torch.Tensor, real: torch.Tensor,
                       r1_gamma: float) -> torch.Tensor:
    """Non-saturating GAN loss (BCE, real → 1, fake → 0, fake terms weighted per class) plus
    γ/2·E‖∇ₓD(x)‖² at the real images (R1, Mescheder et al. 2018; ``real`` must require grad when γ > 0)."""
    bce = nn.functional.binary_cross_entropy_with_logits
    loss = (bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake), weight=fake_weight)) / 2
    if r1_gamma > 0:
        (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        loss = loss + r1_gamma / 2 * grad.flatten(1).pow(2).sum(1).mean()
    return loss


def train_gan(
    model: GAN,
    images: np.ndarray,
    labels: np.ndarray,
    cfg: GANTrainConfig,
    class_weights: Sequence[float] | None = None,
    progress: bool = False,
    device: torch.device | str = "cpu",
    every: int = 0,
    on_every: Callable[[int, GAN], None] | None = None,
) -> Any:
    """Adversarial training, every class in every step; ``class_weights`` (the pipeline's
    error weights) set the real batch's class distribution and scale each class's
    fake-image terms (see the module docstring). Random draws stay on the CPU generator and
    move to ``device``, so every device sees the same batches and noise. ``on_every(step, model)``
    runs after every ``every`` generator steps with the averaged (EMA) weights in place, the weights
    the function returns (e.g. to score samples); it must not touch the training's random streams
    (``GAN.sample`` draws from its own generator)."""
    C = model.cfg.num_classes
    model.to(device)
    x = torch.as_tensor(images, dtype=torch.float32).to(device)
    y = torch.as_tensor(labels, dtype=torch.long).to(device)
    expected = (model.cfg.in_channels, model.cfg.image_size, model.cfg.image_size)
    if tuple(x.shape[1:]) != expected:
        raise ValueError(f"images have shape {tuple(x.shape[1:])}, the generator expects {expected}")
    scale = normalise_weights(class_weights, C).to(device)
    by_class = [torch.nonzero(y.cpu() == c).squeeze(1) for c in range(C)]  # CPU indices, drawn from on the CPU
    empty = [c for c, idx in enumerate(by_class) if len(idx) == 0 and scale[c] > 0]
    if empty:
        raise ValueError(f"no training images for classes {empty}")
    model.prepare(x, y)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt_g = torch.optim.Adam(model.generator_groups(cfg.lr_generator), lr=cfg.lr_generator, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=cfg.lr_discriminator, betas=(0.5, 0.999))
    B = cfg.batch_size
    real_counts = batch_counts(scale.cpu(), C * B)
    real_labels = torch.arange(C).repeat_interleave(torch.tensor(real_counts)).to(device)
    fake_labels = torch.arange(C).repeat_interleave(B).to(device)
    per_sample = scale.repeat_interleave(B)
    bce = nn.functional.binary_cross_entropy_with_logits
    wgan = cfg.loss == "wgan-gp"
    d_steps = cfg.n_critic if wgan else 1
    ema = WeightAverage(model.generator, cfg.ema_decay)
    model.generator.train()
    bar = progress_bar(cfg.steps, "GAN", "steps", progress)
    for step in bar:
        for k in range(d_steps):
            real = torch.cat([x[idx[torch.randint(len(idx), (n,), generator=gen)].to(device)]
                              for idx, n in zip(by_class, real_counts) if n])
            with torch.set_grad_enabled(k == d_steps - 1):  # the last batch also trains the generator
                fake = model.generator(model.generator.sample_noise(B, gen).to(device)).flatten(0, 1)  # (C·B, ...)
            if wgan:
                penalty = gradient_penalty(lambda v: model.discriminator(v, real_labels), real,
                                           same_class_fakes(fake, real_labels, B), gen)
                loss_d = critic_loss(model.discriminator(real, real_labels), model.discriminator(fake.detach(), fake_labels),
                                     penalty, cfg.gp_lambda, per_sample)
            else:
                real.requires_grad_(cfg.r1_gamma > 0)
                d_real = model.discriminator(real, real_labels)
                d_fake = model.discriminator(fake.detach(), fake_labels)
                loss_d = discriminator_loss(d_real, d_fake, per_sample, real, cfg.r1_gamma)
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        d_gen = model.discriminator(fake, fake_labels)
        loss_g = generator_loss(d_gen, per_sample) if wgan else bce(d_gen, torch.ones_like(d_gen), weight=per_sample)
        extra = model.auxiliary_loss(real, real_labels)
        opt_g.zero_grad()
        (loss_g if extra is None else loss_g + extra).backward()
        opt_g.step()
        model.after_step(loss_d.item(), loss_g.item())
        ema.update()
        model.history["loss_d"].append(loss_d.item())
        model.history["loss_g"].append(loss_g.item())
        bar.set_postfix(loss_d=f"{model.history['loss_d'][-1]:.3f}", loss_g=f"{model.history['loss_g'][-1]:.3f}")
        if every and on_every is not None and (step + 1) % every == 0:
            with ema.swapped_in():
                on_every(step + 1, model)
            model.generator.train()
    if cfg.ema_decay > 0:
        ema.copy_to_module()
    return model
