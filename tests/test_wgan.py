"""WGAN-GP: the penalty against hand computations, the losses' signs, training through quantum layers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from qaug.data import embedded_mnist, resize, split_per_class
from qmodels.adversarial import GANTrainConfig, train_gan
from qmodels.qgan import QGAN, QGANConfig
from qmodels.wgan import SampleQGAN, SampleQGANConfig, critic_loss, generator_loss, gradient_penalty, moments, train_sample_qgan
from tests.helpers import assert_every_parameter_learns


def test_gradient_penalty_of_a_linear_critic_is_its_slope_norm_minus_one_squared() -> None:
    w = torch.tensor([3.0, 4.0])  # ‖∇D‖ = 5 everywhere
    critic = lambda v: v @ w + 1.0  # noqa: E731
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx((5 - 1) ** 2)


def test_gradient_penalty_of_a_quadratic_critic_matches_the_hand_computation() -> None:
    """D(x) = Σ x²: ∇D(x̂) = 2x̂, so GP = mean over samples of (2‖x̂‖ − 1)² at x̂ = ε·real + (1 − ε)·fake."""
    real = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    fake = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    gen = torch.Generator().manual_seed(4)
    eps = torch.rand((2, 1), generator=torch.Generator().manual_seed(4))  # the same draw the penalty makes
    mixed = eps * real + (1 - eps) * fake
    by_hand = ((2 * mixed.norm(dim=1) - 1) ** 2).mean()
    got = gradient_penalty(lambda v: v.pow(2).sum(1), real, fake, gen)
    assert got.item() == pytest.approx(by_hand.item(), rel=1e-6)
    a, b = float(eps[0]), float(eps[1])
    assert got.item() == pytest.approx(((2 * np.hypot(a, 1 - a) - 1) ** 2 + (4 * b - 1) ** 2) / 2, rel=1e-6)


def test_one_sided_penalty_ignores_slopes_below_one() -> None:
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    gentle, steep = torch.tensor([0.3, 0.4]), torch.tensor([3.0, 4.0])  # ‖∇D‖ = 0.5 and 5
    assert gradient_penalty(lambda v: v @ gentle, real, fake, one_sided=True).item() == 0.0
    assert gradient_penalty(lambda v: v @ gentle, real, fake).item() == pytest.approx(0.25)
    assert gradient_penalty(lambda v: v @ steep, real, fake, one_sided=True).item() == pytest.approx(16.0)


def test_gradient_penalty_is_differentiable_in_the_critic() -> None:
    critic = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1, bias=False))  # a last bias has no gradient
    assert_every_parameter_learns(critic, gradient_penalty(critic, torch.randn(5, 3), torch.randn(5, 3)))


def test_losses_have_the_wasserstein_signs_and_weights() -> None:
    d_real, d_fake = torch.tensor([2.0, 4.0]), torch.tensor([1.0, 3.0])
    assert critic_loss(d_real, d_fake, torch.tensor(0.5), 10.0).item() == pytest.approx(2.0 - 3.0 + 5.0)
    assert generator_loss(d_fake).item() == pytest.approx(-2.0)
    assert generator_loss(d_fake, torch.tensor([2.0, 0.0])).item() == pytest.approx(-1.0)  # weighted mean


def test_patch_qgan_trains_with_wgan_gp_and_every_quantum_weight_moves() -> None:
    x, y = embedded_mnist()
    s = split_per_class(x, y, (0, 1, 2), {"train": 8}, seed=0)["train"]
    images = resize(s.images, 8)
    qgan = QGAN.create(QGANConfig(image_size=8, grid=4, num_layers=2, disc_hidden=(16,)), seed=0)
    before = qgan.generator.quantum.weight.detach().clone()
    train_gan(qgan, images, s.labels, GANTrainConfig(steps=3, batch_size=4, loss="wgan-gp", n_critic=2, ema_decay=0.0),
               class_weights=[0.5, 0.3, 0.2])
    assert len(qgan.history["loss_d"]) == 3 and np.isfinite(qgan.history["loss_d"] + qgan.history["loss_g"]).all()
    assert (qgan.generator.quantum.weight != before).all()  # every angle got a non-zero update


def test_sample_qgan_of_gunduz_2025_trains_through_its_quantum_layer() -> None:
    """Gunduz's experiment (2 qubits, latent 2, target N(0, 0.2)): a few steps move every weight, outputs stay in [−1, 1]."""
    model = SampleQGAN.create(SampleQGANConfig(steps=3, batch_size=16, n_critic=2, ema_decay=0.0))
    before = [p.detach().clone() for p in model.generator.parameters()]
    train_sample_qgan(model)
    assert all((p != b).all() for p, b in zip(model.generator.parameters(), before))
    assert np.isfinite(model.history["loss_d"] + model.history["loss_g"]).all()
    samples = model.sample(200, seed=1)
    mean, std = moments(samples)
    assert samples.abs().max() <= 1 and np.isfinite([mean, std]).all()


@pytest.mark.slow
def test_sample_qgan_learns_the_gaussian_of_gunduz_2025(tmp_path) -> None:
    """Gunduz's experiment: 2 qubits, latent 2, N(0, 0.2); mean and std within 0.05 of the target (~50 s per seed)."""
    from qaug.gaussian import gaussian_experiment

    result = gaussian_experiment(tmp_path, seeds=(0, 1, 2))
    for seed, run in result["runs"].items():
        assert abs(run["mean"]) < 0.05 and abs(run["std"] - 0.2) < 0.05, (seed, run)
    assert result["all_within_tolerance"]
    assert (tmp_path / "gaussian_histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_qaug_gaussian_writes_moments_and_a_histogram(tmp_path) -> None:
    """The command end to end on a few steps: the exit code says whether every seed met the tolerance."""
    from cli.main import main

    code = main(["gaussian", "--out", str(tmp_path), "--seeds", "3", "4", "--steps", "4"])
    result = json.loads((tmp_path / "gaussian.json").read_text())
    assert set(result["runs"]) == {"3", "4"} and result["config"]["steps"] == 4
    for run in result["runs"].values():
        assert run["within_tolerance"] == (abs(run["mean"]) < 0.05 and abs(run["std"] - 0.2) < 0.05)
    assert code == (0 if result["all_within_tolerance"] else 1)
    assert (tmp_path / "gaussian_histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        main(["gaussian", "--steps", "0"])


@pytest.mark.parametrize("size,channels", [(8, 1), (28, 3)])
def test_hybrid_qgan_for_images_trains_through_its_quantum_layer(size, channels) -> None:
    from qmodels.hybrid_qgan import HybridQGAN, HybridQGANConfig

    gan = HybridQGAN.create(HybridQGANConfig(image_size=size, in_channels=channels, num_qubits=3, latent=3, num_layers=2, grid=4), seed=0)
    fake = gan.generator(gan.generator.sample_noise(4))
    assert fake.shape == (3, 4, channels, size, size) and 0 <= fake.min() and fake.max() <= 1
    labels = torch.arange(3).repeat_interleave(4)
    assert_every_parameter_learns(gan.generator, generator_loss(gan.discriminator(fake.flatten(0, 1), labels)))
    rng = np.random.default_rng(0)
    images, targets = rng.uniform(0, 1, (12, channels, size, size)).astype(np.float32), np.repeat(np.arange(3), 4)
    train_gan(gan, images, targets, GANTrainConfig(steps=2, batch_size=4, loss="wgan-gp", n_critic=2))
    assert np.isfinite(gan.history["loss_d"] + gan.history["loss_g"]).all()
    restored = HybridQGAN.from_checkpoint(gan.checkpoint())
    np.testing.assert_array_equal(gan.sample(2, 3, seed=1), restored.sample(2, 3, seed=1))
