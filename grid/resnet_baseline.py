"""The ``none`` control of a grid judged by a ResNet (``evaluate.classifier: resnet18|resnet50``): the ResNet
trained on the real training split alone, with evaluate's settings and the cell's seed.

It is the very model every method's evaluate trains as its baseline (same images, settings, seed and
device: on the CPU the same numbers, tested; a GPU's non-deterministic kernels may move the last digits),
run once per (regime, seed) so the grid can pair every method with it as it pairs HQCNN methods with
train_baseline's model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from qaug.device import device_of
from qaug.io import load_image_set, write_metrics
from qaug.params import section, seed_of
from tasks.evaluate import EvaluateParams, fit_resnet, read_backbone, resnet_summary
from tasks.layout import dep, out, rooted


@dataclass(frozen=True)
class ResNetBaselinePaths:
    train: Path = dep("data/prepared/train.npz")
    test: Path = dep("data/prepared/test.npz")
    metrics: Path = out("metrics/resnet_baseline.json")


def run(params: EvaluateParams, seed: int, device: torch.device, paths: ResNetBaselinePaths) -> dict:
    train, test = load_image_set(paths.train), load_image_set(paths.test)
    result, metrics = fit_resnet(params, seed, train, test, device, read_backbone(params))
    metrics["training"] = resnet_summary(result, len(train), params, seed)
    write_metrics(paths.metrics, metrics, device)
    return {"accuracy": metrics["accuracy"], "steps": result.steps}


def parse(raw: dict) -> tuple:
    return section(EvaluateParams, raw, "evaluate"), seed_of(raw), device_of(raw)


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(ResNetBaselinePaths(), root))
