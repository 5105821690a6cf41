"""Metrics against a hand-computed example, edge cases and the JSON contract."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qaug.metrics import classification_metrics, compare, headline

NAMES = ["a", "b", "c"]
# Predictions (argmax): a, b, b, b, b -> class "c" is never predicted.
PROBS = np.array(
    [
        [0.7, 0.2, 0.1],  # true a, pred a
        [0.4, 0.5, 0.1],  # true a, pred b
        [0.1, 0.8, 0.1],  # true b, pred b
        [0.3, 0.6, 0.1],  # true b, pred b
        [0.2, 0.5, 0.3],  # true c, pred b
    ]
)
LABELS = np.array([0, 0, 1, 1, 2])


def _floats(obj):
    """Every float anywhere in a nested dict/list."""
    if isinstance(obj, dict):
        return [f for v in obj.values() for f in _floats(v)]
    if isinstance(obj, list):
        return [f for v in obj for f in _floats(v)]
    return [obj] if isinstance(obj, float) else []


def test_hand_computed_example() -> None:
    m = classification_metrics(PROBS, LABELS, NAMES)
    assert m["class_names"] == NAMES
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 1, 0]]
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["mean_confidence"] == pytest.approx((0.7 + 0.4 + 0.8 + 0.6 + 0.3) / 5)
    expected = {
        "a": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2, "mean_confidence": 0.55},
        "b": {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 2, "mean_confidence": 0.7},
        "c": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1, "mean_confidence": 0.3},
    }
    assert list(m["per_class"]) == NAMES
    for name, exp in expected.items():
        got = m["per_class"][name]
        assert got["accuracy"] == pytest.approx(exp["recall"])
        for key, value in exp.items():
            assert got[key] == pytest.approx(value), (name, key)
        assert isinstance(got["support"], int)
    assert m["macro"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 4 / 9})


def test_perfect_predictions() -> None:
    labels = np.array([0, 1, 2, 1])
    probs = np.eye(3)[labels] * 0.9 + 0.1 / 3
    m = classification_metrics(probs, labels, NAMES)
    assert m["accuracy"] == 1.0
    assert m["macro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 2, 0], [0, 0, 1]]
    assert m["mean_confidence"] == pytest.approx(0.9 + 0.1 / 3)


def test_class_without_samples_or_predictions_gives_zeros_not_nan() -> None:
    probs = np.hstack([PROBS, np.zeros((5, 1))])
    m = classification_metrics(probs, LABELS, [*NAMES, "d"])
    assert m["per_class"]["d"] == {
        "accuracy": 0.0,
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
        "mean_confidence": 0.0,
    }
    assert all(math.isfinite(f) for f in _floats(m))
    assert m["macro"]["f1"] == pytest.approx((2 / 3 + 2 / 3) / 4)


def test_json_round_trip_with_plain_types() -> None:
    m = classification_metrics(PROBS, LABELS, NAMES)
    text = json.dumps(m, allow_nan=False)
    assert json.loads(text) == m
    assert type(m["accuracy"]) is float
    assert all(type(v) is int for row in m["confusion_matrix"] for v in row)


@pytest.mark.parametrize(
    ("probs", "labels", "names", "argument"),
    [
        (PROBS[0], LABELS, NAMES, "probs"),  # 1-D probs
        (PROBS[:, :2], LABELS, NAMES, "class_names"),  # columns != classes
        (np.zeros((0, 3)), np.zeros(0, dtype=int), NAMES, "probs"),  # empty
        (np.where(PROBS > 0.75, np.nan, PROBS), LABELS, NAMES, "probs"),
        (PROBS, LABELS[:4], NAMES, "labels"),  # length mismatch
        (PROBS, LABELS.reshape(5, 1), NAMES, "labels"),
        (PROBS, LABELS.astype(float), NAMES, "labels"),
        (PROBS, np.array([0, 0, 1, 1, 3]), NAMES, "labels"),  # out of range
        (PROBS, np.array([0, 0, 1, -1, 2]), NAMES, "labels"),
        (PROBS, LABELS, ["a", "a", "c"], "class_names"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(probs, labels, names, argument) -> None:
    with pytest.raises(ValueError, match=argument):
        classification_metrics(probs, labels, names)


def test_compare_deltas() -> None:
    base = classification_metrics(PROBS, LABELS, NAMES)
    aug = classification_metrics(np.eye(3)[LABELS], LABELS, NAMES)
    c = compare(base, aug)
    d = c["delta"]
    assert d["accuracy"] == pytest.approx(0.4)
    assert d["mean_confidence"] == pytest.approx(1.0 - 0.56)
    assert d["macro"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 5 / 9})
    assert d["per_class"]["a"] == pytest.approx(
        {"accuracy": 0.5, "precision": 0.0, "recall": 0.5, "f1": 1 / 3, "mean_confidence": 0.45}
    )
    assert d["per_class"]["c"]["precision"] == pytest.approx(1.0)
    assert c["baseline"] == base and c["augmented"] == aug

    reverse = compare(aug, base)["delta"]
    assert reverse["accuracy"] == pytest.approx(-0.4)
    assert reverse["per_class"]["b"]["precision"] == pytest.approx(-0.5)


def test_headline_is_flat_and_holds_the_deltas() -> None:
    base = classification_metrics(PROBS, LABELS, NAMES)
    aug = classification_metrics(np.eye(3)[LABELS], LABELS, NAMES)
    flat = headline(compare(base, aug), generated=7, real=10)
    assert all(not isinstance(v, (dict, list)) for v in flat.values())
    assert flat["accuracy_delta"] == pytest.approx(0.4) and flat["accuracy_augmented"] == 1.0
    assert flat["macro_f1_delta"] == pytest.approx(5 / 9) and flat["recall_delta_a"] == pytest.approx(0.5)
    assert (flat["train_real"], flat["train_generated"]) == (10, 7)
    assert sorted(k for k in flat if k.startswith("recall_delta_")) == [f"recall_delta_{n}" for n in NAMES]


def test_compare_is_json_deterministic_and_does_not_alias_inputs() -> None:
    def run() -> str:
        base = classification_metrics(PROBS, LABELS, NAMES)
        aug = classification_metrics(PROBS[::-1], LABELS, NAMES)
        return json.dumps(compare(base, aug), allow_nan=False)

    assert run() == run()
    base = classification_metrics(PROBS, LABELS, NAMES)
    result = compare(base, base)
    assert result["delta"]["accuracy"] == 0.0
    result["baseline"]["accuracy"] = -1.0
    assert base["accuracy"] == 0.6


def test_compare_rejects_different_classes() -> None:
    base = classification_metrics(PROBS, LABELS, NAMES)
    other = classification_metrics(PROBS, LABELS, ["x", "y", "z"])
    with pytest.raises(ValueError, match="augmented"):
        compare(base, other)
