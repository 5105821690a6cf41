"""Classification metrics and baseline-vs-augmented comparison (numpy only).

Every returned value is a plain Python ``float``/``int``/``list``/``dict`` so the
result can go straight into ``json.dumps``; keys are inserted in a fixed order
(class order follows ``class_names``) so identical inputs give identical JSON,
which keeps DVC metric files stable.

Undefined ratios are reported as ``0.0`` rather than NaN (NaN is not valid
JSON and breaks diffs): precision of a class that is never predicted, recall
and mean confidence of a class with no samples, and F1 when precision and
recall are both zero.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

_PER_CLASS_KEYS = ("accuracy", "precision", "recall", "f1", "mean_confidence")
_MACRO_KEYS = ("precision", "recall", "f1")


def classification_metrics(probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> dict:
    """Accuracy, per-class and macro precision/recall/F1, confidence and confusion matrix.

    The prediction is ``argmax`` over ``probs`` (ties go to the lowest class
    index). ``mean_confidence`` is the probability given to the *true* class,
    which shows how sure the model is even where it is right. Macro averages
    weight every class in ``class_names`` equally, including classes with no
    samples.
    """
    probs, labels, names = _validate(probs, labels, class_names)
    n_classes = len(names)
    preds = probs.argmax(axis=1)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (labels, preds), 1)
    true_conf = probs[np.arange(len(labels)), labels]

    per_class = {}
    for k, name in enumerate(names):
        per_class[name] = _class_metrics(cm, k, true_conf[labels == k])
    macro = {key: float(np.mean([m[key] for m in per_class.values()])) for key in _MACRO_KEYS}
    return {
        "accuracy": float(np.trace(cm) / len(labels)),
        "mean_confidence": float(true_conf.mean()),
        "macro": macro,
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "class_names": names,
    }


def compare(baseline: dict, augmented: dict) -> dict:
    """Deltas (augmented − baseline) of the headline metrics, plus both full metric dicts.

    ``delta`` mirrors the shape of a metrics dict (``accuracy``,
    ``mean_confidence``, ``macro``, ``per_class``) so the same accessors work on
    it; positive values mean augmentation helped.
    """
    names = list(baseline["class_names"])
    if list(augmented["class_names"]) != names:
        raise ValueError(f"augmented: class_names {augmented['class_names']!r} differ from baseline's {names!r}")
    delta = {
        "accuracy": _diff(augmented["accuracy"], baseline["accuracy"]),
        "mean_confidence": _diff(augmented["mean_confidence"], baseline["mean_confidence"]),
        "macro": {k: _diff(augmented["macro"][k], baseline["macro"][k]) for k in _MACRO_KEYS},
        "per_class": {
            name: {k: _diff(augmented["per_class"][name][k], baseline["per_class"][name][k]) for k in _PER_CLASS_KEYS}
            for name in names
        },
    }
    return {"delta": delta, "baseline": copy.deepcopy(baseline), "augmented": copy.deepcopy(augmented)}


def headline(comparison: dict, generated: int, real: int) -> dict[str, float | int]:
    """The run's few numbers, flat and unnested: what ``dvc exp show`` and ``dvc metrics diff`` put side by
    side across experiments (the full metrics stay in the other files)."""
    base, aug, delta = comparison["baseline"], comparison["augmented"], comparison["delta"]
    flat: dict[str, float | int] = {
        "accuracy_baseline": base["accuracy"], "accuracy_augmented": aug["accuracy"], "accuracy_delta": delta["accuracy"],
        "macro_f1_baseline": base["macro"]["f1"], "macro_f1_augmented": aug["macro"]["f1"], "macro_f1_delta": delta["macro"]["f1"],
    }
    flat |= {f"recall_delta_{name}": delta["per_class"][name]["recall"] for name in base["class_names"]}
    return flat | {"train_real": real, "train_generated": generated}


def _validate(
    probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Fail early with the offending argument named, instead of a numpy indexing error later."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    names = [str(c) for c in class_names]
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be unique, got {names!r}")
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"probs must have shape (n, C) with n >= 1, got {probs.shape}")
    if probs.shape[1] != len(names):
        raise ValueError(f"probs has {probs.shape[1]} columns but class_names has {len(names)} entries")
    if not np.isfinite(probs).all():
        raise ValueError("probs contains NaN or infinite values")
    if labels.ndim != 1 or labels.shape[0] != probs.shape[0]:
        raise ValueError(f"labels must have shape ({probs.shape[0]},) to match probs, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= len(names):
        raise ValueError(f"labels must lie in [0, {len(names) - 1}], got range [{labels.min()}, {labels.max()}]")
    return probs, labels.astype(np.int64), names


def _class_metrics(cm: np.ndarray, k: int, true_conf: np.ndarray) -> dict:
    """One class's row of the report; undefined ratios become 0.0 (see module docstring)."""
    tp = int(cm[k, k])
    support = int(cm[k].sum())
    predicted = int(cm[:, k].sum())
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {
        "accuracy": recall,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
        "mean_confidence": float(true_conf.mean()) if support else 0.0,
    }


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def _diff(after: float, before: float) -> float:
    return float(after) - float(before)
