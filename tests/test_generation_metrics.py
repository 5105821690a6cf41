"""Generation metrics on inputs whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from qaug.generation_metrics import diversity, duplicate_rates, frechet_distance, kernel_inception_distance, nearest_distances


def _gauss(n: int, d: int, shift: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_a_shift() -> None:
    a = _gauss(400, 4, 0.0, 0)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    near, far = frechet_distance(a, _gauss(400, 4, 0.5, 1)), frechet_distance(a, _gauss(400, 4, 2.0, 1))
    assert 0 < near < far
    assert far == pytest.approx(4 * 2.0**2, rel=0.15)  # ‖Δμ‖² dominates: 4 dims × 2²


def test_frechet_distance_of_known_gaussians() -> None:
    """N(0, I) vs N(0, 4I) in 2-D: Tr(I + 4I − 2·2I) = 2."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(20000, 2)), 2 * rng.normal(size=(20000, 2))
    assert frechet_distance(a, b) == pytest.approx(2.0, rel=0.05)
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(a[:1], b)


def test_kid_is_near_zero_for_one_distribution_and_larger_when_shifted() -> None:
    a, b = _gauss(300, 8, 0.0, 0), _gauss(300, 8, 0.0, 1)
    same = kernel_inception_distance(a, b)
    shifted = kernel_inception_distance(a, _gauss(300, 8, 1.0, 2))
    assert abs(same) < 0.05 < shifted


def test_diversity_duplicates_and_nearest_distances() -> None:
    img = np.zeros((1, 1, 2, 2), dtype=np.float32)
    ones = np.ones((1, 1, 2, 2), dtype=np.float32)
    assert diversity(np.concatenate([img, ones])) == pytest.approx(1.0)  # RMS distance of 0 vs 1 images
    assert diversity(img) is None
    nearly = img + 0.01
    rates = duplicate_rates(np.concatenate([img, img, nearly, ones]))
    assert rates == {"exact": 0.25, "near": 0.5}
    nn = nearest_distances(np.concatenate([img, ones]), np.concatenate([ones * 0.5, ones]))
    assert nn == {"mean": pytest.approx(0.25), "min": pytest.approx(0.0)}


def test_torch_linear_algebra_agrees_with_the_scipy_formulas() -> None:
    """FD, KID and pixel distances run in torch (pinned code paths) instead of numpy's unpinned OpenBLAS: same numbers
    to rounding as the textbook formulas, including a singular covariance (fewer samples than dimensions)."""
    from scipy import linalg

    rng = np.random.default_rng(1)
    for n_a, n_b, d, rel in ((50, 60, 8, 1e-12), (12, 15, 32, 1e-7)):  # singular: both are off the 40-digit value by ~2e-8
        a, b = rng.normal(size=(n_a, d)), rng.normal(0.3, 1.2, size=(n_b, d))
        ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * np.real(linalg.sqrtm(ca @ cb)))
        assert frechet_distance(a, b) == pytest.approx(expected, rel=rel)
    a, b = rng.normal(size=(40, 6)), rng.normal(size=(30, 6))
    pick = np.random.default_rng(0)
    ref = []
    for _ in range(10):
        x, y = a[pick.choice(40, 30, replace=False)], b[pick.choice(30, 30, replace=False)]
        k = lambda u, v: (u @ v.T / 6 + 1) ** 3
        off = ~np.eye(30, dtype=bool)
        ref.append(k(x, x)[off].mean() + k(y, y)[off].mean() - 2 * k(x, y).mean())
    assert kernel_inception_distance(a, b, seed=0) == pytest.approx(np.mean(ref), rel=1e-12)
    images = rng.uniform(size=(5, 1, 3, 3))
    rms = np.sqrt(((images[:, None] - images[None]) ** 2).mean(axis=(2, 3, 4)))
    assert diversity(images) == pytest.approx(rms[~np.eye(5, dtype=bool)].mean(), rel=1e-12)
