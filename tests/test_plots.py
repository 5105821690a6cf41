"""PNG writers: valid files, reproducible bytes, atomic writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from qaug import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ["zero", "one", "two"]

WRITERS: dict[str, Callable[[Path], Path]] = {
    "sample_grid": lambda p: plots.sample_grid(
        [np.linspace(0, 1, 2 * 64).reshape(2, 1, 8, 8), np.full((1, 3, 8, 8), 0.5)], ["real", "fake"], p, title="t"
    ),
    "per_class_accuracy": lambda p: plots.per_class_accuracy(NAMES, [0.5, 1.0, 0.25], [0.75, 1.0, 0.0], p),
    "confusion_matrices": lambda p: plots.confusion_matrices(
        NAMES,
        {"baseline": np.array([[5, 1, 0], [2, 3, 1], [0, 0, 6]]), "augmented": np.eye(3, dtype=int) * 6},
        p,
    ),
    "loss_curves": lambda p: plots.loss_curves(
        {"discriminator": [1.4, 1.1, 0.9, 0.8], "generator": [0.7, 0.9]}, p, title="QGAN", xlabel="epoch"
    ),
}


@pytest.mark.parametrize("name", WRITERS)
def test_writer_creates_valid_png_in_new_dir(tmp_path: Path, name: str) -> None:
    path = tmp_path / "nested" / "dir" / f"{name}.png"
    assert WRITERS[name](path) == path
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50 and img.shape[2] in (3, 4)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp files left behind


@pytest.mark.parametrize("name", WRITERS)
def test_writer_is_byte_reproducible(tmp_path: Path, name: str) -> None:
    first = WRITERS[name](tmp_path / "a.png").read_bytes()
    second = WRITERS[name](tmp_path / "b.png").read_bytes()
    assert first == second
    assert b"Software" not in first and b"matplotlib" not in first.lower()


def test_overwrite_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "acc.png"
    path.write_bytes(b"stale")
    plots.per_class_accuracy(NAMES, [0.1, 0.2, 0.3], [0.3, 0.2, 0.1], path)
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in tmp_path.iterdir()] == ["acc.png"]


def test_failed_write_leaves_no_temp_file_and_keeps_old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "loss.png"
    path.write_bytes(b"old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("qaug.io.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        plots.loss_curves({"g": [1.0, 0.5]}, path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]


def test_bad_shapes_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="augmented"):
        plots.per_class_accuracy(NAMES, [0.1, 0.2, 0.3], [0.1], tmp_path / "x.png")
    with pytest.raises(ValueError, match="baseline"):
        plots.confusion_matrices(NAMES, {"baseline": np.zeros((2, 2), dtype=int)}, tmp_path / "y.png")
    with pytest.raises(ValueError, match="curves"):
        plots.loss_curves({}, tmp_path / "z.png")
    assert not list(tmp_path.iterdir())


def test_confusion_matrices_accepts_float_and_single_matrix(tmp_path: Path) -> None:
    path = plots.confusion_matrices(NAMES, {"normalised": np.eye(3) * 0.5}, tmp_path / "cm.png")
    assert mpimg.imread(path).shape[1] < mpimg.imread(WRITERS["confusion_matrices"](tmp_path / "two.png")).shape[1]
