"""MosaiQ-style QGAN: per-class PCA, sub-generators making coefficients, a discriminator in coefficient space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qmodels.adversarial import GANTrainConfig, train_gan
from qmodels.mosaiq import MosaiQ, MosaiQConfig
from tests.helpers import assert_every_parameter_learns

TINY = dict(sub_generators=2, num_qubits=3, num_layers=2)  # k = 6 components


def low_rank_images(n_per_class: int, channels: int, size: int, rank: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of each class in a rank-``rank`` affine subspace (PCA with k ≥ rank reconstructs them exactly)."""
    g = torch.Generator().manual_seed(seed)
    D = channels * size * size
    out = []
    for _ in range(3):
        mean, basis = torch.rand(D, generator=g) * 0.5 + 0.25, torch.randn(rank, D, generator=g) * 0.02
        out.append((mean + torch.randn(n_per_class, rank, generator=g) @ basis).view(n_per_class, channels, size, size))
    return torch.cat(out), torch.arange(3).repeat_interleave(n_per_class)


@pytest.mark.parametrize("size,channels", [(8, 1), (16, 3)])
def test_pca_round_trip_and_coefficients_span_minus_one_to_one(size, channels) -> None:
    gan = MosaiQ.create(MosaiQConfig(image_size=size, in_channels=channels, **TINY))
    x, y = low_rank_images(20, channels, size, rank=4)
    gan.prepare(x, y)
    coef = gan.generator.pca.coefficients(x, y)
    assert coef.shape == (60, 6) and coef.abs().max() <= 1 + 1e-5
    assert coef[:, 4:].abs().max() < 1e-2  # directions the rank-4 data does not span stay near 0, not scaled-up noise
    for c in range(3):
        back = gan.generator.pca.images(coef[y == c], c, (channels, size, size))
        torch.testing.assert_close(back, x[y == c], atol=1e-4, rtol=0)


def test_the_basis_does_not_depend_on_the_order_of_the_images() -> None:
    """SVD's signs are arbitrary; the fit fixes them, so shuffled data gives the same basis and coefficients."""
    x, y = low_rank_images(20, 1, 8, rank=6)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(1))
    fits = []
    for images, labels in ((x, y), (x[order], y[order])):
        gan = MosaiQ.create(MosaiQConfig(image_size=8, **TINY))
        gan.prepare(images, labels)
        fits.append(gan.generator.pca)
    torch.testing.assert_close(fits[0].basis, fits[1].basis, atol=1e-5, rtol=0)
    torch.testing.assert_close(fits[0].coefficients(x, y), fits[1].coefficients(x, y), atol=1e-4, rtol=0)


def test_generator_makes_class_images_and_every_parameter_learns() -> None:
    gan = MosaiQ.create(MosaiQConfig(image_size=8, **TINY), seed=0)
    x, y = low_rank_images(20, 1, 8, rank=6)
    gan.prepare(x, y)
    fake = gan.generator(gan.generator.sample_noise(4))
    assert fake.shape == (3, 4, 1, 8, 8) and 0 <= fake.min() and fake.max() <= 1
    labels = torch.arange(3).repeat_interleave(4)
    assert_every_parameter_learns(gan.generator, -gan.discriminator(fake.flatten(0, 1), labels).mean())
    assert_every_parameter_learns(gan.discriminator, gan.discriminator(fake.detach().flatten(0, 1), labels).mean())
    assert sum(p.numel() for p in gan.generator.parameters()) == gan.generator.quantum.weight.numel()  # all quantum


@pytest.mark.parametrize("loss", ["minimax", "wgan-gp"])
def test_mosaiq_trains_and_its_checkpoint_keeps_the_basis(loss) -> None:
    gan = MosaiQ.create(MosaiQConfig(image_size=8, **TINY), seed=0)
    before = gan.generator.quantum.weight.detach().clone()
    x, y = low_rank_images(12, 1, 8, rank=6)
    train_gan(gan, x.numpy(), y.numpy(), GANTrainConfig(steps=3, batch_size=4, loss=loss, n_critic=2, ema_decay=0.0))
    assert np.isfinite(gan.history["loss_d"] + gan.history["loss_g"]).all()
    assert (gan.generator.quantum.weight != before).all()
    restored = MosaiQ.from_checkpoint(gan.checkpoint())
    torch.testing.assert_close(restored.generator.pca.basis, gan.generator.pca.basis, rtol=0, atol=0)
    np.testing.assert_array_equal(gan.sample(2, 5, seed=3), restored.sample(2, 5, seed=3))
    labels = torch.zeros(4, dtype=torch.long)
    torch.testing.assert_close(restored.discriminator(x[:4], labels), gan.discriminator(x[:4], labels))  # the basis it projects with


def test_too_few_images_for_the_components_is_named() -> None:
    gan = MosaiQ.create(MosaiQConfig(image_size=8, **TINY))
    x, y = low_rank_images(5, 1, 8, rank=3)
    with pytest.raises(ValueError, match="class 0 has 5 training images; 6 PCA components need at least 7"):
        gan.prepare(x, y)
