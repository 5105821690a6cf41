"""Tiny pipeline params shared by the stage, dvc and flow tests (seconds, not minutes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

PROJECT = Path(__file__).resolve().parents[1]


def tiny_params() -> dict:
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    raw["ingest"].update(train_per_class=12, val_per_class=10, test_per_class=10, image_size=8)
    raw["baseline"].update(epochs=2, min_steps=90, max_restarts=0)
    raw["qgan"].update(steps=8, layers=2, grid=4, batch_size=8)
    raw["augment"].update(n_gen=12)
    raw["filter"].update(tau=0.34, max_rounds=2)
    raw["checks"].update(max_duplicate_fraction=0.5)
    return raw


def project_env(**extra: str) -> dict:
    """Subprocess environment for a test project: no analytics, a git identity, this environment's ``qaug``."""
    env = dict(os.environ, DVC_NO_ANALYTICS="1", DO_NOT_TRACK="1", GIT_AUTHOR_NAME="qaug tests", GIT_AUTHOR_EMAIL="tests@qaug.invalid",
               GIT_COMMITTER_NAME="qaug tests", GIT_COMMITTER_EMAIL="tests@qaug.invalid", **extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def dvc_project(root: Path) -> Path:
    """A fresh git + DVC repo at ``root`` with dvc.yaml, prefect.yaml, the DVC config, tiny params and copies of the
    code (DVC hashes the copies; the stages run this environment's installed ``qaug``)."""
    root.mkdir(parents=True, exist_ok=True)
    for folder in ("qaug", "qmodels", "tasks", "flows", "cli"):
        shutil.copytree(PROJECT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "prefect.yaml", "requirements.lock"):
        shutil.copy(PROJECT / name, root / name)
    shutil.copytree(PROJECT / "data" / "raw", root / "data" / "raw")  # ingest.root: a dvc.yaml dep even for the embedded set
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    env = project_env()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=env, timeout=900)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True, env=env, timeout=900)
    for name in ("config", "offline_plots.html"):  # the shipped DVC config: its default remote is ../qaug-remote
        shutil.copy(PROJECT / ".dvc" / name, root / ".dvc" / name)
    return root


def colour_folder(root: Path, per_class: int = 24, size: int = 20) -> None:
    """Three classes told apart by their dominant colour channel, with noise."""
    rng = np.random.default_rng(7)
    for c, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 90, size=(size, size, 3))
            img[..., c] += 150
            Image.fromarray(img.astype(np.uint8), "RGB").save(root / name / f"{i}.png")
