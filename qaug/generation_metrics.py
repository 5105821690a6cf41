"""How good a generated set is, offline: distances in a classifier's feature space, diversity, leakage.

Features come from a small CNN trained on the real training split (``qmodels.classical``),
global-average-pooled to one value per channel: the Fréchet distance and KID here are
"classifier-feature" scores, comparable across methods of one run, not Inception FID.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2(Σ_a Σ_b)^½) between two feature sets (n, d), n ≥ 2 each."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"need at least 2 samples per set, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # fewer samples than feature dimensions makes Σ singular: expected, still finite
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * np.real(root)))
    return max(value, 0.0)  # sqrtm's rounding can leave −1e-12 for identical sets


def kernel_inception_distance(a: np.ndarray, b: np.ndarray, subsets: int = 10, subset_size: int = 100, seed: int = 0) -> float:
    """Unbiased MMD² with the cubic polynomial kernel (x·y/d + 1)³, averaged over random subsets."""
    n = min(len(a), len(b), subset_size)
    if n < 2:
        raise ValueError(f"need at least 2 samples per set, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x, y = a[rng.choice(len(a), n, replace=False)], b[rng.choice(len(b), n, replace=False)]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off = ~np.eye(n, dtype=bool)
        values.append(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean())
    return float(np.mean(values))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS pixel distance between every row of a and every row of b (flattened images)."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T
    return np.sqrt(np.clip(sq, 0, None) / a.shape[1])


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
