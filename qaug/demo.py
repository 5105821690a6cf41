"""``qaug demo``: the quantum core alone (HQCNN + patch QGAN on the embedded digits), no pipeline."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from qaug.data import embedded_mnist, resize, split_per_class
from qaug.plots import sample_grid
from qmodels.classical import predict, train_classifier
from qmodels.hqcnn import HQCNNConfig, TrainConfig, predict_proba, train_hqcnn
from qmodels.adversarial import GANTrainConfig, train_gan
from qmodels.qgan import QGAN, QGANConfig


def demo(out: Path, seed: int = 0, image_size: int = 28, epochs: int = 30, qgan_steps: int = 1200) -> dict:
    """Train the HQCNN and the QGAN, score them, write demo.json and a real-vs-generated grid under ``out``."""

    out.mkdir(parents=True, exist_ok=True)
    classes = (0, 1, 2)
    x, y = embedded_mnist()
    splits = split_per_class(x, y, classes, {"train": 100, "test": 100, "reference": 200}, seed=seed)
    train, test, ref = (splits[k] for k in ("train", "test", "reference"))
    size = image_size
    t0 = time.perf_counter()
    hq = train_hqcnn(
        HQCNNConfig(image_size=size, num_classes=len(classes)),
        TrainConfig(seed=seed, epochs=epochs),
        resize(train.images, size), train.labels, progress=True,
    )
    acc = float((predict_proba(hq.model, resize(test.images, size)).argmax(1) == test.labels).mean())
    t1 = time.perf_counter()
    print(f"HQCNN test accuracy {acc:.3f} ({t1 - t0:.1f} s, {hq.restarts} restarts)")

    qgan = QGAN.create(QGANConfig(num_classes=len(classes), image_size=size), seed=seed)
    train_gan(qgan, resize(train.images, size), train.labels, GANTrainConfig(steps=qgan_steps, seed=seed), progress=True)
    t2 = time.perf_counter()
    judge = train_classifier(resize(ref.images, size), ref.labels, len(classes), seed=seed)
    samples = [qgan.sample(c, 200, seed=seed + 1000 + c) for c in range(len(classes))]
    fidelity = [float((predict(judge, s) == c).mean()) for c, s in enumerate(samples)]
    print(f"QGAN label fidelity per class {[round(f, 3) for f in fidelity]} ({t2 - t1:.1f} s)")
    rows = []
    labels = []
    for c, digit in enumerate(classes):
        rows += [resize(train.images[train.labels == c][:10], size), samples[c][:10]]
        labels += [f"real {digit}", f"QGAN {digit}"]
    grid = sample_grid(rows, labels, out / "qgan_samples.png", title="real vs QGAN samples")
    metrics = {
        "hqcnn_test_accuracy": acc,
        "hqcnn_restarts": hq.restarts,
        "qgan_label_fidelity": dict(zip(map(str, classes), fidelity)),
        "qgan_label_fidelity_mean": float(np.mean(fidelity)),
        "seconds": {"hqcnn": t1 - t0, "qgan": t2 - t1},
    }
    (out / "demo.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {out / 'demo.json'} and {grid}")
    return metrics

