"""The ``equal-steps`` control: the baseline classifier retrained on the real images alone for as many
optimiser steps as the augmented model gets (real + generated images, same epochs and batch size).

More data also means more optimiser steps (608 → 870 on the default run); this
control separates "more steps" from "more (generated) data". The classifier is the
one the grid judges by: the HQCNN (``baseline`` settings) or evaluate's ResNet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from qaug.device import device_of
from qaug.io import load_image_set, write_metrics
from qaug.params import section, seed_of
from qmodels.resnet import steps_per_epoch
from tasks.classifier import BaselineParams, fit, score, training_summary
from tasks.resnet_judge import EvaluateParams, fit_resnet, read_backbone, resnet_summary
from tasks.layout import dep, out, rooted
from tasks.merge import MergeParams, mixing_counts
from tasks.methods import AugmentParams


@dataclass(frozen=True)
class EqualStepsPaths:
    train: Path = dep("data/prepared/train.npz")
    test: Path = dep("data/prepared/test.npz")
    metrics: Path = out("metrics/equal_steps.json")


def steps(params: BaselineParams, images: int) -> int:
    """Optimiser steps of ``tasks.classifier.fit`` on ``images`` training images."""
    per_epoch = math.ceil(images / params.batch_size)
    return max(params.epochs, math.ceil(params.min_steps / per_epoch)) * per_epoch


def resnet_epochs(params: EvaluateParams, real: int, generated: int) -> tuple[int, int]:
    """(target steps of the ResNet on real + generated images, epochs on the real ones that reach them)."""
    target = params.epochs * steps_per_epoch(real + generated, params.batch_size)
    return target, math.ceil(target / steps_per_epoch(real, params.batch_size))


def run(params: BaselineParams, downstream: EvaluateParams, augment: AugmentParams, merge: MergeParams, seed: int,
        device: torch.device, paths: EqualStepsPaths) -> dict:
    train, test = load_image_set(paths.train), load_image_set(paths.test)
    generated = augment.n_gen if merge.mixing_ratio is None else int(mixing_counts(train.counts(), merge.mixing_ratio).sum())
    if downstream.classifier == "hqcnn":
        target = steps(params, len(train) + generated)
        longer = replace(params, min_steps=target)  # more epochs on the same images: the same seed, one-cycle over all of them
        result = fit(longer, seed, train, device)
        metrics = score(result.model, test)
        metrics["training"] = training_summary(result, len(train), longer, seed) | {"target_steps": target}
    else:
        target, epochs = resnet_epochs(downstream, len(train), generated)  # cosine decay over all of them
        resnet, metrics = fit_resnet(replace(downstream, epochs=epochs), seed, train, test, device, read_backbone(downstream))
        metrics["training"] = resnet_summary(resnet, len(train), downstream, seed) | {"target_steps": target}
    write_metrics(paths.metrics, metrics, device)
    return {"accuracy": metrics["accuracy"], "steps": metrics["training"]["steps"], "target_steps": target}


def parse(raw: dict) -> tuple:
    return (section(BaselineParams, raw, "baseline"), section(EvaluateParams, raw, "evaluate"), section(AugmentParams, raw, "augment"),
            section(MergeParams, raw, "merge"), seed_of(raw), device_of(raw))


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(EqualStepsPaths(), root))
