"""PNG figures (matplotlib, headless).

Every writer saves through ``qaug.io.atomic_path`` (temporary file in the
target directory, then ``os.replace``) so an interrupted run never leaves a
truncated PNG for DVC to hash, and strips the ``Software`` metadata so the same inputs give the same
bytes on the same matplotlib/freetype install.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from qaug.io import atomic_path  # noqa: E402

DPI = 110


def sample_grid(rows: Sequence[np.ndarray], row_labels: Sequence[str], path: Path, title: str = "") -> Path:
    """One row of images (n, C, H, W) per label; grayscale or RGB."""
    cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 0.9, len(rows) * 0.95), squeeze=False)
    for r, (images, label) in enumerate(zip(rows, row_labels)):
        for c in range(cols):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(images):
                img = images[c]
                ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
        axes[r, 0].set_title(label, fontsize=8, loc="left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def per_class_accuracy(
    class_names: Sequence[str], baseline: Sequence[float], augmented: Sequence[float], path: Path
) -> Path:
    """Grouped bars, baseline vs augmented, so per-class gains and losses read at a glance."""
    if not len(baseline) == len(augmented) == len(class_names):
        raise ValueError(
            f"baseline ({len(baseline)}), augmented ({len(augmented)}) and class_names ({len(class_names)}) "
            "must have the same length"
        )
    x = np.arange(len(class_names))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(class_names) + 1.5), 3.2))
    for offset, label, values in ((-width / 2, "baseline", baseline), (width / 2, "augmented", augmented)):
        bars = ax.bar(x + offset, np.asarray(values, dtype=float), width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(x, [str(c) for c in class_names])
    # Head-room above 1.0 keeps the value labels of perfect classes inside the axes.
    ax.set_ylim(0, 1.12)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("accuracy")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False, fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def confusion_matrices(class_names: Sequence[str], matrices: Mapping[str, np.ndarray], path: Path) -> Path:
    """Side-by-side heatmaps on one shared colour scale, with the count written in each cell."""
    if not matrices:
        raise ValueError("matrices must contain at least one confusion matrix")
    n = len(class_names)
    arrays = {name: np.asarray(m) for name, m in matrices.items()}
    for name, m in arrays.items():
        if m.shape != (n, n):
            raise ValueError(f"matrices[{name!r}] has shape {m.shape}, expected ({n}, {n}) for {n} class_names")
    vmax = max(float(m.max()) for m in arrays.values()) or 1.0
    side = max(2.6, 0.45 * n + 1.3)
    # Extra height: square axes in a square cell let tight_layout clip the title and x label.
    fig, axes = plt.subplots(1, len(arrays), figsize=(side * len(arrays), side + 0.5), squeeze=False)
    for ax, (name, m) in zip(axes[0], arrays.items()):
        _heatmap(ax, m, [str(c) for c in class_names], vmax)
        ax.set_title(name, fontsize=9)
    axes[0, 0].set_ylabel("true")
    fig.tight_layout()
    return _save(fig, path)


def loss_curves(curves: Mapping[str, Sequence[float]], path: Path, title: str = "", xlabel: str = "step") -> Path:
    """One line per named curve; each is plotted against its own index, so lengths may differ."""
    if not curves:
        raise ValueError("curves must contain at least one named curve")
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    for name, values in curves.items():
        y = np.asarray(values, dtype=float)
        ax.plot(np.arange(len(y)), y, label=name, linewidth=1.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def sample_histograms(panels: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str = "",
                      bins: int = 40, value_range: tuple[float, float] = (-1.0, 1.0)) -> Path:
    """One panel per name: a real-vs-generated density histogram of 1-D samples, with their mean and std."""
    if not panels:
        raise ValueError("panels must contain at least one (real, generated) pair")
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 2.8), squeeze=False, sharey=True)
    edges = np.linspace(*value_range, bins + 1)
    for ax, (name, (real, generated)) in zip(axes[0], panels.items()):
        for values, label, colour in ((real, "real", "tab:blue"), (generated, "generated", "tab:orange")):
            v = np.asarray(values, dtype=float).ravel()
            ax.hist(v, bins=edges, density=True, alpha=0.55, color=colour,
                    label=f"{label}: μ {v.mean():+.3f}, σ {v.std():.3f}")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.35)  # room for the legend above the peak
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("x")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("density")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _heatmap(ax: plt.Axes, m: np.ndarray, labels: list[str], vmax: float) -> None:
    """Counts as integers; a float (e.g. normalised) matrix gets two decimals."""
    ax.imshow(m, cmap="Blues", vmin=0, vmax=vmax)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("predicted")
    fmt = "{:d}" if np.issubdtype(m.dtype, np.integer) else "{:.2f}"
    for (i, j), v in np.ndenumerate(m):
        colour = "white" if v > vmax / 2 else "black"
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=8, color=colour)


def _save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` atomically and reproducibly, and always close it."""
    try:
        with atomic_path(path) as tmp:
            # The temporary name does not end in .png, so the format must be explicit.
            fig.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    return Path(path)
