"""Stage 6, filter: keep candidates the baseline classifier confidently assigns to their class.

Per-class thresholds: τ_i = τ − α·R[i] for classes whose error share is above the
mean (weak classes: accept harder, more varied samples) and τ + β·R[i] otherwise,
clipped to [0, 1]. A candidate of class i is kept when the classifier predicts i
with probability ≥ τ_i. Classes still short of N_i get ``oversample`` × the
shortfall new candidates per round, until every class is full or ``max_rounds``
rounds (the first being the generate stage's candidates) have run; the shortfall
is reported, not hidden. The general strategy skips filtering.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from qaug.device import device_of
from qaug.io import load_arrays, load_image_set, read_json, save_arrays, write_metrics
from qaug.params import require, section, seed_of
from qaug.plots import sample_grid
from qmodels.hqcnn import HQCNN, predict_proba
from tasks.classifier import load_model
from tasks.generate import sample_seed
from tasks.layout import dep, journal, out, rooted
from tasks.methods import Sampler, load_generator
from tasks.quality import ChecksParams, verify
from tasks.quantum import QuantumParams, model_device, on_backend

log = logging.getLogger("qaug.filter")


@dataclass(frozen=True)
class FilterParams:
    tau: float = 0.8
    alpha: float = 0.3
    beta: float = 0.1
    max_rounds: int = 5
    min_accepted_fraction: float = 0.5  # the accepted set's check fails below this share of N_i per class

    def validate(self) -> None:
        require(0.0 <= self.tau <= 1.0, "tau", f"must be in [0, 1], got {self.tau}")
        require(self.alpha >= 0, "alpha", "must be non-negative")
        require(self.beta >= 0, "beta", "must be non-negative")
        require(self.max_rounds >= 1, "max_rounds", "must be at least 1 (the first round filters the generate stage's candidates)")
        require(0.0 <= self.min_accepted_fraction <= 1.0, "min_accepted_fraction", "must be in [0, 1]")


@dataclass(frozen=True)
class FilterPaths:
    candidates: Path = dep("data/generated/candidates.npz")
    errors: Path = dep("data/analysis/errors.json")
    classifier: Path = dep("models/baseline.pt")
    generator: Path = dep("models/generator.pt")
    train: Path = dep("data/prepared/train.npz")
    test: Path = dep("data/prepared/test.npz")
    accepted: Path = out("data/generated/accepted.npz")
    checks: Path = out("data/checks/accepted.json")
    metrics: Path = out("metrics/filter.json")
    figure: Path = out("plots/accepted_samples.png")
    jobs: Path = journal("data/jobs/filter.json")


def thresholds(shares: list[float], tau: float, alpha: float, beta: float) -> list[float]:
    """τ_i = τ − α·R[i] where R[i] is above the mean share 1/C, else τ + β·R[i]; clipped to [0, 1].

    "Above" means by more than 1e-9, so a share equal to the mean (e.g. 3 of 9 errors with
    3 classes) is strong whatever its last floating-point bit.
    """
    mean = 1.0 / len(shares)
    return [float(np.clip(tau - alpha * r if r > mean + 1e-9 else tau + beta * r, 0.0, 1.0)) for r in shares]


def accept(probs: np.ndarray, cls: int, threshold: float) -> np.ndarray:
    """Mask of samples predicted as ``cls`` with probability ≥ ``threshold``."""
    return (probs.argmax(1) == cls) & (probs[:, cls] >= threshold)


def filter_rounds(
    first: list[np.ndarray], need: list[int], taus: list[float], judge: HQCNN, sampler: Sampler,
    oversample: int, max_rounds: int, seed: int,
) -> tuple[list[np.ndarray], list[np.ndarray], list[dict]]:
    """Accepted images and their rounds per class, plus per-class statistics."""
    kept, rounds_of, stats = [], [], []
    for c, candidates in enumerate(first):
        parts, part_rounds, judged, passed, labelled, accepted, rounds = [], [], 0, 0, 0, 0, 0
        batch = candidates
        while True:
            probs = predict_proba(judge, batch)
            ok = batch[accept(probs, c, taus[c])]
            judged, passed, labelled = judged + len(batch), passed + len(ok), labelled + int((probs.argmax(1) == c).sum())
            take = ok[: need[c] - accepted]
            parts.append(take)
            part_rounds.append(np.full(len(take), rounds, dtype=np.int64))
            accepted, rounds = accepted + len(take), rounds + 1
            short = need[c] - accepted
            log.info("class %d round %d: %d of %d candidates pass τ %.3f, %d/%d accepted", c, rounds, len(ok), len(batch), taus[c],
                     accepted, need[c])
            if short <= 0 or rounds >= max_rounds:
                break
            batch = sampler.sample(c, oversample * short, seed=sample_seed(seed, "filter", c, rounds))
        kept.append(np.concatenate(parts))
        rounds_of.append(np.concatenate(part_rounds))
        stats.append({
            "needed": need[c], "accepted": accepted, "rejected": judged - passed, "surplus": passed - accepted,
            "judged": judged, "rounds": rounds if need[c] else 0,
            "acceptance_rate": passed / judged if judged else 0.0, "shortfall": need[c] - accepted,
            "threshold": taus[c], "label_fidelity": labelled / judged if judged else None,
        })
    return kept, rounds_of, stats


def _overall_fidelity(stats: list[dict]) -> float | None:
    """Share of judged candidates (every round) the baseline classifier assigns to their intended class; the
    first round's candidates for the unfiltered general strategy."""
    counted = [(s["label_fidelity"], s["judged"] or s["accepted"]) for s in stats if s["label_fidelity"] is not None]
    total = sum(n for _, n in counted)
    return sum(f * n for f, n in counted) / total if total else None


def run(params: FilterParams, checks: ChecksParams, quantum: QuantumParams, seed: int, device: torch.device, paths: FilterPaths) -> dict:
    cand = load_arrays(paths.candidates, "images", "labels", "classes", "targets", "strategy", "method", "oversample")
    errors = read_json(paths.errors, "error_share")
    train, test = load_image_set(paths.train), load_image_set(paths.test)
    shares, need = errors["error_share"], cand["targets"].tolist()
    strategy, method, C = str(cand["strategy"]), str(cand["method"]), len(shares)
    first = [cand["images"][cand["labels"] == c] for c in range(C)]
    judge = load_model(paths.classifier, test, paths.test, device)  # exact on every backend
    backend = {"backend": "none (unfiltered)"}
    if strategy == "general":  # the paper's Algorithm 2: no filtering (fidelity still measured)
        kept, rounds_of = first, [np.zeros(len(f), dtype=np.int64) for f in first]
        stats = [{"needed": need[c], "accepted": len(first[c]), "rejected": 0, "surplus": 0, "judged": 0, "rounds": 0,
                  "acceptance_rate": 1.0, "shortfall": need[c] - len(first[c]), "threshold": None,
                  "label_fidelity": float((predict_proba(judge, first[c]).argmax(1) == c).mean()) if len(first[c]) else None}
                 for c in range(C)]
        taus = []
    else:
        taus = thresholds(shares, params.tau, params.alpha, params.beta)
        sampler = load_generator(paths.generator, device=lambda layers: model_device(quantum, device, layers))
        oversample = int(cand["oversample"])
        with on_backend(quantum, sampler.quantum_layers, paths.jobs) as run_on:  # regenerated samples only
            worst = (params.max_rounds - 1) * oversample * sum(need) * sampler.circuits_per_sample
            run_on.announce("filter regeneration (at most)", worst, refuse=False)
            kept, rounds_of, stats = filter_rounds(first, need, taus, judge, sampler, oversample, params.max_rounds, seed)
        backend = run_on.record
    images = np.concatenate(kept).astype(np.float32)
    labels = np.concatenate([np.full(len(k), c, dtype=np.int64) for c, k in enumerate(kept)])
    verify(
        "accepted", images, labels, num_classes=C, image_shape=test.images.shape[1:],
        required_per_class=[math.ceil(params.min_accepted_fraction * n - 1e-9) if strategy != "general" else n for n in need],
        test_images=test.images, params=checks, report=paths.checks, allow_duplicates=method == "duplicates",
    )
    save_arrays(paths.accepted, images=images, labels=labels, classes=cand["classes"], round=np.concatenate(rounds_of),
                method=np.array(method))
    names = [str(c) for c in cand["classes"]]
    metrics = {
        "method": method,
        "strategy": strategy,
        "filtered": strategy != "general",
        "accepted": int(len(labels)),
        "needed": int(sum(need)),
        "shortfall": int(sum(s["shortfall"] for s in stats)),
        "label_fidelity": _overall_fidelity(stats),
        "quantum": backend,
        "per_class": dict(zip(names, stats)),
    }
    write_metrics(paths.metrics, metrics, device)  # the judge's
    rows, row_labels = [], []
    for c, name in enumerate(names):
        rows += [train.images[train.labels == c][:10], kept[c][:10]]
        row_labels += [f"real {name}", f"accepted {name} ({len(kept[c])})"]
    sample_grid(rows, row_labels, paths.figure, title="real vs accepted generated samples")
    return {"accepted": metrics["accepted"], "needed": metrics["needed"], "shortfall": metrics["shortfall"], "thresholds": [round(t, 3) for t in taus]}


def parse(raw: dict) -> tuple:
    return (section(FilterParams, raw, "filter"), section(ChecksParams, raw, "checks"), section(QuantumParams, raw, "quantum"), seed_of(raw),
            device_of(raw))


def main(raw: dict, root: Path = Path(".")) -> dict:
    return run(*parse(raw), rooted(FilterPaths(), root))
