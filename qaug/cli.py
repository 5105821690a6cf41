"""Command line: ``qaug demo`` trains the baseline HQCNN and the patch QGAN on the embedded data."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from qaug import __version__


def _demo(args: argparse.Namespace) -> int:
    from qaug.data import embedded_mnist, resize, split_per_class
    from qaug.plots import sample_grid
    from qmodels.classical import predict, train_classifier
    from qmodels.hqcnn import HQCNNConfig, TrainConfig, predict_proba, train_hqcnn
    from qmodels.qgan import QGAN, QGANConfig, QGANTrainConfig, train_qgan

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    classes = (0, 1, 2)
    x, y = embedded_mnist()
    splits = split_per_class(x, y, classes, {"train": 100, "test": 100, "reference": 200}, seed=args.seed)
    train, test, ref = (splits[k] for k in ("train", "test", "reference"))
    size = args.image_size
    t0 = time.perf_counter()
    hq = train_hqcnn(
        HQCNNConfig(image_size=size, num_classes=len(classes)),
        TrainConfig(seed=args.seed, epochs=args.epochs),
        resize(train.images, size), train.labels, progress=True,
    )
    acc = float((predict_proba(hq.model, resize(test.images, size)).argmax(1) == test.labels).mean())
    t1 = time.perf_counter()
    print(f"HQCNN test accuracy {acc:.3f} ({t1 - t0:.1f} s, {hq.restarts} restarts)")

    qgan = QGAN.create(QGANConfig(num_classes=len(classes), image_size=size), seed=args.seed)
    train_qgan(qgan, resize(train.images, size), train.labels, QGANTrainConfig(steps=args.qgan_steps, seed=args.seed), progress=True)
    t2 = time.perf_counter()
    judge = train_classifier(resize(ref.images, size), ref.labels, len(classes), seed=args.seed)
    samples = [qgan.sample(c, 200, seed=args.seed + 1000 + c) for c in range(len(classes))]
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
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qaug", description=__doc__)
    parser.add_argument("--version", action="version", version=f"qaug {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train the baseline HQCNN and the QGAN on digits 0/1/2 of the embedded MNIST")
    demo.add_argument("--out", default="outputs/demo", help="output folder (default: outputs/demo)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--image-size", type=int, default=28, choices=(28, 14, 8))
    demo.add_argument("--epochs", type=int, default=30)
    demo.add_argument("--qgan-steps", type=int, default=1200)
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
