"""Stage 7, merge: real training images + accepted generated ones → the augmented training set.

Each row keeps its provenance (``source``: 0 real, 1 generated; ``round``: the
filter round that accepted it, −1 for real images). DVC versions the file, so any
earlier augmented set comes back with ``git checkout <rev> && dvc checkout``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qaug.data import GENERATED, REAL
from qaug.io import InputError, load_arrays, load_image_set, save_arrays, write_metrics
from qaug.params import section
from tasks.layout import dep, out, rooted
from tasks.quality import ChecksParams, verify

log = logging.getLogger("qaug.merge")


@dataclass(frozen=True)
class MergePaths:
    train: Path = dep("data/prepared/train.npz")
    accepted: Path = dep("data/generated/accepted.npz")
    test: Path = dep("data/prepared/test.npz")
    merged: Path = out("data/augmented/train.npz")
    checks: Path = out("data/checks/merged.json")
    summary: Path = out("metrics/merge.json")


def run(checks: ChecksParams, paths: MergePaths) -> dict:
    train, test, acc = load_image_set(paths.train), load_image_set(paths.test), load_arrays(paths.accepted, "images", "labels", "round", "method")
    if acc["images"].shape[1:] != train.images.shape[1:]:
        raise InputError(f"{paths.accepted} images are {acc['images'].shape[1:]}, {paths.train} images {train.images.shape[1:]}; rerun the pipeline from train_generator")
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
    if summary["generated_share"] > 0.5:  # augment.n_gen is absolute: 150 doubles 50 a class, swamps 10 a class
        log.warning("merge: %d of the %d training images (%.0f%%) are generated, more than the real ones; lower augment.n_gen "
                    "(it is a count, not a share of the real set) unless that is what you want",
                    summary["generated"], summary["total"], 100 * summary["generated_share"])
    write_metrics(paths.summary, summary)
    return {k: summary[k] for k in ("total", "real", "generated")}


def parse(raw: dict) -> tuple:
    return (section(ChecksParams, raw, "checks"),)


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(MergePaths(), root))
