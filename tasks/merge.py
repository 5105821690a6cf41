"""Stage 7, merge: real training images + accepted generated ones → the augmented training set.

Each row keeps its provenance (``source``: 0 real, 1 generated; ``round``: the
filter round that accepted it, −1 for real images). With ``merge.mixing_ratio`` α (HybridQ's
protocol), generated images make up the share α of the merged set: α/(1 − α) times the real
count, split over the classes in the real set's proportions (largest remainder) and drawn,
seeded, from each class's accepted images; without it every accepted image goes in. DVC versions the file, so any
earlier augmented set comes back with ``git checkout <rev> && dvc checkout``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from qaug.data import GENERATED, REAL
from qaug.io import InputError, load_arrays, load_image_set, save_arrays, write_metrics
from qaug.params import ParamsError, require, section, seed_of
from qmodels.counts import batch_counts
from tasks.layout import dep, out, rooted
from tasks.quality import ChecksParams, verify

log = logging.getLogger("qaug.merge")


@dataclass(frozen=True)
class MergeParams:
    mixing_ratio: float | None = None  # α: the generated share of the merged set; None = every accepted image

    def validate(self) -> None:
        require(self.mixing_ratio is None or 0 <= self.mixing_ratio < 1, "mixing_ratio", "must be in [0, 1) or null")


def mixing_counts(real_per_class: np.ndarray, alpha: float) -> np.ndarray:
    """Generated images per class for share α of the merged set: round(α/(1 − α)·real) in all, split in the real
    classes' proportions by largest remainder (α = 0.5: as many generated as real images in every class)."""
    total = round(alpha / (1 - alpha) * int(real_per_class.sum()))
    return np.array(batch_counts(torch.as_tensor(real_per_class, dtype=torch.float64), total), dtype=np.int64)


def mix(acc: dict, real_per_class: np.ndarray, alpha: float, seed: int, names: list[str]) -> dict:
    """The accepted set cut down to ``mixing_counts``, each class's images drawn without replacement."""
    want = mixing_counts(real_per_class, alpha)
    have = np.bincount(acc["labels"], minlength=len(want))[: len(want)]
    short = [f"class {names[c]}: {want[c]} needed, {have[c]} accepted" for c in range(len(want)) if have[c] < want[c]]
    if short:
        raise ParamsError(f"params.yaml: merge.mixing_ratio {alpha} needs more generated images than the filter accepted "
                          f"({'; '.join(short)}); raise augment.n_gen (with augment.strategy: general every class gets "
                          f"n_gen / classes) or lower merge.mixing_ratio")
    rng = np.random.default_rng([seed, 7])  # 7: merge's own stream
    keep = np.concatenate([np.sort(rng.choice(np.flatnonzero(acc["labels"] == c), want[c], replace=False))
                           for c in range(len(want))]).astype(np.int64)
    return {k: acc[k][keep] for k in ("images", "labels", "round")} | {"method": acc["method"]}


@dataclass(frozen=True)
class MergePaths:
    train: Path = dep("data/prepared/train.npz")
    accepted: Path = dep("data/generated/accepted.npz")
    test: Path = dep("data/prepared/test.npz")
    merged: Path = out("data/augmented/train.npz")
    checks: Path = out("data/checks/merged.json")
    summary: Path = out("metrics/merge.json")


def run(params: MergeParams, checks: ChecksParams, seed: int, paths: MergePaths) -> dict:
    train, test, acc = load_image_set(paths.train), load_image_set(paths.test), load_arrays(paths.accepted, "images", "labels", "round", "method")
    if acc["images"].shape[1:] != train.images.shape[1:]:
        raise InputError(f"{paths.accepted} images are {acc['images'].shape[1:]}, {paths.train} images {train.images.shape[1:]}; rerun the pipeline from train_generator")
    if params.mixing_ratio is not None:
        acc = mix(acc, train.counts(), params.mixing_ratio, seed, [str(c) for c in train.classes])
    images = np.concatenate([train.images, acc["images"]]).astype(np.float32)
    labels = np.concatenate([train.labels, acc["labels"]])
    source = np.concatenate([np.full(len(train), REAL), np.full(len(acc["labels"]), GENERATED)]).astype(np.int64)
    rounds = np.concatenate([np.full(len(train), -1, dtype=np.int64), acc["round"]])
    C = len(train.classes)
    required = train.counts() + np.bincount(acc["labels"], minlength=C)[:C]  # out-of-range labels: the label check says so
    verify(
        "merged", images, labels, num_classes=C, image_shape=train.images.shape[1:],
        required_per_class=required.tolist(), test_images=test.images, params=checks, report=paths.checks,
        allow_duplicates=str(acc["method"]) == "duplicates",
    )
    save_arrays(paths.merged, images=images, labels=labels, classes=np.array([str(c) for c in train.classes]), source=source, round=rounds)
    names = [str(c) for c in train.classes]
    summary = {
        "total": int(len(labels)),
        "real": int((source == REAL).sum()),
        "generated": int((source == GENERATED).sum()),
        "generated_share": round(float((source == GENERATED).mean()), 4),
        "per_class": {n: {"real": int(train.counts()[c]), "generated": int(required[c] - train.counts()[c])} for c, n in enumerate(names)},
    }
    if params.mixing_ratio is not None:
        summary["mixing_ratio"] = params.mixing_ratio
    if summary["generated_share"] > 0.5 and params.mixing_ratio is None:  # augment.n_gen is absolute: 150 doubles 50 a class, swamps 10 a class
        log.warning("merge: %d of the %d training images (%.0f%%) are generated, more than the real ones; lower augment.n_gen "
                    "(it is a count, not a share of the real set) unless that is what you want",
                    summary["generated"], summary["total"], 100 * summary["generated_share"])
    write_metrics(paths.summary, summary)
    return {k: summary[k] for k in ("total", "real", "generated")}


def parse(raw: dict) -> tuple:
    return (section(MergeParams, raw, "merge"), section(ChecksParams, raw, "checks"), seed_of(raw))


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(MergePaths(), root))
