"""Generation metrics on inputs small enough to work out by hand (the values a grid prints for a generated set)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from qaug.generation_metrics import diversity, duplicate_rates, frechet_distance, kernel_inception_distance, nearest_distances


def test_frechet_distance_is_the_formula_on_sample_means_and_covariances() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(40, 3)) * [1, 2, 0.5] + [1, 0, -1]
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * np.real(linalg.sqrtm(ca @ cb)))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)


def test_frechet_distance_of_two_points_each_by_hand() -> None:
    """a = {(0, 0), (2, 2)}, b = a + (3, 3): ‖Δμ‖² = 18; Σ_a = Σ_b = [[2, 2], [2, 2]], (Σ_a Σ_b)^½ = Σ_a: the trace term is 0."""
    a = np.array([[0.0, 0.0], [2.0, 2.0]])
    assert frechet_distance(a, a + 3) == pytest.approx(18.0)
    assert 0.0 <= frechet_distance(a, a) < 1e-12  # never below zero
    with pytest.raises(ValueError, match="got 2 and 1"):
        frechet_distance(a, a[:1])


def test_kid_by_hand_with_every_sample_in_one_subset() -> None:
    """x = {0, 1}, y = {1, 2}, k(u, v) = (uv + 1)³: k_xx off-diagonal 1, k_yy 27, k_xy mean (1 + 1 + 8 + 27)/4 → 1 + 27 − 18.5."""
    x, y = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    assert kernel_inception_distance(x, y, subsets=1) == pytest.approx(9.5)
    assert kernel_inception_distance(x, y, subsets=3, seed=4) == pytest.approx(9.5)  # every subset is the whole set
    x2, y2 = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 1.0], [2.0, 2.0]])  # d = 2: x·y / 2, the same numbers
    assert kernel_inception_distance(x2, y2, subsets=1) == pytest.approx(9.5)


def test_kid_averages_seeded_subsets_of_the_smaller_size() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(30, 4)), rng.normal(size=(25, 4)) + 0.5
    one = kernel_inception_distance(a, b, subsets=5, subset_size=10, seed=2)
    assert one == kernel_inception_distance(a, b, subsets=5, subset_size=10, seed=2)
    assert one != kernel_inception_distance(a, b, subsets=5, subset_size=10, seed=3)
    gen = np.random.default_rng(2)
    values = []
    for _ in range(5):
        x, y = a[gen.choice(30, 10, replace=False)], b[gen.choice(25, 10, replace=False)]
        k = lambda u, v: (u @ v.T / 4 + 1) ** 3  # noqa: E731
        off = ~np.eye(10, dtype=bool)
        values.append(k(x, x)[off].mean() + k(y, y)[off].mean() - 2 * k(x, y).mean())
    assert one == pytest.approx(np.mean(values))
    whole = kernel_inception_distance(a, b, subsets=1)  # 25 = the smaller set: every sample of b, 25 of a
    assert np.isfinite(whole)
    with pytest.raises(ValueError, match="at least 2"):
        kernel_inception_distance(a[:1], b)
    big = rng.normal(size=(150, 4))
    assert kernel_inception_distance(big, big + 0.3) == kernel_inception_distance(big, big + 0.3, subsets=10, subset_size=100, seed=0)


def test_diversity_is_the_mean_over_distinct_pairs() -> None:
    images = np.stack([np.full((1, 2, 2), v, np.float32) for v in (0.0, 1.0, 0.5)])
    assert diversity(images) == pytest.approx(2 / 3)  # pairs 1, 0.5, 0.5
    one_pixel = np.zeros((2, 1, 2, 2), np.float32)
    one_pixel[1, 0, 0, 0] = 1.0
    assert diversity(one_pixel) == pytest.approx(0.5)  # RMS over 4 pixels: √(1/4)
    assert diversity(np.zeros((0, 1, 2, 2))) is None


def test_duplicate_rates_exact_and_near_with_their_threshold() -> None:
    base = np.zeros((1, 1, 2, 2), np.float32)
    images = np.concatenate([base, base, base + 0.015, base + 0.045, base + 0.5])
    assert duplicate_rates(images) == {"exact": 0.2, "near": pytest.approx(0.4)}  # the copy and the 0.015 one are near earlier ones
    assert duplicate_rates(images, near=0.031)["near"] == pytest.approx(0.6)  # 0.045 is 0.03 from 0.015
    assert duplicate_rates(images[::-1].copy())["near"] == pytest.approx(0.4)  # each counted once, against any earlier sample
    assert duplicate_rates(np.zeros((0, 1, 2, 2))) == {"exact": 0.0, "near": 0.0}
    assert duplicate_rates(base) == {"exact": 0.0, "near": 0.0}
    star = np.stack([np.full((1, 2, 2), v, np.float32) for v in (0.5, 0.485, 0.515)])  # both near the first, not each other
    assert duplicate_rates(star)["near"] == pytest.approx(2 / 3)  # the later samples count, not the one they repeat


def test_nearest_distances_mean_and_minimum() -> None:
    images = np.stack([np.full((1, 2, 2), v, np.float32) for v in (0.0, 0.9)])
    reference = np.stack([np.full((1, 2, 2), v, np.float32) for v in (0.2, 1.0, 0.5)])
    assert nearest_distances(images, reference) == {"mean": pytest.approx(0.15), "min": pytest.approx(0.1)}  # 0.2 and 0.1
    assert nearest_distances(images[:0], reference) == {"mean": None, "min": None}
    assert nearest_distances(images, reference[:0]) == {"mean": None, "min": None}
