"""HQCNN and QGAN: gradients reach every parameter, training moves the loss, checkpoints round-trip."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from qaug.data import embedded_mnist, resize, split_per_class
from qmodels.hqcnn import HQCNN, HQCNNConfig, TrainConfig, predict_proba, train_hqcnn
from qmodels.adversarial import GANTrainConfig, normalise_weights, train_gan
from qmodels.counts import batch_counts
from qmodels.ema import WeightAverage
from qmodels.qgan import QGAN, QGANConfig, PatchGenerator
from tests.helpers import assert_every_parameter_learns


@pytest.fixture(scope="module")
def tiny():
    x, y = embedded_mnist()
    s = split_per_class(x, y, (0, 1, 2), {"train": 12, "test": 10}, seed=0)
    return {k: (resize(v.images, 8), v.labels) for k, v in s.items()}


def test_hqcnn_every_parameter_gets_gradient(tiny) -> None:
    x, y = tiny["train"]
    model = HQCNN(HQCNNConfig(image_size=8))
    loss = torch.nn.functional.cross_entropy(model(torch.as_tensor(x)), torch.as_tensor(y))
    assert_every_parameter_learns(model, loss)


def test_qgan_every_parameter_gets_gradient(tiny) -> None:
    x, y = tiny["train"]
    qgan = QGAN.create(QGANConfig(image_size=8, grid=4, num_layers=2))
    fake = qgan.generator(qgan.generator.sample_noise(4)).flatten(0, 1)
    labels = torch.arange(3).repeat_interleave(4)
    loss = -qgan.discriminator(fake, labels).mean() + qgan.discriminator(torch.as_tensor(x[:12]), torch.as_tensor(y[:12])).mean()
    assert_every_parameter_learns(qgan.generator, loss)
    assert_every_parameter_learns(qgan.discriminator, -qgan.discriminator(fake.detach(), labels).mean())


def test_detached_quantum_output_is_caught() -> None:
    """The bug of a public QGAN implementation: quantum output detached from the graph."""

    class Detached(PatchGenerator):
        def forward(self, noise, classes=None):
            return super().forward(noise, classes).detach() * self.post[0].weight.sum()

    gen = Detached(QGANConfig(image_size=8, grid=4, num_layers=2))
    loss = gen(gen.sample_noise(3)).sum()
    with pytest.raises(AssertionError, match="quantum.weight"):
        assert_every_parameter_learns(gen, loss)


def test_hqcnn_training_reduces_loss_and_is_seeded(tiny) -> None:
    x, y = tiny["train"]
    cfg = TrainConfig(epochs=6, min_steps=0, seed=1)
    a = train_hqcnn(HQCNNConfig(image_size=8), cfg, x, y)
    b = train_hqcnn(HQCNNConfig(image_size=8), cfg, x, y)
    assert a.history["loss"][-1] < a.history["loss"][0]
    assert a.history["loss"] == b.history["loss"]
    p = predict_proba(a.model, tiny["test"][0])
    assert p.shape == (30, 3) and np.allclose(p.sum(1), 1, atol=1e-5)


def test_hqcnn_collapse_is_detected_logged_and_restarted(tiny, caplog) -> None:
    """A learning rate of 0 cannot learn: every attempt collapses; each is logged."""
    x, y = tiny["train"]
    cfg = TrainConfig(epochs=2, min_steps=0, lr=0.0, max_restarts=2)
    with caplog.at_level(logging.WARNING, logger="qaug.hqcnn"):
        r = train_hqcnn(HQCNNConfig(image_size=8), cfg, x, y)
    assert r.collapsed_attempts == [0, 1, 2] and r.restarts == 2
    assert sum("restarting" in m for m in caplog.messages) == 2
    assert sum("still collapsed" in m for m in caplog.messages) == 1
    healthy = train_hqcnn(HQCNNConfig(image_size=8), TrainConfig(epochs=20, max_restarts=2), x, y)
    assert healthy.collapsed_attempts == [] and healthy.history["accuracy"][-1] > 0.6


def test_hqcnn_rejects_wrong_image_shape(tiny) -> None:
    x, y = tiny["train"]
    with pytest.raises(ValueError, match="the model expects"):
        train_hqcnn(HQCNNConfig(image_size=28), TrainConfig(epochs=1), x, y)


def test_qgan_trains_weighted_and_checkpoints_round_trip(tiny) -> None:
    x, y = tiny["train"]
    cfg = QGANConfig(image_size=8, grid=4, num_layers=2, disc_hidden=(16,))
    qgan = QGAN.create(cfg, seed=0)
    before = qgan.generator.quantum.weight.detach().clone()
    train_gan(qgan, x, y, GANTrainConfig(steps=5, batch_size=4), class_weights=[0.6, 0.3, 0.1])
    assert len(qgan.history["loss_d"]) == 5 and np.isfinite(qgan.history["loss_g"]).all()
    assert not torch.equal(before, qgan.generator.quantum.weight)
    restored = QGAN.from_checkpoint(qgan.checkpoint())
    np.testing.assert_array_equal(qgan.sample(1, 6, seed=3), restored.sample(1, 6, seed=3))
    s = qgan.sample(2, 5, seed=1)
    assert s.shape == (5, 1, 8, 8) and s.min() >= 0 and s.max() <= 1


def test_qgan_class_weights_zero_class_gets_no_generator_signal(tiny) -> None:
    x, y = tiny["train"]
    qgan = QGAN.create(QGANConfig(image_size=8, grid=None, num_layers=2, disc_hidden=(16,)), seed=0)
    w0 = qgan.generator.quantum.weight.detach().clone().view(3, qgan.cfg.num_patches, -1)
    train_gan(qgan, x, y, GANTrainConfig(steps=3, batch_size=4), class_weights=[0.0, 1.0, 1.0])
    w1 = qgan.generator.quantum.weight.detach().view(3, qgan.cfg.num_patches, -1)
    assert torch.equal(w0[0], w1[0]) and not torch.equal(w0[1], w1[1])


def test_class_weights_are_validated() -> None:
    assert normalise_weights(None, 3).tolist() == [1, 1, 1]
    assert normalise_weights([1, 1, 2], 3).tolist() == [0.75, 0.75, 1.5]
    with pytest.raises(ValueError, match="class_weights"):
        normalise_weights([1, -1, 2], 3)


def test_real_batch_follows_class_weights() -> None:
    assert batch_counts(torch.tensor([1.0, 1.0, 1.0]), 96) == [32, 32, 32]
    assert batch_counts(torch.tensor([0.5, 0.25, 0.25]), 10) == [5, 3, 2]  # largest remainder, ties by order
    assert batch_counts(torch.tensor([0.0, 2.0, 1.0]), 7) == [0, 5, 2]
    assert sum(batch_counts(torch.tensor([0.37, 0.21, 0.42]), 96)) == 96


def test_zero_weight_class_needs_no_images(tiny) -> None:
    x, y = tiny["train"]
    keep = y != 0
    qgan = QGAN.create(QGANConfig(image_size=8, grid=None, num_layers=2, disc_hidden=(16,)), seed=0)
    train_gan(qgan, x[keep], y[keep], GANTrainConfig(steps=2, batch_size=4), class_weights=[0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"no training images for classes \[0\]"):
        train_gan(qgan, x[keep], y[keep], GANTrainConfig(steps=2, batch_size=4))


def test_the_average_is_swapped_in_and_the_trained_weights_come_back_bit_for_bit() -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    ema = WeightAverage(net, 0.9)
    with torch.no_grad():
        net.weight.add_(torch.randn(2, 3))
    ema.update()
    trained = net.weight.detach().clone()
    with ema.swapped_in():
        assert torch.equal(net.weight, ema.average[0]) and not torch.equal(net.weight, trained)
    assert torch.equal(net.weight, trained)
