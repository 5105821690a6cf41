"""How good a generated set is, offline: distances in a classifier's feature space, diversity, leakage.

Features come from a small CNN trained on the real training split (``qmodels.classical``),
global-average-pooled to one value per channel: the Fréchet distance and KID here are
"classifier-feature" scores, comparable across methods of one run, not Inception FID.

The linear algebra runs in torch (float64, on the CPU), not numpy/scipy: numpy's OpenBLAS
picks its kernels by CPU model at run time and nothing pins them, so the same features gave
FD/KID that differed in the last digits between machines; torch's MKL and vector code paths
are pinned with the rest of a stage (``qaug.reproducible``).
"""

from __future__ import annotations

import numpy as np
import torch


def _f64(x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float64, device="cpu")


def _cov(x: torch.Tensor) -> torch.Tensor:
    centred = x - x.mean(0)
    return centred.T @ centred / (len(x) - 1)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2(Σ_a Σ_b)^½) between two feature sets (n, d), n ≥ 2 each.

    Tr((Σ_a Σ_b)^½) is the sum of the square roots of the eigenvalues of Σ_a^½ Σ_b Σ_a^½ (similar to Σ_a Σ_b,
    and symmetric): two symmetric eigendecompositions instead of a general matrix square root, finite also
    when Σ is singular (fewer samples than feature dimensions)."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least 2 samples per set, got {len(a)} and {len(b)}")
    x, y = _f64(a), _f64(b)
    cov_a, cov_b = _cov(x), _cov(y)
    w, v = torch.linalg.eigh(cov_a)
    root_a = (v * w.clamp(min=0).sqrt()) @ v.T
    inner = root_a @ cov_b @ root_a
    trace_root = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    value = ((x.mean(0) - y.mean(0)) ** 2).sum() + cov_a.trace() + cov_b.trace() - 2 * trace_root
    return max(float(value), 0.0)  # rounding can leave −1e-12 for identical sets


def kernel_inception_distance(a: np.ndarray, b: np.ndarray, subsets: int = 10, subset_size: int = 100, seed: int = 0) -> float:
    """Unbiased MMD² with the cubic polynomial kernel (x·y/d + 1)³, averaged over random subsets."""
    n = min(len(a), len(b), subset_size)
    if n < 2:
        raise ValueError(f"need at least 2 samples per set, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    d = a.shape[1]
    x_all, y_all = _f64(a), _f64(b)
    off = ~torch.eye(n, dtype=torch.bool)
    values = []
    for _ in range(subsets):
        x, y = x_all[rng.choice(len(a), n, replace=False)], y_all[rng.choice(len(b), n, replace=False)]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        values.append(float(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean()))
    return float(np.mean(values))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS pixel distance between every row of a and every row of b (flattened images)."""
    x, y = _f64(a).reshape(len(a), -1), _f64(b).reshape(len(b), -1)
    sq = (x**2).sum(1)[:, None] + (y**2).sum(1)[None] - 2 * x @ y.T
    return (sq.clamp(min=0) / x.shape[1]).sqrt().numpy()


def diversity(images: np.ndarray) -> float | None:
    """Mean RMS pixel distance between distinct samples (None below 2 samples)."""
    if len(images) < 2:
        return None
    dist = _pairwise(images, images)
    return float(dist[~np.eye(len(images), dtype=bool)].mean())


def duplicate_rates(images: np.ndarray, near: float = 0.02) -> dict[str, float]:
    """Share of samples that repeat an earlier one exactly, or within ``near`` RMS pixel distance."""
    n = len(images)
    if n == 0:
        return {"exact": 0.0, "near": 0.0}
    exact = n - len({img.tobytes() for img in images})
    dist = _pairwise(images, images)
    earlier = np.tril(dist < near, k=-1).any(1)  # sample i is near some j < i
    return {"exact": exact / n, "near": float(earlier.mean())}


def nearest_distances(images: np.ndarray, reference: np.ndarray) -> dict[str, float | None]:
    """RMS pixel distance from each sample to its nearest reference image: mean and minimum (leakage check)."""
    if len(images) == 0 or len(reference) == 0:
        return {"mean": None, "min": None}
    nearest = _pairwise(images, reference).min(1)
    return {"mean": float(nearest.mean()), "min": float(nearest.min())}
