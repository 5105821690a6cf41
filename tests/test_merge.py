"""tasks.merge on small arrays written here (no pipeline): what enters the merged set, its provenance and counts."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from qaug.data import GENERATED, REAL
from qaug.io import InputError, load_arrays, read_json, save_arrays
from qaug.params import ParamsError, section
from tasks.merge import MergeParams, MergePaths, main, mix, mixing_counts, run
from tasks.quality import ChecksParams
from tasks.layout import rooted


def _images(n: int, offset: float, side: int = 4) -> np.ndarray:
    """n distinct images (a different brightness pattern each)."""
    rng = np.random.default_rng(int(offset * 1000))
    return rng.random((n, 1, side, side), dtype=np.float32) * 0.5 + offset


def write_inputs(root, real=(6, 6, 3), accepted=(4, 4, 4), method="qgan", side=4) -> MergePaths:
    paths = rooted(MergePaths(), root)
    labels = np.repeat(np.arange(3), real)
    save_arrays(paths.train, images=_images(len(labels), 0.0), labels=labels, classes=np.array(["a", "b", "c"]))
    save_arrays(paths.test, images=_images(6, 0.25), labels=np.arange(6) % 3, classes=np.array(["a", "b", "c"]))
    acc_labels = np.repeat(np.arange(3), accepted)
    save_arrays(paths.accepted, images=_images(len(acc_labels), 0.5, side), labels=acc_labels,
                round=np.arange(len(acc_labels), dtype=np.int64) % 2 + 1, method=np.array(method))
    return paths


def test_every_accepted_image_goes_in_with_its_provenance(tmp_path) -> None:
    paths = write_inputs(tmp_path)
    assert run(MergeParams(), ChecksParams(), 0, paths) == {"total": 27, "real": 15, "generated": 12}
    merged = load_arrays(paths.merged)
    acc = load_arrays(paths.accepted)
    assert merged["source"].tolist() == [REAL] * 15 + [GENERATED] * 12 and merged["source"].dtype == np.int64
    assert merged["round"].tolist() == [-1] * 15 + acc["round"].tolist()
    assert merged["labels"].tolist() == np.repeat(np.arange(3), (6, 6, 3)).tolist() + acc["labels"].tolist()
    assert np.array_equal(merged["images"][15:], acc["images"]) and merged["images"].dtype == np.float32
    assert merged["classes"].tolist() == ["a", "b", "c"]
    summary = read_json(paths.summary)
    assert {k: summary[k] for k in ("total", "real", "generated", "generated_share")} == {"total": 27, "real": 15, "generated": 12,
                                                                                         "generated_share": round(12 / 27, 4)}
    assert summary["per_class"] == {"a": {"real": 6, "generated": 4}, "b": {"real": 6, "generated": 4}, "c": {"real": 3, "generated": 4}}
    assert "mixing_ratio" not in summary
    assert read_json(paths.checks)  # the merged set's check report


def test_a_mixing_ratio_draws_the_share_per_class_and_is_recorded(tmp_path) -> None:
    paths = write_inputs(tmp_path, real=(6, 6, 3), accepted=(8, 8, 8))
    out = run(MergeParams(mixing_ratio=0.5), ChecksParams(), 3, paths)
    assert out == {"total": 30, "real": 15, "generated": 15}
    summary = read_json(paths.summary)
    assert summary["mixing_ratio"] == 0.5 and summary["generated_share"] == 0.5
    assert {c: v["generated"] for c, v in summary["per_class"].items()} == {"a": 6, "b": 6, "c": 3}
    merged = load_arrays(paths.merged)
    acc = load_arrays(paths.accepted)
    picked = mix({k: acc[k] for k in ("images", "labels", "round", "method")}, np.array([6, 6, 3]), 0.5, 3, ["a", "b", "c"])
    assert np.array_equal(merged["images"][15:], picked["images"])  # the seed's draw


def test_mix_draws_from_merges_own_stream_in_index_order() -> None:
    labels = np.repeat(np.arange(2), 10)
    acc = {"images": np.arange(20, dtype=np.float32).reshape(20, 1, 1, 1), "labels": labels, "round": np.arange(20, dtype=np.int64),
           "method": np.array("gan1")}
    picked = mix(acc, np.array([4, 2]), 0.5, seed=11, names=["x", "y"])
    rng = np.random.default_rng([11, 7])
    expected = np.concatenate([np.sort(rng.choice(np.arange(10), 4, replace=False)), np.sort(rng.choice(np.arange(10, 20), 2, replace=False))])
    assert picked["images"].ravel().tolist() == expected.tolist() and picked["round"].tolist() == expected.tolist()
    assert picked["labels"].tolist() == [0] * 4 + [1] * 2 and str(picked["method"]) == "gan1"
    assert mix(acc, np.array([4, 2]), 0.5, seed=12, names=["x", "y"])["images"].ravel().tolist() != expected.tolist()


def test_mix_takes_exactly_what_is_accepted_when_that_is_all_it_needs() -> None:
    acc = {"images": np.arange(6, dtype=np.float32).reshape(6, 1, 1, 1), "labels": np.repeat(np.arange(2), 3),
           "round": np.ones(6, np.int64), "method": np.array("qgan")}
    assert mix(acc, np.array([3, 3]), 0.5, 0, ["x", "y"])["images"].ravel().tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ParamsError, match=r"class y: 4 needed, 3 accepted"):
        mix(acc, np.array([3, 4]), 0.5, 0, ["x", "y"])


@pytest.mark.parametrize(("real", "alpha", "expected"), [
    ([10, 10], 0.5, [10, 10]),
    ([3, 1], 0.5, [3, 1]),
    ([5, 5, 5], 0.25, [2, 2, 1]),  # 1/3 · 15 = 5, split 5:5:5 → 1.67 each: largest remainders get the rest
    ([7, 3], 0.9, [63, 27]),       # 9 · 10 = 90
])
def test_mixing_counts_by_hand(real, alpha, expected) -> None:
    assert mixing_counts(np.array(real), alpha).tolist() == expected


def test_too_many_generated_images_are_flagged_unless_a_ratio_asked_for_them(tmp_path, caplog) -> None:
    paths = write_inputs(tmp_path, real=(2, 2, 2), accepted=(4, 4, 4))
    with caplog.at_level(logging.WARNING, logger="qaug.merge"):
        run(MergeParams(), ChecksParams(), 0, paths)
    assert "more than the real ones" in caplog.text
    for real in ((6, 6, 6), (4, 4, 4)):  # fewer generated than real, and as many: no warning
        caplog.clear()
        paths = write_inputs(tmp_path, real=real, accepted=(4, 4, 4))
        with caplog.at_level(logging.WARNING, logger="qaug.merge"):
            run(MergeParams(), ChecksParams(), 0, paths)
        assert "more than the real ones" not in caplog.text
    caplog.clear()
    paths = write_inputs(tmp_path, real=(6, 6, 3), accepted=(10, 10, 10))
    with caplog.at_level(logging.WARNING, logger="qaug.merge"):
        assert run(MergeParams(mixing_ratio=0.6), ChecksParams(), 0, paths)["generated"] > 15  # asked for: no warning
    assert "more than the real ones" not in caplog.text


def test_images_of_another_size_are_refused_before_anything_is_written(tmp_path) -> None:
    paths = write_inputs(tmp_path, side=5)
    with pytest.raises(InputError, match="rerun the pipeline from train_generator"):
        run(MergeParams(), ChecksParams(), 0, paths)
    assert not paths.merged.exists() and not paths.summary.exists()


def test_duplicates_may_repeat_real_images(tmp_path) -> None:
    paths = write_inputs(tmp_path, method="duplicates")
    train = load_arrays(paths.train)
    save_arrays(paths.accepted, images=train["images"][:6], labels=train["labels"][:6], round=np.ones(6, np.int64), method=np.array("duplicates"))
    assert run(MergeParams(), ChecksParams(max_duplicate_fraction=0.0), 0, paths)["generated"] == 6
    save_arrays(paths.accepted, images=train["images"][:6], labels=train["labels"][:6], round=np.ones(6, np.int64), method=np.array("qgan"))
    with pytest.raises(Exception, match="duplicate"):
        run(MergeParams(), ChecksParams(max_duplicate_fraction=0.0), 0, paths)


def test_params_and_main(tmp_path) -> None:
    with pytest.raises(ParamsError, match="mixing_ratio"):
        section(MergeParams, {"merge": {"mixing_ratio": 1.0}}, "merge")
    assert section(MergeParams, {"merge": {"mixing_ratio": 0.0}}, "merge").mixing_ratio == 0.0
    write_inputs(tmp_path)
    out = main({"seed": 0, "merge": {"mixing_ratio": None}, "checks": {"max_duplicate_fraction": 0.05}}, tmp_path)
    assert out == {"total": 27, "real": 15, "generated": 12}
