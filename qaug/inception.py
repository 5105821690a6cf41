"""Inception-v3 FID through torchmetrics, from weights the user keeps locally (nothing is downloaded).

torchmetrics' ``FrechetInceptionDistance`` builds torch-fidelity's port of the TensorFlow
Inception-v3 that FID is defined with; without a weights file it would download them, which
this project never does at run time. So the score runs only when ``metrics.inception_weights``
names a local copy of ``weights-inception-2015-12-05-6726825d.pth`` (torch-fidelity's release
v0.2.0). Features are taken once per image set with the metric's own network and its
input conversion (floats in [0, 1] → ``(x·255).byte()``, resized to 299 × 299 inside the
network; grayscale is repeated to RGB here first), then the Fréchet distance is computed
per class.

The file is read with ``weights_only=True`` before torchmetrics sees it (torch-fidelity
itself unpickles it fully), and its SHA-256 is compared with the digest prefix in the
published file name: another file with the right shapes still gives a number, but not
one comparable to published FIDs, and the metrics say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qaug.io import InputError, sha256
from qaug.params import require

FEATURE_SIZES = (64, 192, 768, 2048)  # the Inception blocks torchmetrics can pool
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
PUBLISHED_DIGEST_PREFIX = "6726825d"  # torch.hub convention: the name ends in the file's SHA-256 prefix
HOW_TO_ENABLE = (
    f"set metrics.inception_weights in params.yaml to a local copy of {WEIGHTS_FILE} "
    "(torch-fidelity release v0.2.0, the FID Inception-v3); qaug never downloads weights"
)

SKIPPED = f"Inception FID skipped: {HOW_TO_ENABLE}"
# Set by a command that runs score_generated many times and says SKIPPED once itself (a grid): the stage stays quiet.
SKIPPED_SAID = "QAUG_INCEPTION_SKIPPED_SAID"


@dataclass(frozen=True)
class MetricsParams:
    """The ``metrics`` section: Inception FID for score_generated's final sets and, with ``qgan.score_every``,
    over training in train_generator."""

    inception_weights: str | None = None  # local FID Inception-v3 weights (relative to the working directory); null = skip
    inception_features: int = 2048  # pooled Inception block: 64 | 192 | 768 | 2048 (FID's standard)

    def validate(self) -> None:
        require(self.inception_features in FEATURE_SIZES, "inception_features", f"must be one of {FEATURE_SIZES}, got {self.inception_features}")
        if self.inception_weights is not None:  # checked with the params, so a wrong path stops `qaug run` before stage 1
            require(Path(self.inception_weights).expanduser().is_file(), "inception_weights",
                    f"{self.inception_weights!r} is not a file; {HOW_TO_ENABLE}, or set it to null to skip Inception FID")


def fid_from(params: MetricsParams) -> tuple[Any, dict]:
    """(torchmetrics' FID metric or None, what the metrics file records about it: the weights' name, SHA-256 and
    whether they are the published ones, or how to enable it)."""
    if params.inception_weights is None:
        return None, {"enabled": False, "note": SKIPPED}
    weights = Path(params.inception_weights).expanduser()
    metric = load_fid_metric(weights, params.inception_features)
    digest = sha256(weights)
    record = {"enabled": True, "weights": weights.name, "sha256": digest, "published_weights": is_published(digest),
              "features": params.inception_features, "reference": "real training split"}
    if not record["published_weights"]:
        print(f"{weights}: SHA-256 {digest[:12]}… is not the published {WEIGHTS_FILE}; its FID is not comparable to published ones", flush=True)
    return metric, record


def load_fid_metric(weights: Path, features: int = 2048):
    """torchmetrics' FID metric with its Inception-v3 read from ``weights`` (clear errors for a wrong file)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if not weights.is_file():
        raise InputError(f"metrics.inception_weights: {weights} does not exist; {HOW_TO_ENABLE}, or set it to null to skip Inception FID")
    wrong = f"metrics.inception_weights: {weights} is not the FID Inception-v3 state dict; expected {WEIGHTS_FILE}"
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)  # tensors only: nothing in the file runs
    except Exception as err:  # not a torch file, or one that holds more than tensors
        raise InputError(f"{wrong} ({type(err).__name__}: {str(err)[:200]})") from None
    if not isinstance(state, dict) or "Conv2d_1a_3x3.conv.weight" not in state:
        raise InputError(f"{wrong} (no Inception-v3 layers in it)")
    try:
        return FrechetInceptionDistance(feature=features, normalize=True, feature_extractor_weights_path=str(weights))
    except RuntimeError as err:  # load_state_dict: missing or unexpected keys, wrong shapes
        raise InputError(f"{wrong} ({str(err)[:200]})") from None


def is_published(digest: str) -> bool:
    """Whether a SHA-256 matches the published weights' digest prefix (FIDs comparable to papers)."""
    return digest.startswith(PUBLISHED_DIGEST_PREFIX)


@torch.no_grad()
def inception_features(metric, images: np.ndarray, batch_size: int = 50) -> np.ndarray:
    """(n, features) float64 activations of images (n, C, H, W) in [0, 1], converted as the metric's ``update`` does."""
    out = [torch.zeros(0, metric.real_features_sum.numel(), dtype=torch.float64)]  # the width, for an empty set
    for start in range(0, len(images), batch_size):
        x = torch.as_tensor(images[start:start + batch_size], dtype=torch.float32)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise ValueError(f"Inception-v3 takes grayscale or RGB images, got {x.shape[1]} channels")
        out.append(metric.inception((x * 255).byte()).double().reshape(len(x), -1))
    return torch.cat(out).numpy()
