"""The quantum core without the pipeline: ``qaug demo`` (HQCNN + QGAN) and ``qaug gaussian`` (Gunduz's 1-D WGAN-GP)."""

from __future__ import annotations

import argparse
from pathlib import Path


def demo(args: argparse.Namespace) -> int:
    from qaug.demo import demo as run_demo

    run_demo(Path(args.out), seed=args.seed, image_size=args.image_size, epochs=args.epochs, qgan_steps=args.qgan_steps)
    return 0


def gaussian(args: argparse.Namespace) -> int:
    from qaug.gaussian import gaussian_experiment
    from qmodels.wgan import SampleQGANConfig

    cfg = SampleQGANConfig() if args.steps is None else SampleQGANConfig(steps=args.steps)
    result = gaussian_experiment(Path(args.out), args.seeds, cfg, progress=True)
    return 0 if result["all_within_tolerance"] else 1
