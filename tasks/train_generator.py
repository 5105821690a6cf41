"""Stage 4, train_generator: the generator of ``augment.method``, weighted by the baseline's errors.

``qgan`` (default) trains the class-conditional patch QGAN; ``gan1``, ``gan2`` and
``dcgan`` train classical baselines with the same loop and settings (``qgan``
section: loss, steps, batch size, learning rates, EMA); ``conventional``,
``duplicates`` and ``prototype`` train nothing and keep the real training images to resample.
Class weights w_i = (1 − λ)/C + λ·R[i] set the class mix of every real batch and
scale each class's generator loss (see ``qmodels.adversarial``); λ = 0 is uniform,
λ = 1 trains only the classes the baseline gets wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from qaug.device import device_of
from qaug.generation_metrics import frechet_distance, kernel_inception_distance
from qaug.inception import MetricsParams, fid_from, inception_features
from qaug.io import InputError, load_image_set, read_json, save_torch, write_csv, write_metrics
from qaug.params import ParamsError, require, section, seed_of, to_dict
from qaug.plots import loss_curves
from qaug.resample import ResampleConfig, Resampler
from qmodels.adversarial import GAN, GANTrainConfig, train_gan
from qmodels.classical import embed, train_classifier
from qmodels.classical_gan import ClassicalGAN, ClassicalGANConfig, parameter_count
from qmodels.hybrid_qgan import HybridQGAN, HybridQGANConfig
from qmodels.hybridq import HybridQ, HybridQConfig
from qmodels.mosaiq import MosaiQ, MosaiQConfig
from qmodels.qgan import QGAN, QGANConfig
from tasks.layout import dep, out, rooted
from tasks.methods import GAN_METHODS, AugmentParams


@dataclass(frozen=True)
class QGANParams:
    model: Literal["patch", "wgan-gp", "hybridq", "mosaiq"] = "patch"  # patch QGAN, Gunduz's hybrid QGAN (WGAN-GP), HybridQ, MosaiQ
    error_weight: float = 0.5  # λ
    qubits: int = 5
    ancillas: int = 1
    layers: int = 6
    grid: int = 8  # side of the quantum-made image before classical upsampling
    entangler: Literal["cz-chain", "cz-ring", "cnot-chain", "cnot-ring"] = "cz-chain"
    steps: int = 1200
    batch_size: int = 32
    lr_generator: float = 0.02
    lr_discriminator: float = 0.002
    r1_gamma: float = 1.0  # minimax only
    ema_decay: float = 0.99
    loss: Literal["minimax", "wgan-gp"] = "minimax"
    gp_lambda: float = 10.0  # wgan-gp: gradient penalty weight
    n_critic: int = 5  # wgan-gp: critic steps per generator step
    score_every: int = 0  # score samples every k generator steps (FD/KID over training); 0 = off
    score_samples: int = 64  # samples a class per scoring

    def validate(self) -> None:
        require(0.0 <= self.error_weight <= 1.0, "error_weight", f"must be in [0, 1], got {self.error_weight}")
        require(2 <= self.qubits <= 10, "qubits", f"must be between 2 and 10, got {self.qubits}")
        require(0 <= self.ancillas < self.qubits, "ancillas", "must be at least 0 and below qubits")
        for name in ("layers", "steps", "batch_size"):
            require(getattr(self, name) >= 1, name, "must be at least 1")
        require(self.grid >= 2, "grid", "must be at least 2")
        require(0.0 <= self.ema_decay < 1.0, "ema_decay", "must be in [0, 1)")
        require(self.lr_generator > 0, "lr_generator", "must be positive")
        require(self.lr_discriminator > 0, "lr_discriminator", "must be positive")
        require(self.r1_gamma >= 0, "r1_gamma", "must be 0 or more")
        require(self.gp_lambda >= 0, "gp_lambda", "must be 0 or more")
        require(self.n_critic >= 1, "n_critic", "must be at least 1")
        require(self.score_every >= 0, "score_every", "must be 0 (off) or more")
        require(self.score_samples >= 2, "score_samples", "must be at least 2 (KID)")


@dataclass(frozen=True)
class HybridQParams:
    """``qgan.model: hybridq`` (Jiao et al. 2025); steps, batch size, loss and discriminator lr come from ``qgan``."""

    sub_generators: int = 10
    qubits: int = 10  # per sub-generator: the latent has sub_generators × qubits entries (paper: 100)
    layers: int = 6
    lr_quantum: float = 0.3
    lr_classical: float = 2e-4  # encoder and decoder
    noise_adapt: float = 0.05  # relative change of the noise range per step (MosaiQ-style)

    def validate(self) -> None:
        require(self.sub_generators >= 1 and self.layers >= 1, "sub_generators", "and layers must be at least 1")
        require(1 <= self.qubits <= 12, "qubits", f"must be between 1 and 12, got {self.qubits}")
        require(self.lr_quantum > 0 and self.lr_classical > 0, "lr_quantum", "and lr_classical must be positive")
        require(0 <= self.noise_adapt < 1, "noise_adapt", "must be in [0, 1)")


@dataclass(frozen=True)
class MosaiQParams:
    """``qgan.model: mosaiq`` (Silver et al. 2023); steps, batch size, loss and learning rates come from ``qgan``."""

    sub_generators: int = 8
    qubits: int = 5  # per sub-generator: sub_generators × qubits PCA components (MosaiQ: 40)
    layers: int = 6
    noise_adapt: float = 0.05  # relative change of the noise range per step

    def validate(self) -> None:
        require(self.sub_generators >= 1 and self.layers >= 1, "sub_generators",
                f"and layers must be at least 1, got {self.sub_generators} and {self.layers}")
        require(1 <= self.qubits <= 12, "qubits", f"must be between 1 and 12, got {self.qubits}")
        require(0 <= self.noise_adapt < 1, "noise_adapt", f"must be in [0, 1), got {self.noise_adapt}")


@dataclass(frozen=True)
class GeneratorPaths:
    train: Path = dep("data/prepared/train.npz")
    errors: Path = dep("data/analysis/errors.json")
    model: Path = out("models/generator.pt")
    metrics: Path = out("metrics/generator.json")
    losses: Path = out("plots/data/generator_loss.csv")
    quality: Path = out("plots/data/generator_quality.csv")
    figure: Path = out("plots/generator_loss.png")


class QualityTrace:
    """FD and KID of generated images against the real training images, class by class, in the features of a
    small CNN trained on the real split (score_generated's judge), and Inception FID when ``metrics.inception_weights``
    names local weights: the quality-over-training curve of HybridQ's Fig. 4a. It scores the averaged (EMA) weights,
    the ones the stage saves; sampling draws from its own seeded generator, so scoring changes nothing about training."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, names: list[str], samples: int, seed: int,
                 device: torch.device, fid_metric=None, inception: dict | None = None) -> None:
        few = [f"{n} ({int((labels == c).sum())})" for c, n in enumerate(names) if (labels == c).sum() < 2]
        if few:
            raise ParamsError(f"params.yaml: qgan.score_every needs at least 2 real images a class to score against; "
                              f"classes {', '.join(few)} have fewer (set qgan.score_every: 0)")
        self.judge = train_classifier(images, labels, len(names), seed=seed, device=device)
        self.real = [embed(self.judge, images[labels == c]) for c in range(len(names))]
        self.fid_metric, self.inception = fid_metric, inception  # the metric and what metrics record of its weights
        self.real_inception = [inception_features(fid_metric, images[labels == c]) for c in range(len(names))] if fid_metric else []
        self.names, self.samples, self.seed = names, samples, seed
        self.rows: list[dict[str, float]] = []

    def __call__(self, step: int, model: GAN) -> None:
        row: dict[str, float] = {"step": step}
        for c, (name, real) in enumerate(zip(self.names, self.real)):
            samples = model.sample(c, self.samples, seed=self.seed)  # the same noise at every step
            fake = embed(self.judge, samples)
            row[f"fd_{name}"] = frechet_distance(fake, real)
            row[f"kid_{name}"] = kernel_inception_distance(fake, real, subset_size=min(len(fake), len(real)), seed=self.seed)
            if self.fid_metric is not None:
                row[f"inception_fid_{name}"] = frechet_distance(inception_features(self.fid_metric, samples), self.real_inception[c])
        for metric in ("fd", "kid", *(("inception_fid",) if self.fid_metric is not None else ())):
            row[metric] = float(np.mean([row[f"{metric}_{n}"] for n in self.names]))
        self.rows.append(row)


def write_quality(path: Path, names: list[str], rows: list[dict[str, float]], inception: bool = False) -> None:
    """step, fd, kid (class means), then fd_/kid_ per class (a DVC plot), and inception_fid (mean, per class) when
    Inception FID was scored; only the header when scoring was off."""
    metrics = ("fd", "kid", *(("inception_fid",) if inception else ()))
    columns = ["step", *metrics, *[f"{m}_{n}" for n in names for m in metrics]]
    write_csv(path, columns, [[r["step"], *(f"{r[k]:.6f}" for k in columns[1:])] for r in rows])


def class_weights(shares: list[float], error_weight: float) -> list[float]:
    C = len(shares)
    return [(1 - error_weight) / C + error_weight * r for r in shares]


def build(params: QGANParams, hybridq: HybridQParams, mosaiq: MosaiQParams, augment: AugmentParams, num_classes: int,
          image_size: int, channels: int, seed: int) -> GAN:
    """The untrained GAN of ``augment.method``; classical baselines share the QGAN's noise size and grid."""
    qcfg = QGANConfig(
        num_classes=num_classes, image_size=image_size, in_channels=channels, grid=min(params.grid, image_size),
        num_qubits=params.qubits, num_ancillas=params.ancillas, num_layers=params.layers, entangler=params.entangler,
    )
    if augment.method == "qgan" and params.model == "hybridq":
        return HybridQ.create(HybridQConfig(num_classes=num_classes, image_size=image_size, in_channels=channels,
                                            sub_generators=hybridq.sub_generators, num_qubits=hybridq.qubits, num_layers=hybridq.layers,
                                            lr_quantum=hybridq.lr_quantum, lr_classical=hybridq.lr_classical,
                                            noise_adapt=hybridq.noise_adapt), seed=seed)
    if augment.method == "qgan" and params.model == "mosaiq":
        return MosaiQ.create(MosaiQConfig(num_classes=num_classes, image_size=image_size, in_channels=channels,
                                          sub_generators=mosaiq.sub_generators, num_qubits=mosaiq.qubits, num_layers=mosaiq.layers,
                                          noise_adapt=mosaiq.noise_adapt), seed=seed)
    if augment.method == "qgan" and params.model == "wgan-gp":
        return HybridQGAN.create(HybridQGANConfig(num_classes=num_classes, image_size=image_size, in_channels=channels,
                                                  latent=params.qubits, num_qubits=params.qubits, num_layers=params.layers,
                                                  grid=qcfg.grid_side), seed=seed)
    if augment.method == "qgan":
        return QGAN.create(qcfg, seed=seed)
    angles = qcfg.num_patches * params.qubits * params.layers  # the QGAN's quantum parameters per class
    ccfg = ClassicalGANConfig(kind=augment.method, num_classes=num_classes, image_size=image_size, in_channels=channels,  # type: ignore[arg-type]
                              latent=params.qubits, grid=qcfg.grid_side, match_parameters=angles)
    return ClassicalGAN.create(ccfg, seed=seed)


def run(params: QGANParams, hybridq: HybridQParams, mosaiq: MosaiQParams, augment: AugmentParams, scoring: MetricsParams,
        seed: int, device: torch.device, paths: GeneratorPaths) -> dict:
    train = load_image_set(paths.train)
    shares = read_json(paths.errors, "error_share")["error_share"]
    if len(shares) != len(train.classes):
        raise InputError(f"{paths.errors} has {len(shares)} classes but {paths.train} has {len(train.classes)}; rerun analyze_errors")
    weights = class_weights(shares, params.error_weight)
    if augment.method == "qgan" and params.model == "mosaiq":
        k, fewest = mosaiq.sub_generators * mosaiq.qubits, int(np.bincount(train.labels, minlength=len(train.classes)).min())
        if fewest <= k:
            raise ParamsError(f"params.yaml: mosaiq.sub_generators × mosaiq.qubits = {k} PCA components need more than {k} training "
                              f"images a class; {paths.train} has {fewest} in its smallest class (lower them, or raise ingest.train_per_class)")
    C, size = train.images.shape[1], train.images.shape[-1]
    info = {"class_weights": weights, "classes": [str(c) for c in train.classes], "method": augment.method, "model": params.model}
    trace: QualityTrace | None = None
    if augment.method not in GAN_METHODS:
        resampler = Resampler(ResampleConfig(augment.method, augment.rotation, augment.translate, augment.contrast),  # type: ignore[arg-type]
                              train.images, train.labels, len(train.classes))
        save_torch(paths.model, resampler.checkpoint() | info)
        history: dict[str, list[float]] = {"loss_d": [], "loss_g": []}
        counts: dict = {"generator_parameters": 0, "discriminator_parameters": 0, "loss": None}
    else:
        train_cfg = GANTrainConfig(
            steps=params.steps, batch_size=params.batch_size, lr_generator=params.lr_generator,
            lr_discriminator=params.lr_discriminator, r1_gamma=params.r1_gamma, ema_decay=params.ema_decay,
            loss="wgan-gp" if augment.method == "qgan" and params.model == "wgan-gp" else params.loss,
            gp_lambda=params.gp_lambda, n_critic=params.n_critic, seed=seed,
        )
        if params.score_every:
            trace = QualityTrace(train.images, train.labels, info["classes"], params.score_samples, seed, device, *fid_from(scoring))
        model = build(params, hybridq, mosaiq, augment, len(train.classes), size, C, seed)
        counts = {"generator_parameters": parameter_count(model.generator), "discriminator_parameters": parameter_count(model.discriminator)}
        train_gan(model, train.images, train.labels, train_cfg, class_weights=weights, progress=True, device=device,
                  every=params.score_every, on_every=trace)
        save_torch(paths.model, model.to("cpu").checkpoint() | info)  # CPU tensors: the checkpoint loads anywhere
        history = model.history
        counts["loss"] = train_cfg.loss  # what training used (qgan.model: wgan-gp overrides qgan.loss)
    tail = max(1, len(history["loss_d"]) // 10)
    metrics = {
        "method": augment.method,
        "model": params.model if augment.method == "qgan" else None,
        **counts,
        "class_weights": weights,
        "final_loss_d": float(np.mean(history["loss_d"][-tail:])) if history["loss_d"] else None,
        "final_loss_g": float(np.mean(history["loss_g"][-tail:])) if history["loss_g"] else None,
        "params": to_dict(params),
    }
    quality, inception = (trace.rows, trace.fid_metric is not None) if trace else ([], False)
    write_quality(paths.quality, info["classes"], quality, inception)
    if quality:
        metrics["quality"] = quality[-1]  # the last scoring; every one is in the plot
    if inception:
        metrics["quality_inception"] = trace.inception
    write_csv(paths.losses, ["step", "loss_d", "loss_g"], [[i + 1, f"{d:.6f}", f"{g:.6f}"] for i, (d, g) in enumerate(zip(history["loss_d"], history["loss_g"]))])
    loss_curves({"discriminator": history["loss_d"], "generator": history["loss_g"]}, paths.figure, title=f"{augment.method} losses")
    write_metrics(paths.metrics, metrics, device)
    return {"method": augment.method, "class_weights": [round(w, 3) for w in weights], **counts}


def parse(raw: dict) -> tuple:
    return (section(QGANParams, raw, "qgan"), section(HybridQParams, raw, "hybridq"), section(MosaiQParams, raw, "mosaiq"),
            section(AugmentParams, raw, "augment"), section(MetricsParams, raw, "metrics"), seed_of(raw), device_of(raw))


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(GeneratorPaths(), root))
