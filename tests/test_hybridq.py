"""HybridQ latent-space QGAN: 64×64 colour and 28×28 gray, gradients everywhere, adaptive noise, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qmodels.adversarial import GANTrainConfig, train_gan
from qmodels.hybridq import HybridQ, HybridQConfig
from tests.helpers import assert_every_parameter_learns

TINY = dict(sub_generators=2, num_qubits=3, num_layers=2)


@pytest.mark.parametrize("size,channels", [(64, 3), (28, 1)])
def test_hybridq_images_and_every_parameter_learns(size, channels) -> None:
    gan = HybridQ.create(HybridQConfig(image_size=size, in_channels=channels, **TINY), seed=0)
    fake = gan.generator(gan.generator.sample_noise(4))
    assert fake.shape == (3, 4, channels, size, size) and 0 <= fake.min() and fake.max() <= 1
    labels = torch.arange(3).repeat_interleave(4)
    real = torch.rand(12, channels, size, size)
    adversarial = -gan.discriminator(fake.flatten(0, 1), labels).mean()
    assert_every_parameter_learns(gan.generator, adversarial + gan.auxiliary_loss(real, labels))  # encoders via reconstruction
    assert_every_parameter_learns(gan.discriminator, gan.discriminator(fake.detach().flatten(0, 1), labels).mean())


def test_hybridq_uses_the_papers_learning_rates() -> None:
    gan = HybridQ.create(HybridQConfig(image_size=16, **TINY))
    groups = gan.generator_groups(lr=0.123)
    assert [g["lr"] for g in groups] == [0.3, 2e-4]
    assert groups[0]["params"] == [gan.generator.quantum.weight]
    n_classical = sum(p.numel() for p in groups[1]["params"])
    assert n_classical + gan.generator.quantum.weight.numel() == sum(p.numel() for p in gan.generator.parameters())


def test_noise_range_adapts_to_the_loss_ratio_and_is_checkpointed() -> None:
    gan = HybridQ.create(HybridQConfig(image_size=16, noise_adapt=0.1, **TINY))
    gan.after_step(loss_d=0.2, loss_g=2.0)  # generator losing: wider noise
    assert float(gan.generator.noise_range) == pytest.approx(math.pi / 2 * 1.1)
    gan.after_step(loss_d=1.0, loss_g=1.0)  # balanced: unchanged
    gan.after_step(loss_d=2.0, loss_g=0.2)  # generator winning: narrower
    assert float(gan.generator.noise_range) == pytest.approx(math.pi / 2 * 1.1 * 0.9)
    restored = HybridQ.from_checkpoint(gan.checkpoint())
    assert float(restored.generator.noise_range) == pytest.approx(float(gan.generator.noise_range))
    np.testing.assert_array_equal(gan.sample(1, 3, seed=2), restored.sample(1, 3, seed=2))


def test_hybridq_trains_a_few_steps_on_colour_images() -> None:
    gan = HybridQ.create(HybridQConfig(image_size=16, **TINY), seed=0)
    before = gan.generator.quantum.weight.detach().clone()
    rng = np.random.default_rng(0)
    images, labels = rng.uniform(0, 1, (12, 3, 16, 16)).astype(np.float32), np.repeat(np.arange(3), 4)
    train_gan(gan, images, labels, GANTrainConfig(steps=3, batch_size=4, ema_decay=0.0))
    assert np.isfinite(gan.history["loss_d"] + gan.history["loss_g"]).all()
    assert (gan.generator.quantum.weight != before).all()


def test_noise_range_stays_put_under_wgan_gp_losses() -> None:
    gan = HybridQ.create(HybridQConfig(image_size=16, noise_adapt=0.1, **TINY))
    gan.after_step(loss_d=-3.0, loss_g=1.0)  # a critic loss is usually negative: the ratio means nothing
    assert float(gan.generator.noise_range) == pytest.approx(math.pi / 2)
