"""The method's pieces against hand computations: each test fails for a bug a reviewer planted once
(error weights, weight averaging, R1's sign, WGAN-GP's class pairing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qmodels.adversarial import GANTrainConfig, discriminator_loss, same_class_fakes, train_gan
from qmodels.classical_gan import ClassicalGAN, ClassicalGANConfig
from qmodels.ema import WeightAverage
from tasks.train_generator import class_weights


def test_class_weights_mix_uniform_and_error_shares_by_lambda() -> None:
    # λ = 0.3, shares R = (0.7, 0.2, 0.1): w_i = (1 − λ)/C + λ·R_i
    assert class_weights([0.7, 0.2, 0.1], 0.3) == pytest.approx([0.7 / 3 + 0.21, 0.7 / 3 + 0.06, 0.7 / 3 + 0.03])
    assert class_weights([0.7, 0.2, 0.1], 0.0) == pytest.approx([1 / 3] * 3)
    assert class_weights([0.7, 0.2, 0.1], 1.0) == pytest.approx([0.7, 0.2, 0.1])


def test_weight_average_is_the_closed_form_exponential_average() -> None:
    """avg_n = d^n·p_0 + Σ_k (1 − d)·d^(n−k)·p_k."""
    layer = nn.Linear(2, 1)
    d, p0 = 0.8, [p.detach().clone() for p in layer.parameters()]
    ema, seen = WeightAverage(layer, d), []
    for step in range(5):
        with torch.no_grad():
            for p in layer.parameters():
                p.add_(0.1 * (step + 1))
        seen.append([p.detach().clone() for p in layer.parameters()])
        ema.update()
    for i, start in enumerate(p0):
        expected = d**5 * start + sum((1 - d) * d ** (5 - k) * seen[k - 1][i] for k in range(1, 6))
        torch.testing.assert_close(ema.average[i], expected)


class _Recording(ClassicalGAN):
    """Keeps the generator's weights after every optimiser step (after_step runs before the average's update)."""

    def after_step(self, loss_d: float, loss_g: float) -> None:
        self.trace = getattr(self, "trace", []) + [[p.detach().clone() for p in self.generator.parameters()]]


def _tiny_gan(kind: str = "gan1") -> ClassicalGAN:
    return _Recording.create(ClassicalGANConfig(kind=kind, num_classes=2, image_size=8, latent=4, grid=4), seed=0)


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (12, 1, 8, 8)).astype(np.float32), np.repeat([0, 1], 6)


def test_training_returns_the_averaged_generator() -> None:
    gan = _tiny_gan()
    start = [p.detach().clone() for p in gan.generator.parameters()]
    d = 0.7
    train_gan(gan, *_data(), GANTrainConfig(steps=4, batch_size=3, ema_decay=d))
    for i, p in enumerate(gan.generator.parameters()):
        expected = d**4 * start[i] + sum((1 - d) * d ** (4 - k) * gan.trace[k - 1][i] for k in range(1, 5))
        torch.testing.assert_close(p.detach(), expected)
        assert not torch.allclose(p.detach(), gan.trace[-1][i])  # the average, not the last iterate


def test_r1_penalty_on_a_linear_discriminator_by_hand() -> None:
    """D(x) = w·x + b: ∇ₓD = w for every image, so R1 = γ/2·‖w‖², added to the BCE loss."""
    w, b, gamma = torch.tensor([0.5, -1.0, 2.0]), 0.25, 0.8
    real = torch.tensor([[1.0, 0.0, 0.5], [0.2, 0.3, -0.1]], requires_grad=True)
    fake = torch.tensor([[0.0, 1.0, 0.0]])
    d_real, d_fake = real @ w + b, fake @ w + b
    loss = discriminator_loss(d_real, d_fake, torch.ones(1), real, gamma)
    sp = torch.nn.functional.softplus  # BCE with logits: −log σ(z) = softplus(−z), −log(1 − σ(z)) = softplus(z)
    by_hand = (sp(-d_real).mean() + sp(d_fake).mean()) / 2 + gamma / 2 * (w @ w)
    torch.testing.assert_close(loss, by_hand)
    without = discriminator_loss(d_real, d_fake, torch.ones(1), real, 0.0)
    torch.testing.assert_close(loss - without, gamma / 2 * (w @ w))


def test_wgan_gp_interpolates_pair_images_of_the_same_class() -> None:
    C, B = 3, 4
    fake = torch.arange(C).repeat_interleave(B).float().view(C * B, 1, 1, 1) * 10 + torch.arange(B).repeat(C).view(-1, 1, 1, 1)
    real_labels = torch.tensor([2, 0, 1, 1, 0, 2, 2])
    paired = same_class_fakes(fake, real_labels, B)
    assert (paired.flatten() // 10).long().tolist() == real_labels.tolist()  # class digit of each paired fake
    assert len(set(paired.flatten().tolist())) > 3  # different fakes, not one per class


@pytest.mark.parametrize("kind", ["gan1", "dcgan"])
def test_gan_training_is_seeded(kind: str) -> None:
    a, b = _tiny_gan(kind), _tiny_gan(kind)
    for gan in (a, b):
        train_gan(gan, *_data(), GANTrainConfig(steps=2, batch_size=3))
    for p, q in zip(a.generator.parameters(), b.generator.parameters()):
        assert torch.equal(p, q)
