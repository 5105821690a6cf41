"""Atomic, byte-reproducible file outputs.

Every stage output goes through here: written to a temporary file in the target
folder and renamed over the target only when complete, so an interrupted stage
never leaves a half-written file (and an earlier version stays intact). Writers
avoid timestamps (``np.savez`` stamps the current time into its zip entries), so
the same data gives the same bytes and DVC hashes stay stable.
"""

from __future__ import annotations

import csv
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
    """A stage's input files are missing pieces or disagree with each other (the message says which)."""


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


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


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


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    with np.load(_existing(path), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return write_bytes(path, buf.getvalue())


def load_torch(path: str | os.PathLike) -> Any:
    return torch.load(_existing(path), map_location="cpu", weights_only=True)


def load_image_set(path: str | os.PathLike) -> ImageSet:
    """An image set written by a stage (images, labels, classes; extra arrays ignored)."""
    from qaug.data import ImageSet

    data = load_arrays(path)
    return ImageSet(data["images"], data["labels"], tuple(data["classes"].tolist()))
