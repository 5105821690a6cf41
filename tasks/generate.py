"""Stage 5, generate: candidate samples per class from the trained QGAN.

Customised strategy (the paper's error-driven one): class i needs
N_i = N_gen·R[i] samples and gets ``oversample``·N_i candidates for the filter.
General strategy (the paper's Algorithm 2): N_gen / C per class, no filtering.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from qaug.device import device_of
from qaug.io import InputError, load_image_set, load_torch, read_json, save_arrays
from qaug.params import section, seed_of
from qmodels.counts import batch_counts
from tasks.layout import dep, journal, out, rooted
from tasks.methods import GAN_METHODS, AugmentParams, load_generator
from tasks.quality import ChecksParams, verify
from tasks.quantum import QuantumParams, model_device, on_backend

log = logging.getLogger("qaug.generate")


@dataclass(frozen=True)
class GeneratePaths:
    model: Path = dep("models/generator.pt")
    errors: Path = dep("data/analysis/errors.json")
    test: Path = dep("data/prepared/test.npz")
    candidates: Path = out("data/generated/candidates.npz")
    checks: Path = out("data/checks/candidates.json")
    jobs: Path = journal("data/jobs/generate.json")


def targets(strategy: str, n_gen: int, shares: list[float]) -> list[int]:
    """N_i per class: N_gen split by R (customised) or evenly (general), exact integers summing to N_gen."""
    weights = torch.as_tensor(shares if strategy == "customised" else [1.0] * len(shares), dtype=torch.float64)
    return batch_counts(weights, n_gen)


def sample_seed(seed: int, stage: str, cls: int, round_: int) -> int:
    """A distinct, reproducible seed per (run seed, stage, class, round)."""
    tag = sum(ord(ch) << (8 * (i % 4)) for i, ch in enumerate(stage))
    return int(np.random.SeedSequence([seed, tag, cls, round_]).generate_state(1)[0])


def run(params: AugmentParams, checks: ChecksParams, quantum: QuantumParams, seed: int, device: torch.device, paths: GeneratePaths) -> dict:
    ckpt = load_torch(paths.model, "method", "classes", "class_weights")
    if ckpt["method"] != params.method:
        raise InputError(f"{paths.model} holds a {ckpt['method']} generator but augment.method is {params.method}; rerun train_generator", paths.model)
    sampler = load_generator(paths.model, ckpt, device=lambda layers: model_device(quantum, device, layers))
    shares = read_json(paths.errors, "error_share")["error_share"]
    test = load_image_set(paths.test)
    need = targets(params.strategy, params.n_gen, shares)
    untrained = [ckpt["classes"][c] for c, n in enumerate(need) if n and ckpt["class_weights"][c] == 0]
    if untrained and params.method in GAN_METHODS:
        raise InputError(
            f"classes {untrained} need samples but their generators were trained with weight 0 "
            "(qgan.error_weight = 1 and no errors on them); lower qgan.error_weight or use augment.strategy: customised"
        )
    per_class = [n * (params.oversample if params.strategy == "customised" else 1) for n in need]
    with on_backend(quantum, sampler.quantum_layers, paths.jobs) as backend:
        backend.announce("generate", sum(per_class) * sampler.circuits_per_sample)
        images = []
        for c, k in enumerate(per_class):
            images.append(sampler.sample(c, k, seed=sample_seed(seed, "generate", c, 0)))
            log.info("class %d: %d candidates generated (%d of %d classes)", c, k, c + 1, len(per_class))
    labels = np.concatenate([np.full(k, c, dtype=np.int64) for c, k in enumerate(per_class)])
    images = np.concatenate(images)
    verify(
        "candidates", images, labels, num_classes=len(shares), image_shape=test.images.shape[1:],
        required_per_class=per_class, test_images=test.images, params=checks, report=paths.checks,
        allow_duplicates=params.method == "duplicates",
    )
    save_arrays(
        paths.candidates, images=images, labels=labels, classes=np.array([str(c) for c in test.classes]),
        round=np.zeros(len(labels), dtype=np.int64), targets=np.array(need, dtype=np.int64),
        strategy=np.array(params.strategy), oversample=np.array(params.oversample), backend=np.array(quantum.backend),
        method=np.array(params.method),
    )
    return {"method": params.method, "strategy": params.strategy, "targets": need, "candidates": per_class,
            "backend": backend.record["backend"]}


def parse(raw: dict) -> tuple:
    return (section(AugmentParams, raw, "augment"), section(ChecksParams, raw, "checks"), section(QuantumParams, raw, "quantum"), seed_of(raw),
            device_of(raw))


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(GeneratePaths(), root))
