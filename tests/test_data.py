import numpy as np
import torch
import pytest

from qaug.data import ImageSet, embedded_mnist, resize, split_per_class


@pytest.fixture(scope="module")
def mnist():
    return embedded_mnist()


def test_embedded_mnist_is_offline_and_normalised(mnist) -> None:
    x, y = mnist
    assert x.shape == (5000, 1, 28, 28) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.bincount(y).tolist() == [500] * 10


def test_splits_are_disjoint_exact_and_seeded(mnist) -> None:
    x, y = mnist
    counts = {"train": 100, "val": 50, "test": 100}
    a = split_per_class(x, y, (0, 1, 2), counts, seed=3)
    b = split_per_class(x, y, (0, 1, 2), counts, seed=3)
    c = split_per_class(x, y, (0, 1, 2), counts, seed=4)
    for name, n in counts.items():
        assert a[name].counts().tolist() == [n] * 3
        np.testing.assert_array_equal(a[name].images, b[name].images)
        np.testing.assert_array_equal(a[name].labels, b[name].labels)
    assert not np.array_equal(a["train"].images, c["train"].images)
    flat = {k: {v.tobytes() for v in s.images} for k, s in a.items()}
    assert not flat["train"] & flat["test"] and not flat["train"] & flat["val"] and not flat["val"] & flat["test"]


def test_labels_are_remapped_in_class_order(mnist) -> None:
    x, y = mnist
    s = split_per_class(x, y, (7, 3), {"train": 5}, seed=0)["train"]
    assert s.classes == (7, 3) and set(s.labels.tolist()) == {0, 1}


def test_too_few_images_is_a_clear_error(mnist) -> None:
    x, y = mnist
    with pytest.raises(ValueError, match="class 1 has 500 images but the splits"):
        split_per_class(x, y, (1,), {"train": 400, "test": 200}, seed=0)


@pytest.mark.parametrize("size", [28, 14, 8])
def test_resize(mnist, size: int) -> None:
    x, _ = mnist
    out = resize(x[:4], size)
    assert out.shape == (4, 1, size, size) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert abs(out.mean() - x[:4].mean()) < 0.02  # antialiased: brightness kept
    from torchvision.transforms.v2 import functional as TF

    expected = TF.resize(torch.from_numpy(x[:4]), [size, size], antialias=True).clamp(0, 1).numpy()
    np.testing.assert_array_equal(out, expected)  # the same as torchvision, bit for bit


def test_imageset_validates_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        ImageSet(np.zeros((3, 8, 8)), np.zeros(3, dtype=np.int64), (0,))


def test_imbalanced_splits_take_per_class_counts_and_keep_the_balanced_draw(mnist) -> None:
    """Per-class counts give exactly those counts; equal counts draw the very images a single number draws."""
    x, y = mnist
    imbalanced = split_per_class(x, y, (0, 1, 2), {"train": [100, 100, 10], "val": 20, "test": [5, 6, 7]}, seed=3)
    assert imbalanced["train"].counts().tolist() == [100, 100, 10]
    assert imbalanced["test"].counts().tolist() == [5, 6, 7]
    seen = [img.tobytes() for part in imbalanced.values() for img in part.images]
    assert len(seen) == len(set(seen))  # disjoint
    same = split_per_class(x, y, (0, 1, 2), {"train": [7, 7, 7], "test": 3}, seed=5)
    plain = split_per_class(x, y, (0, 1, 2), {"train": 7, "test": 3}, seed=5)
    np.testing.assert_array_equal(same["train"].images, plain["train"].images)
    with pytest.raises(ValueError, match="3 classes"):
        split_per_class(x, y, (0, 1, 2), {"train": [1, 2]}, seed=0)


def test_prototype_control_is_the_class_mean_plus_per_pixel_spread() -> None:
    from qaug.resample import ResampleConfig, Resampler

    rng = np.random.default_rng(0)
    images = np.clip(rng.normal(0.5, 0.1, (200, 1, 4, 4)), 0, 1).astype(np.float32)
    images[100:] = np.clip(images[100:] * 0.2, 0, 1)  # class 1 is darker and tighter
    labels = np.repeat([0, 1], 100)
    r = Resampler(ResampleConfig("prototype"), images, labels, 2)
    out = r.sample(1, 4000, seed=1)
    real = images[100:]
    assert out.shape == (4000, 1, 4, 4) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    np.testing.assert_allclose(out.mean(0), real.mean(0), atol=0.01)
    np.testing.assert_allclose(out.std(0), real.std(0), rtol=0.1)
    np.testing.assert_array_equal(out[:10], r.sample(1, 10, seed=1))  # seeded: the same draw
    assert not {img.tobytes() for img in out} & {img.tobytes() for img in images}  # no real image copied
