"""Side stage, score_generated: how good the generated sets are, per class, for every method.

Scores the candidates (what the generator makes) and the accepted set (what the
filter keeps) against the real training split, with a small CNN trained here on the
real training images (independent of the HQCNN that filters):

* label fidelity: share of samples this CNN assigns to the class they were made for, only for
  classes the CNN recognises: a class whose real test images it recalls below ``MIN_JUDGE_RECALL``
  gets ``label_fidelity: null`` and a ``label_fidelity_note`` saying why (its score would measure
  the judge, not the samples), and so does the pooled value of a set holding any sample of such a
  class (pooling over the other classes only would compare different class mixes across runs and
  seeds under one name; their per-class values stay in ``per_class``). The CNN trains class-balanced
  (``qmodels.classical.train_classifier``); its test accuracy and per-class test recall are recorded;
* Fréchet distance and KID in this CNN's pooled conv features ("classifier-feature",
  not Inception FID; comparable across methods and runs with the same data), per class,
  the headline being their mean over classes (both are biased upward at small n: compare
  sets of similar size);
* diversity: mean RMS pixel distance between samples, next to the real images' own;
* exact and near (RMS < 0.02) duplicate rates;
* nearest-neighbour RMS distance to the test split (mean and minimum: leakage check);
* Inception-v3 FID (torchmetrics), per class and pooled, only when ``metrics.inception_weights``
  names a local weights file (``qaug.inception``; with ~50 samples a class and 2048 features it
  is strongly biased upward: compare runs of equal size, or use ``metrics.inception_features: 64``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from qaug.device import device_of
from qaug.generation_metrics import diversity, duplicate_rates, frechet_distance, kernel_inception_distance, nearest_distances
from qaug.inception import SKIPPED_SAID, MetricsParams, fid_from, inception_features
from qaug.io import load_arrays, load_image_set, write_metrics
from qaug.params import section, seed_of
from qmodels.classical import embed, predict, train_classifier
from tasks.layout import dep, out, rooted

log = logging.getLogger("qaug.score_generated")

# The judge's test recall a class needs for its label fidelity to be measured. Below one half the judge
# calls most real test images of the class something else, so even copies of real images would score
# under 0.5: the number would be about the judge. A floor relative to chance (1/C) was rejected: for ten
# classes it would accept a judge that misses nine real images in ten.
MIN_JUDGE_RECALL = 0.5
FIDELITY_RULE = (f"label fidelity is measured only for classes whose real test images the judge recalls at least "
                 f"{MIN_JUDGE_RECALL}; a set's pooled label fidelity is null when any of its samples belongs to a class below that")


@dataclass(frozen=True)
class ScorePaths:
    train: Path = dep("data/prepared/train.npz")
    test: Path = dep("data/prepared/test.npz")
    candidates: Path = dep("data/generated/candidates.npz")
    accepted: Path = dep("data/generated/accepted.npz")
    metrics: Path = out("metrics/generation.json")


def judge_recall(predicted: np.ndarray, labels: np.ndarray, names: list[str]) -> dict[str, float | None]:
    """The judge's recall per class on the test split (None for a class with no test images)."""
    return {name: float((predicted[labels == c] == c).mean()) if (labels == c).any() else None for c, name in enumerate(names)}


def unjudged(recall: dict[str, float | None]) -> dict[str, str]:
    """Class name → why its label fidelity is not measured, for every class the judge cannot recognise."""
    return {name: (f"judge cannot recognise class {name} (test recall {r:.2f} < {MIN_JUDGE_RECALL}): not measured" if r is not None
                   else f"class {name} has no test images to check the judge on: not measured")
            for name, r in recall.items() if r is None or r < MIN_JUDGE_RECALL}


def score_set(images: np.ndarray, labels: np.ndarray, real: tuple[np.ndarray, np.ndarray], test: np.ndarray,
              judge, real_features: np.ndarray, names: list[str], seed: int,
              inception: tuple[np.ndarray, np.ndarray] | None = None, skip: dict[str, str] | None = None) -> dict:
    """Per-class and pooled scores of one generated set against the real images.

    ``inception``: (generated, real) Inception-v3 features, when the weights are configured.
    ``skip``: class name → reason, the classes whose label fidelity is not measured (``unjudged``)."""
    features = embed(judge, images)
    predicted = predict(judge, images)
    skip = skip or {}

    def scores(mask: np.ndarray, real_mask: np.ndarray, reasons: list[str]) -> dict:
        gen, ref = features[mask], real_features[real_mask]
        enough = len(gen) >= 2 and len(ref) >= 2
        return {
            "n": int(mask.sum()),
            "label_fidelity": float((predicted[mask] == labels[mask]).mean()) if mask.any() and not reasons else None,
            "label_fidelity_note": "; ".join(reasons) or None,
            "frechet_distance": frechet_distance(gen, ref) if enough else None,
            "kid": kernel_inception_distance(gen, ref, seed=seed) if enough else None,
            "inception_fid": frechet_distance(inception[0][mask], inception[1][real_mask]) if inception and enough else None,
            "diversity": diversity(images[mask]),
            "real_diversity": diversity(real[0][real_mask]),
            "duplicates": duplicate_rates(images[mask]),
            "nearest_test": nearest_distances(images[mask], test),
        }

    present = [skip[name] for c, name in enumerate(names) if name in skip and (labels == c).any()]  # only its samples spoil the pool
    result = scores(np.ones(len(labels), dtype=bool), np.ones(len(real[1]), dtype=bool), present)
    result["per_class"] = {name: scores(labels == c, real[1] == c, [skip[name]] if name in skip else [])
                           for c, name in enumerate(names)}
    # Headline FD/KID: the mean over classes. Pooled scores compare a class mix skewed on purpose
    # (customised strategy) with the real set's even mix, so they grow with the skew; kept as pooled_*.
    for key in ("frechet_distance", "kid", "inception_fid"):
        result[f"pooled_{key}"] = result[key]
        per_class = [v[key] for v in result["per_class"].values() if v[key] is not None]
        result[key] = float(np.mean(per_class)) if per_class else None
    return result


def run(seed: int, params: MetricsParams, device: torch.device, paths: ScorePaths) -> dict:
    train, test = load_image_set(paths.train), load_image_set(paths.test)
    cand, acc = load_arrays(paths.candidates), load_arrays(paths.accepted)
    names = [str(c) for c in train.classes]
    fid_metric, inception = fid_from(params)  # loaded first: a wrong file fails before any work
    if fid_metric is None and not os.environ.get(SKIPPED_SAID):  # a grid says it once, not once per cell
        print(inception["note"], flush=True)
    real_inception = inception_features(fid_metric, train.images) if fid_metric else None
    log.info("training the judge CNN on %d real images", len(train.labels))
    judge = train_classifier(train.images, train.labels, len(names), seed=seed, device=device)
    real_features = embed(judge, train.images)
    test_predicted = predict(judge, test.images)
    recall = judge_recall(test_predicted, test.labels, names)
    skip = unjudged(recall)
    for reason in skip.values():
        log.warning("label fidelity: %s", reason)
    metrics = {
        "method": str(cand["method"]),
        "judge": "small CNN trained class-balanced on the real training split (qmodels.classical), independent of the HQCNN",
        "judge_test_accuracy": float((test_predicted == test.labels).mean()),
        "judge_test_recall": recall,
        "judge_recall_floor": MIN_JUDGE_RECALL,
        "label_fidelity_rule": FIDELITY_RULE,
        "unjudged_classes": skip,
        "real_nearest_test": nearest_distances(train.images, test.images),
        "inception": inception,
    }
    for key, data in (("candidates", cand), ("accepted", acc)):
        gen_inception = (inception_features(fid_metric, data["images"]), real_inception) if fid_metric else None
        metrics[key] = score_set(data["images"], data["labels"], (train.images, train.labels), test.images, judge,
                                 real_features, names, seed, gen_inception, skip)
        log.info("scored %d %s: label fidelity %s", len(data["labels"]), key, metrics[key]["label_fidelity"])
    write_metrics(paths.metrics, metrics, device)
    a = metrics["accepted"]
    return {"method": metrics["method"], "label_fidelity": a["label_fidelity"], "frechet_distance": a["frechet_distance"], "kid": a["kid"],
            "inception_fid": a["inception_fid"]}


def parse(raw: dict) -> tuple:
    return seed_of(raw), section(MetricsParams, raw, "metrics"), device_of(raw)


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(ScorePaths(), root))
