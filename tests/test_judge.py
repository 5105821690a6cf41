"""score_generated's judge on an imbalanced split: it trains class-balanced, and a class it cannot recognise gets
no label fidelity (null, with the reason) instead of a number that measures the judge."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from grid.report import _judge_note, fidelity, markdown
from grid.results import generation_scores
from qaug.inception import MetricsParams
from qaug.io import save_arrays
from qmodels.classical import balanced_pool, predict, train_classifier
from tasks.layout import rooted
from tasks.report import judge_note, summary_markdown
from tasks.score_generated import MIN_JUDGE_RECALL, ScorePaths, run

RARE = (60, 60, 8)  # the split the unbalanced judge never predicted the rare class of (recall 0.0, seeds 0–2)


def synthetic(counts: tuple[int, ...], seed: int, patterns: tuple[int, ...] = (0, 1, 2)) -> tuple[np.ndarray, np.ndarray]:
    """8 × 8 noise with a faint bright block per class (top half, left half, lower-right quarter): separable, but
    only just above the noise, so a judge that neglects a class fails on it. ``patterns[c]``: class c's block
    (two classes with one block are indistinguishable)."""
    rng = np.random.default_rng(seed)
    blocks = [np.zeros((8, 8), np.float32) for _ in range(3)]
    blocks[0][:4], blocks[1][:, :4], blocks[2][4:, 4:] = 1, 1, 1
    images = [np.clip(0.5 * rng.random((n, 1, 8, 8)) + 0.15 * blocks[patterns[c]], 0, 1) for c, n in enumerate(counts)]
    labels = np.repeat(np.arange(len(counts)), counts)
    order = rng.permutation(len(labels))
    return np.concatenate(images).astype(np.float32)[order], labels[order]


def recall(model, images: np.ndarray, labels: np.ndarray) -> list[float]:
    predicted = predict(model, images)
    return [float((predicted[labels == c] == c).mean()) for c in range(labels.max() + 1)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_judge_trains_class_balanced_and_recognises_the_rare_class(seed: int) -> None:
    x, y = synthetic(RARE, seed)
    test_x, test_y = synthetic((50, 50, 50), seed + 100)
    judge = train_classifier(x, y, 3, seed=seed)
    assert min(recall(judge, test_x, test_y)) >= 0.9  # the unbalanced judge: rare recall 0.0
    again = train_classifier(x, y, 3, seed=seed)
    assert all(torch.equal(a, b) for a, b in zip(judge.state_dict().values(), again.state_dict().values()))  # seeded


def test_a_balanced_split_draws_no_repeats_so_it_trains_as_before() -> None:
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    assert torch.equal(balanced_pool(np.array([0, 1, 2, 2, 1, 0]), gen), torch.arange(6))
    assert torch.equal(gen.get_state(), state)  # nothing drawn: each epoch's permutation is the unbalanced judge's
    pool = balanced_pool(np.array([0] * 7 + [1] * 7 + [2] * 2), gen)
    assert np.bincount(np.array([0] * 7 + [1] * 7 + [2] * 2)[pool.numpy()]).tolist() == [7, 7, 7]
    assert set(pool[:16].tolist()) == set(range(16))  # every image once, then the rare class's repeats
    assert sorted(np.bincount(pool[16:].numpy(), minlength=16)[14:].tolist()) == [2, 3]  # repeats spread over its images


def score(tmp_path, train: tuple, test: tuple, candidates: tuple, accepted: tuple) -> dict:
    classes = np.array(["0", "1", "2"])
    paths = rooted(ScorePaths(), tmp_path)
    for path, (images, labels) in ((paths.train, train), (paths.test, test)):
        save_arrays(path, images=images, labels=labels, classes=classes)
    for path, (images, labels) in ((paths.candidates, candidates), (paths.accepted, accepted)):
        save_arrays(path, images=images, labels=labels, classes=classes, method=np.array("duplicates"))
    run(0, MetricsParams(), torch.device("cpu"), paths)
    return json.loads(paths.metrics.read_text())


def test_copies_of_real_images_score_label_fidelity_near_one_for_every_class(tmp_path) -> None:
    train = synthetic(RARE, 0)
    g = score(tmp_path, train, synthetic((30, 30, 30), 100), train, (train[0][train[1] == 2], train[1][train[1] == 2]))
    assert g["judge_test_accuracy"] > 0.9 and min(g["judge_test_recall"].values()) >= MIN_JUDGE_RECALL
    assert g["unjudged_classes"] == {} and g["judge_recall_floor"] == MIN_JUDGE_RECALL and "pooled" in g["label_fidelity_rule"]
    for key in ("candidates", "accepted"):
        assert g[key]["label_fidelity"] >= 0.95 and g[key]["label_fidelity_note"] is None
    assert all(v["label_fidelity"] >= 0.95 for v in g["candidates"]["per_class"].values())  # the rare class too (was 0.0)
    assert judge_note(g) is None


def test_a_class_the_judge_cannot_recognise_gets_no_label_fidelity_and_spoils_only_the_pools_it_is_in(tmp_path, monkeypatch) -> None:
    """Classes 1 and 2 look alike, and the test split holds the very same 31 images under either label: the judge's
    recalls of the two add up to at most 1, so at least one is at most 15/31, below the floor."""
    train = synthetic((40, 40, 40), 0, patterns=(0, 1, 1))
    test_x, test_y = synthetic((31, 31), 100)
    test = (np.concatenate([test_x, test_x[test_y == 1]]), np.concatenate([test_y, np.full(31, 2)]))
    zeros = (train[0][train[1] == 0], train[1][train[1] == 0])
    g = score(tmp_path, train, test, train, zeros)
    recall = g["judge_test_recall"]
    unjudged = {name for name, r in recall.items() if r < MIN_JUDGE_RECALL}
    assert recall["0"] >= 0.9 and unjudged & {"1", "2"} and set(g["unjudged_classes"]) == unjudged
    for name, v in g["candidates"]["per_class"].items():
        if name in unjudged:
            reason = f"judge cannot recognise class {name} (test recall {recall[name]:.2f} < {MIN_JUDGE_RECALL}): not measured"
            assert v["label_fidelity"] is None and v["label_fidelity_note"] == g["unjudged_classes"][name] == reason
        else:
            assert v["label_fidelity"] is not None and v["label_fidelity_note"] is None
    assert g["candidates"]["label_fidelity"] is None  # it holds samples of a class the judge cannot recognise
    assert all(f"class {name}" in g["candidates"]["label_fidelity_note"] for name in unjudged)
    assert g["accepted"]["label_fidelity"] >= 0.95  # only class 0: measured
    note = judge_note(g)
    assert note.startswith("Label fidelity not measured for class") and all(f"{n} (test recall {recall[n]:.3f})" in note for n in unjudged)
    scores, judge = generation_scores(g)  # what a grid cell's record keeps
    assert scores["label_fidelity"] == g["accepted"]["label_fidelity"] and scores["judge_accuracy"] == g["judge_test_accuracy"]
    assert set(judge["unjudged"]) == unjudged and judge["floor"] == MIN_JUDGE_RECALL
    assert generation_scores({**g, "accepted": g["candidates"]})[0]["label_fidelity"] is None
    shown = reports(tmp_path, monkeypatch)
    assert all(f"test accuracy {g['judge_test_accuracy']:.3f}" in text and "Label fidelity not measured for class" in text for text in shown)
    grid_note = _judge_note([{"regime": "r", "point": {}, "seed": 4, "generation": scores, "judge": judge}], "r", {})
    assert all(f"not measured for class {n} in seed 4 (recall {recall[n]:.2f})" in grid_note for n in unjudged)


def reports(root, monkeypatch) -> tuple[str, str]:
    """What `qaug show` and the run summary print of root's metrics/generation.json (besides a stand-in comparison)."""
    from rich.console import Console

    from cli.results import _show_generation
    from qaug.metrics import classification_metrics, compare

    scores = classification_metrics(np.eye(2)[[0, 1]], np.array([0, 1]), ["a", "b"])
    (root / "metrics/comparison.json").write_text(json.dumps(compare(scores, scores)))
    monkeypatch.chdir(root)
    console = Console(record=True, width=400)
    _show_generation(console)
    return console.export_text(), summary_markdown(root)


def test_the_grid_report_shows_the_judge_and_the_seeds_it_could_not_judge() -> None:
    def rec(seed: int, unjudged: list[str]) -> dict:
        return {"regime": "r", "point": {}, "seed": seed, "generation": {"judge_accuracy": 0.9 + seed / 100},
                "judge": {"test_recall": {"0": 1.0, "1": 1.0, "2": 0.25 if unjudged else 0.9}, "unjudged": unjudged, "floor": 0.5}}

    note = _judge_note([rec(0, []), rec(1, ["2"]), rec(2, [])], "r", {})
    assert "test accuracy 0.910 ± 0.010 over 3 seeds" in note and "not measured for class 2 in seed 1 (recall 0.25)" in note
    assert _judge_note([{**rec(0, []), "judge": None}], "r", {}) == ""  # cells scored before the judge was recorded
    partial = {"label_fidelity": {"n": 2, "mean": 0.95, "sd": 0.01}, "judge_accuracy": {"n": 3, "mean": 0.91, "sd": 0.01}}
    assert fidelity(partial) == "0.950 (2 of 3 seeds)"
    assert fidelity({"judge_accuracy": partial["judge_accuracy"]}) == "not measured" and fidelity({}) == "—"
    summary = {"arms": [{"regime": "r", "point": {}, "arm": "qgan", "seeds": 3, "collapsed": 0, "control": False, "kind": "augment",
                         "metrics": {"accuracy": {"n": 3, "mean": 0.9, "sd": 0.01}, **partial}}],
               "comparisons": [], "regimes": ["r"], "sweep": {}}
    text = markdown(summary)
    assert "| 0.950 (2 of 3 seeds) |" in text and "test accuracy 0.910" in text and "left out" in text


def test_scoring_an_imbalanced_run_over_training_leaves_the_generator_bytes_unchanged(tmp_path) -> None:
    """train_generator's quality trace trains the same balanced judge (its repeats drawn from the judge's own
    generator): on a split where the judge does draw repeats, the scored run's weights are the unscored run's."""
    from tasks.stages import get
    from tests.pipeline_helpers import tiny_params

    x, y = synthetic((24, 24, 4), 0)
    raw = tiny_params()
    for root in (tmp_path / "plain", tmp_path / "scored"):
        save_arrays(root / "data/prepared/train.npz", images=x, labels=y, classes=np.array(["0", "1", "2"]))
        (root / "data/analysis").mkdir(parents=True)
        (root / "data/analysis/errors.json").write_text(json.dumps({"error_share": [0.2, 0.2, 0.6]}))
    get("train_generator").run(raw, tmp_path / "plain")
    get("train_generator").run({**raw, "qgan": {**raw["qgan"], "score_every": 4, "score_samples": 4}}, tmp_path / "scored")
    assert len((tmp_path / "scored/plots/data/generator_quality.csv").read_text().splitlines()) == 3  # scored at steps 4, 8
    assert (tmp_path / "scored/models/generator.pt").read_bytes() == (tmp_path / "plain/models/generator.pt").read_bytes()
