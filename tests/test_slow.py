"""Accuracy, fidelity and collapse figures over several seeds (minutes): `make test-slow`."""

from __future__ import annotations

import numpy as np
import pytest

from qaug.data import embedded_mnist, split_per_class
from qmodels.classical import predict, train_classifier
from qmodels.hqcnn import HQCNNConfig, TrainConfig, predict_proba, train_hqcnn
from qmodels.adversarial import GANTrainConfig, train_gan
from qmodels.qgan import QGAN, QGANConfig

pytestmark = pytest.mark.slow
CLASSES = (0, 1, 2)


@pytest.fixture(scope="module")
def mnist():
    return embedded_mnist()


def test_hqcnn_reaches_95_percent_over_3_seeds(mnist) -> None:
    x, y = mnist
    accs = []
    for seed in range(3):
        s = split_per_class(x, y, CLASSES, {"train": 100, "test": 100}, seed=seed)
        r = train_hqcnn(HQCNNConfig(), TrainConfig(seed=seed), s["train"].images, s["train"].labels)
        accs.append(float((predict_proba(r.model, s["test"].images).argmax(1) == s["test"].labels).mean()))
    print(f"HQCNN test accuracy over seeds: {accs}, mean {np.mean(accs):.4f} ± {np.std(accs):.4f}")
    assert np.mean(accs) >= 0.95


def test_qgan_samples_are_recognised_over_3_seeds(mnist) -> None:
    x, y = mnist
    fidelities = []
    for seed in range(3):
        s = split_per_class(x, y, CLASSES, {"train": 100, "judge": 200}, seed=seed)
        judge = train_classifier(s["judge"].images, s["judge"].labels, len(CLASSES), seed=seed)
        qgan = QGAN.create(QGANConfig(), seed=seed)
        train_gan(qgan, s["train"].images, s["train"].labels, GANTrainConfig(seed=seed))
        fid = [float((predict(judge, qgan.sample(c, 300, seed=seed + 10)) == c).mean()) for c in range(3)]
        fidelities.append(float(np.mean(fid)))
        print(f"seed {seed}: label fidelity per class {fid}")
    print(f"QGAN label fidelity over seeds: {fidelities}, mean {np.mean(fidelities):.4f}")
    assert min(fidelities) >= 0.90


def test_collapse_rate_at_10_images_per_class(mnist) -> None:
    x, y = mnist
    collapsed, restarted = 0, 0
    for seed in range(20):
        s = split_per_class(x, y, CLASSES, {"train": 10}, seed=seed)
        r = train_hqcnn(HQCNNConfig(), TrainConfig(seed=seed), s["train"].images, s["train"].labels)
        restarted += bool(r.collapsed_attempts)
        collapsed += bool(r.collapsed_attempts) and r.collapsed_attempts[-1] == r.restarts
    print(f"20 seeds at 10 images/class: {restarted} runs restarted, {collapsed} still collapsed")
    assert collapsed == 0  # none of 20 runs may end collapsed (1 would be 5 %)
