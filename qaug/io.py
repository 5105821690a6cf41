"""Atomic, byte-reproducible file outputs.

Every stage output goes through here: written to a temporary file in the target
folder and renamed over the target only when complete, so an interrupted stage
never leaves a half-written file (and an earlier version stays intact). Writers
avoid timestamps (``np.savez`` stamps the current time into its zip entries), so
the same data gives the same bytes and DVC hashes stay stable.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import torch

if TYPE_CHECKING:  # qaug.data imports this module
    from qaug.data import ImageSet

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_UMASK = os.umask(0)
os.umask(_UMASK)


class InputError(ValueError):
    """A stage's input files are missing pieces, damaged or disagree with each other (the message says which).

    ``path`` is the file at fault, when there is one: the CLI adds which stage writes it."""

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)

    def __reduce__(self):  # picklable with its path (grid workers send errors across processes)
        return type(self), (self.args[0] if self.args else "", self.path), self.__dict__


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to ``path``; renamed onto it if the block succeeds, removed if not."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_leftovers(targets: Sequence[str | os.PathLike]) -> list[Path]:
    """Delete the temporaries a killed writer of ``targets`` left (a kill inside :func:`atomic_path`
    leaves ``.<name>.<random>.tmp`` next to the intact target); returns what was removed."""
    removed = []
    for target in map(Path, targets):
        for tmp in target.parent.glob(f".{target.name}.*.tmp") if target.parent.is_dir() else ():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    try:
        text = json.dumps(obj, indent=2, allow_nan=False)
    except ValueError as err:  # NaN/inf: a diverged loss or metric
        raise InputError(f"{path}: {err} (a NaN or infinite value; training probably diverged, try a lower learning rate)") from None
    return write_bytes(path, (text + "\n").encode())


def write_metrics(path: str | os.PathLike, metrics: dict, device: Any = "cpu") -> Path:
    """A metrics file, with what its numbers depend on besides params, data and code (threads, CPU code paths,
    versions, the ``device`` the stage's models ran on: see qaug/reproducible.py)."""
    from qaug.device import describe
    from qaug.reproducible import environment

    return write_json(path, {**metrics, "environment": environment(describe(device))})


def read_json(path: str | os.PathLike, *keys: str) -> Any:
    """The JSON in ``path``; InputError when it is not JSON or (an object) lacks one of ``keys``."""
    path = _existing(path)
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not valid JSON ({err}); it is damaged or truncated", path) from None
    missing = [k for k in keys if not isinstance(obj, dict) or k not in obj]
    if missing:
        raise InputError(f"{path} has no {', '.join(map(repr, missing))} entry; it was written by another version or damaged", path)
    return obj


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_bytes(path, buf.getvalue().encode())


def save_arrays(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Like ``np.savez`` (readable by ``np.load``) but atomic and without timestamps."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
                with zf.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
    return Path(path)


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run the stage that makes it first (`qaug run` or `dvc repro`)")
    return path


def load_arrays(path: str | os.PathLike, *required: str) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, each float array finite; InputError naming the file when it is damaged,
    lacks one of ``required`` or holds NaN/inf."""
    path = _existing(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(f"{path} is not a readable .npz file ({type(err).__name__}: {err}); it is damaged or truncated", path) from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise InputError(f"{path} has no {', '.join(map(repr, missing))} array (it has {', '.join(sorted(arrays)) or 'none'})", path)
    for name, a in arrays.items():
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise InputError(f"{path}: array {name!r} holds NaN or infinite values", path)
    return arrays


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return write_bytes(path, buf.getvalue())


def load_torch(path: str | os.PathLike, *keys: str) -> dict[str, Any]:
    """A checkpoint dict (tensors and plain data only); InputError when it is damaged or lacks one of ``keys``."""
    path = _existing(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises OSError, RuntimeError, UnpicklingError, EOFError, ...
        raise InputError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err}); it is damaged or truncated", path) from None
    missing = [k for k in keys if not isinstance(obj, dict) or k not in obj]
    if missing:
        raise InputError(f"{path} is not the checkpoint expected here (no {', '.join(map(repr, missing))} entry)", path)
    return obj


def load_image_set(path: str | os.PathLike) -> ImageSet:
    """An image set written by a stage (images, labels, classes; extra arrays ignored), checked: images
    (n, C, H, W) in [0, 1], one integer label per image, each a valid class index."""
    return image_set(load_arrays(path, "images", "labels", "classes"), path)


def image_set(data: dict[str, np.ndarray], path: str | os.PathLike) -> ImageSet:
    """The checked image set in arrays ``data`` read from ``path`` (for callers that need its other arrays too)."""
    from qaug.data import ImageSet

    images, labels, classes = data["images"], data["labels"], data["classes"]
    problem = (
        f"images have shape {images.shape}, not (n, C, H, W)" if images.ndim != 4 else
        f"images are {images.dtype}, not floats" if images.dtype.kind != "f" else
        "images lie outside [0, 1]" if images.size and (images.min() < 0 or images.max() > 1) else
        f"labels have shape {labels.shape} for {len(images)} images" if labels.shape != (len(images),) else
        f"labels are {labels.dtype}, not integers" if labels.dtype.kind not in "iu" else
        f"labels outside 0..{len(classes) - 1}" if labels.size and (labels.min() < 0 or labels.max() >= len(classes)) else
        None
    )
    if problem:
        raise InputError(f"{path}: {problem}", path)
    return ImageSet(images, labels, tuple(classes.tolist()))


def sha256(path: str | os.PathLike) -> str:
    """The file's SHA-256 (hex): what a run records of a weights file it reads."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
