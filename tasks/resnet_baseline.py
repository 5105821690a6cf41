"""Side stage, resnet_baseline: the real-only ResNet of a run judged by a ResNet (``evaluate.classifier: resnet18|resnet50``).

Trained here once, with evaluate's settings and the run's seed, on the real training split; evaluate compares
its own ResNet (trained on the merged set) with this one instead of training it again beside every method.
In a grid the run is keyed by the params it reads (seed, device, evaluate) and the real split, so every method
and every mixing ratio of a (regime, seed) shares it, and it is also the grid's ``none`` control.
Under the HQCNN judge (the default) it trains nothing: its record says so, and evaluate uses train_baseline's model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from qaug.device import device_of
from qaug.io import InputError, load_image_set, read_json, write_json, write_metrics
from qaug.params import section, seed_of
from tasks.layout import dep, out, rooted
from tasks.resnet_judge import EvaluateParams, fit_resnet, read_backbone, resnet_summary

_OWN = ("training", "history", "trained", "params", "environment")  # the record's keys that are not test metrics


@dataclass(frozen=True)
class ResNetBaselinePaths:
    train: Path = dep("data/prepared/train.npz")
    test: Path = dep("data/prepared/test.npz")
    metrics: Path = out("metrics/resnet_baseline.json")


@dataclass(frozen=True)
class ResNetBaseline:
    metrics: dict  # the test metrics, exactly as fit_resnet returned them
    training: dict  # resnet_summary's record
    loss: list[float]  # training loss per epoch


def settings(params: EvaluateParams, seed: int) -> dict:
    """What the baseline was trained with: evaluate refuses a record made under other settings."""
    return {"evaluate": asdict(params), "seed": seed}


def run(params: EvaluateParams, seed: int, device: torch.device, paths: ResNetBaselinePaths) -> dict:
    if params.classifier == "hqcnn":  # nothing to train: the HQCNN's baseline is train_baseline's model
        write_json(paths.metrics, {"trained": False, "params": settings(params, seed),
                                   "note": "evaluate.classifier is hqcnn: no ResNet judges this run"})
        return {"trained": False}
    train, test = load_image_set(paths.train), load_image_set(paths.test)
    result, metrics = fit_resnet(params, seed, train, test, device, read_backbone(params))
    metrics["training"] = resnet_summary(result, len(train), params, seed)
    record = metrics | {"history": result.history, "trained": True, "params": settings(params, seed)}
    write_metrics(paths.metrics, record, device)
    return {"trained": True, "accuracy": metrics["accuracy"], "steps": result.steps}


def read_baseline(path: Path, params: EvaluateParams, seed: int) -> ResNetBaseline:
    """The baseline ResNet's record at ``path``, checked to be the one these params train (InputError otherwise)."""
    record = read_json(path, "trained", "params")
    if record["params"] != settings(params, seed):
        raise InputError(f"{path} holds the baseline of other settings ({record['params']}) than evaluate's "
                         f"({settings(params, seed)}); run stage resnet_baseline first (`qaug run`, or `qaug stage resnet_baseline`)", path)
    return ResNetBaseline({k: v for k, v in record.items() if k not in _OWN}, record["training"], record["history"]["loss"])


def parse(raw: dict) -> tuple:
    return section(EvaluateParams, raw, "evaluate"), seed_of(raw), device_of(raw)


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(ResNetBaselinePaths(), root))
