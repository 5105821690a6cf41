"""``qaug gaussian``: Gunduz (2025)'s 1-D experiment — a hybrid QGAN trained with WGAN-GP learns N(0, 0.2).

The generator is Linear(z) → RY encoding → RY/RX + CNOT layers → ⟨Z_0⟩ (2 qubits, latent 2),
the critic a small MLP (``qmodels.wgan.SampleQGAN``). Writes the moments per seed and a
real-vs-generated histogram, so the result can be checked by eye as well as by number.
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

import torch

from qaug.io import write_json
from qaug.plots import sample_histograms
from qmodels.wgan import SampleQGAN, SampleQGANConfig, moments, train_sample_qgan

SAMPLES = 5000  # per seed, drawn with a sampling seed the training never used
TOLERANCE = 0.05  # the paper's criterion: mean and std within 0.05 of the target


def gaussian_experiment(out: Path, seeds: Sequence[int] = (0, 1, 2), cfg: SampleQGANConfig = SampleQGANConfig(),
                        progress: bool = False) -> dict:
    """Train one SampleQGAN per seed; write ``gaussian.json`` and ``gaussian_histogram.png`` under ``out``."""
    if not seeds:
        raise ValueError("seeds: give at least one seed")
    runs, panels = {}, {}
    for seed in seeds:
        start = time.perf_counter()
        model = train_sample_qgan(SampleQGAN.create(replace(cfg, seed=seed)), progress=progress)
        generated = model.sample(SAMPLES, seed=10_000 + seed)
        real = model.real(SAMPLES, torch.Generator().manual_seed(20_000 + seed)).squeeze(1)
        mean, std = moments(generated)
        ok = abs(mean - cfg.target_mean) < TOLERANCE and abs(std - cfg.target_std) < TOLERANCE
        runs[str(seed)] = {"mean": mean, "std": std, "within_tolerance": ok, "seconds": round(time.perf_counter() - start, 1)}
        panels[f"seed {seed}"] = (real.numpy(), generated.numpy())
        print(f"seed {seed}: mean {mean:+.3f}, std {std:.3f} (target {cfg.target_mean:+.3f}, {cfg.target_std:.3f}) "
              f"{'within' if ok else 'OUTSIDE'} ±{TOLERANCE}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    title = f"WGAN-GP hybrid QGAN, {cfg.num_qubits} qubits: N({cfg.target_mean:g}, {cfg.target_std:g}), {cfg.steps} steps"
    figure = sample_histograms(panels, out / "gaussian_histogram.png", title=title)
    result = {"config": {k: v for k, v in asdict(cfg).items() if k != "seed"}, "tolerance": TOLERANCE, "samples": SAMPLES,
              "runs": runs, "all_within_tolerance": all(r["within_tolerance"] for r in runs.values())}
    write_json(out / "gaussian.json", result)
    print(f"wrote {out / 'gaussian.json'} and {figure}")
    return result

