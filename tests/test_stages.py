"""Each stage on tiny data (8×8 digits, a dozen per class), run in order once per module."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from qaug.checks import DataCheckError
from qaug.io import InputError, load_arrays, save_arrays
from qaug.params import ParamsError
from tasks.analyze_errors import error_shares
from tasks.filter import accept, thresholds
from tasks.generate import targets
from tasks.layout import files
from tasks.stages import STAGES, get
from tests.pipeline_helpers import tiny_params


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict, dict]:
    root = tmp_path_factory.mktemp("pipeline")
    raw = tiny_params()
    summaries = {stage.name: stage.run(raw, root) for stage in STAGES}
    return root, raw, summaries


FILTER_INPUTS = ("data/prepared/train.npz", "data/prepared/test.npz", "data/analysis/errors.json",
                 "models/baseline.pt", "models/generator.pt", "data/generated/candidates.npz")


def copy_files(src: Path, dst: Path, *relative: str) -> None:
    """Copy some of a run's files into another project root, to rerun one stage there."""
    for rel in relative:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_bytes((src / rel).read_bytes())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_stage_writes_all_its_outputs(run) -> None:
    root, _, _ = run
    for stage in STAGES:
        for path in files(stage.paths_object(), "out"):
            assert (root / path).stat().st_size > 0, f"{stage.name} did not write {path}"
    assert not list(root.rglob("*.tmp")), "temporary files left behind"


def test_ingest_splits_are_disjoint_exact_and_reproducible(run, tmp_path) -> None:
    root, raw, _ = run
    splits = {n: load_arrays(root / f"data/prepared/{n}.npz") for n in ("train", "val", "test")}
    for name, per_class in (("train", 12), ("val", 10), ("test", 10)):
        assert splits[name]["images"].shape[1:] == (1, 8, 8) and splits[name]["images"].dtype == np.float32
        assert np.bincount(splits[name]["labels"]).tolist() == [per_class] * 3
        assert splits[name]["classes"].tolist() == ["0", "1", "2"]
    seen = [{a.tobytes() for a in splits[n]["images"]} for n in splits]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    get("ingest").run(raw, tmp_path)  # same params and seed: the same bytes (stable DVC hashes)
    for name in splits:
        assert digest(tmp_path / f"data/prepared/{name}.npz") == digest(root / f"data/prepared/{name}.npz")


def test_baseline_metrics_and_error_analysis(run) -> None:
    root, _, _ = run
    baseline = json.loads((root / "metrics/baseline.json").read_text())
    assert 0 <= baseline["accuracy"] <= 1 and np.array(baseline["confusion_matrix"]).sum() == 30
    errors = json.loads((root / "data/analysis/errors.json").read_text())
    assert errors["split"] == "val" and sum(errors["support"]) == 30
    assert all(0 <= e <= n for e, n in zip(errors["errors"], errors["support"]))
    assert abs(sum(errors["error_share"]) - 1) < 1e-9
    csv = (root / "plots/data/baseline_history.csv").read_text().splitlines()
    assert csv[0] == "epoch,loss,accuracy" and len(csv) > 2


def test_generate_oversamples_by_error_share(run) -> None:
    root, raw, _ = run
    errors = json.loads((root / "data/analysis/errors.json").read_text())
    cand = load_arrays(root / "data/generated/candidates.npz")
    need = targets("customised", raw["augment"]["n_gen"], errors["error_share"])
    assert cand["targets"].tolist() == need and sum(need) == raw["augment"]["n_gen"]
    assert np.bincount(cand["labels"], minlength=3).tolist() == [3 * n for n in need]
    assert str(cand["strategy"]) == "customised"
    assert json.loads((root / "data/checks/candidates.json").read_text())["success"] is True


def test_filter_accepts_only_confident_samples_and_accounts_for_all(run) -> None:
    root, _, _ = run
    metrics = json.loads((root / "metrics/filter.json").read_text())
    accepted = load_arrays(root / "data/generated/accepted.npz")
    assert metrics["accepted"] == len(accepted["labels"])
    for c, stats in enumerate(metrics["per_class"].values()):
        assert stats["accepted"] == int((accepted["labels"] == c).sum()) <= stats["needed"]
        assert stats["accepted"] + stats["shortfall"] == stats["needed"]
        assert stats["judged"] == stats["accepted"] + stats["rejected"] + stats["surplus"]
        assert stats["rounds"] == (0 if not stats["needed"] else 1 if stats["accepted"] == stats["needed"] else 2)
    assert set(accepted["round"].tolist()) <= {0, 1}


def test_merge_keeps_provenance(run) -> None:
    root, _, _ = run
    merged = load_arrays(root / "data/augmented/train.npz")
    accepted = load_arrays(root / "data/generated/accepted.npz")
    real = merged["source"] == 0
    assert real.sum() == 36 and (~real).sum() == len(accepted["labels"])
    assert (merged["round"][real] == -1).all()
    np.testing.assert_array_equal(merged["images"][~real], accepted["images"])
    np.testing.assert_array_equal(merged["labels"][~real], accepted["labels"])  # row by row: a shifted label fails
    np.testing.assert_array_equal(merged["round"][~real], accepted["round"])
    train = load_arrays(root / "data/prepared/train.npz")
    np.testing.assert_array_equal(merged["images"][real], train["images"])
    np.testing.assert_array_equal(merged["labels"][real], train["labels"])


def test_merge_warns_when_generated_images_outnumber_real_ones(run, tmp_path, caplog) -> None:
    root, raw, _ = run
    copy_files(root, tmp_path, "data/prepared/train.npz", "data/prepared/test.npz")
    acc = load_arrays(root / "data/generated/accepted.npz")
    rng = np.random.default_rng(0)
    many = {**acc, "images": np.concatenate([np.clip(acc["images"] + rng.uniform(0, 0.05, acc["images"].shape), 0, 1)
                                             for _ in range(4)]).astype(np.float32),
            "labels": np.tile(acc["labels"], 4), "round": np.tile(acc["round"], 4)}
    save_arrays(tmp_path / "data/generated/accepted.npz", **many)
    with caplog.at_level("WARNING", logger="qaug.merge"):
        summary = get("merge").run(raw, tmp_path)
    share = json.loads((tmp_path / "metrics/merge.json").read_text())["generated_share"]
    assert summary["generated"] == 4 * len(acc["labels"]) and share > 0.5
    assert f"{summary['generated']} of the {summary['total']} training images" in caplog.text and "lower augment.n_gen" in caplog.text


def test_evaluate_compares_against_the_baseline(run) -> None:
    root, _, summaries = run
    comparison = json.loads((root / "metrics/comparison.json").read_text())
    augmented = json.loads((root / "metrics/augmented.json").read_text())
    baseline = json.loads((root / "metrics/baseline.json").read_text())
    assert comparison["delta"]["accuracy"] == pytest.approx(augmented["accuracy"] - baseline["accuracy"])
    assert set(comparison["delta"]["per_class"]) == {"0", "1", "2"}
    for key in ("precision", "recall", "f1", "mean_confidence"):
        assert key in comparison["delta"]["per_class"]["0"]
    assert augmented["training"]["generated"] == summaries["merge"]["generated"]
    for png in ("per_class_accuracy", "confusion_matrices", "classifier_loss", "generator_loss", "accepted_samples"):
        assert (root / f"plots/{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_threshold_formula() -> None:
    # mean share 1/3: class 2 (0.6) is weak → τ − α·R; classes 0, 1 strong → τ + β·R
    assert thresholds([0.3, 0.1, 0.6], tau=0.8, alpha=0.5, beta=0.2) == pytest.approx([0.86, 0.82, 0.5])
    assert thresholds([0.0, 0.0, 1.0], tau=0.95, alpha=0.1, beta=0.5) == pytest.approx([0.95, 0.95, 0.85])
    assert thresholds([0.5, 0.5, 0.0], tau=0.99, alpha=0.0, beta=2.0) == pytest.approx([0.99, 0.99, 0.99])
    assert thresholds([0.2, 0.2, 0.6], tau=0.9, alpha=2.0, beta=1.0) == pytest.approx([1.0, 1.0, 0.0])  # clipped


def test_accept_needs_the_right_class_and_enough_confidence() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.45, 0.05], [0.3, 0.6, 0.1], [0.4, 0.4, 0.2]])
    assert accept(probs, 0, 0.6).tolist() == [True, False, False, False]
    assert accept(probs, 0, 0.4).tolist() == [True, True, False, True]  # ties go to the lowest class
    assert accept(probs, 1, 0.5).tolist() == [False, False, True, False]


def test_error_shares_and_fallbacks() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 1, 0, 0]] * 0.8 + 0.2 / 3
    out = error_shares(probs, labels, 3)
    assert out["errors"] == [1, 0, 2] and out["error_share"] == pytest.approx([1 / 3, 0, 2 / 3]) and out["weighting"] == "errors"
    conf = np.array([0.6, 0.6, 0.8, 0.8, 0.9, 0.9])  # right everywhere, least sure of class 0
    right = np.eye(3)[labels] * conf[:, None] + (1 - np.eye(3)[labels]) * ((1 - conf[:, None]) / 2)
    out = error_shares(right, labels, 3)
    assert out["errors"] == [0, 0, 0] and out["weighting"] == "confidence"
    assert out["error_share"] == pytest.approx([0.4 / 0.7, 0.2 / 0.7, 0.1 / 0.7])
    out = error_shares(np.eye(3)[labels], labels, 3)
    assert out["weighting"] == "uniform" and out["error_share"] == pytest.approx([1 / 3] * 3)


def test_general_strategy_splits_evenly() -> None:
    assert targets("general", 150, [0.9, 0.1, 0.0]) == [50, 50, 50]
    assert targets("customised", 150, [0.9, 0.1, 0.0]) == [135, 15, 0]
    assert targets("customised", 10, [1 / 3, 1 / 3, 1 / 3]) == [4, 3, 3]


def test_regeneration_stops_at_max_rounds_and_reports_the_shortfall(run, tmp_path, monkeypatch) -> None:
    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS)
    import tasks.filter

    monkeypatch.setattr(tasks.filter, "accept", lambda probs, cls, threshold: np.zeros(len(probs), dtype=bool))
    strict = {**raw, "filter": {**raw["filter"], "max_rounds": 3, "min_accepted_fraction": 0.0}}
    summary = get("filter").run(strict, tmp_path)  # a judge that accepts nothing
    metrics = json.loads((tmp_path / "metrics/filter.json").read_text())
    assert summary["accepted"] == 0 and metrics["shortfall"] == metrics["needed"] == raw["augment"]["n_gen"]
    for stats in metrics["per_class"].values():
        if stats["needed"]:
            assert stats["rounds"] == 3 and stats["shortfall"] == stats["needed"] and stats["acceptance_rate"] == 0.0
            assert stats["judged"] > 3 * stats["needed"]  # regenerated after the first round


def test_general_strategy_skips_filtering(run, tmp_path) -> None:
    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS[:-1])
    general = {**raw, "augment": {**raw["augment"], "strategy": "general", "n_gen": 9}}
    get("generate").run(general, tmp_path)
    get("filter").run(general, tmp_path)
    metrics = json.loads((tmp_path / "metrics/filter.json").read_text())
    assert metrics["filtered"] is False and metrics["accepted"] == 9
    assert [s["accepted"] for s in metrics["per_class"].values()] == [3, 3, 3]


def test_a_failing_check_stops_the_stage_and_keeps_earlier_outputs(run, tmp_path) -> None:
    root, raw, _ = run
    copy_files(root, tmp_path, "data/prepared/train.npz", "data/prepared/test.npz", "data/generated/accepted.npz")
    get("merge").run(raw, tmp_path)
    before = digest(tmp_path / "data/augmented/train.npz")
    accepted = load_arrays(tmp_path / "data/generated/accepted.npz")
    test = load_arrays(tmp_path / "data/prepared/test.npz")
    leaked = dict(accepted, images=np.concatenate([accepted["images"], test["images"][:1]]),
                  labels=np.concatenate([accepted["labels"], test["labels"][:1]]), round=np.concatenate([accepted["round"], [0]]))
    save_arrays(tmp_path / "data/generated/accepted.npz", **leaked)
    with pytest.raises(DataCheckError, match="merged") as err:
        get("merge").run(raw, tmp_path)
    assert "expect_column_values_to_not_be_in_set" in str(err.value)
    assert digest(tmp_path / "data/augmented/train.npz") == before  # the earlier version is intact


def test_too_few_accepted_fails_the_accepted_check(run, tmp_path, monkeypatch) -> None:
    import tasks.filter

    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS)
    monkeypatch.setattr(tasks.filter, "accept", lambda probs, cls, threshold: np.zeros(len(probs), dtype=bool))
    with pytest.raises(DataCheckError, match="count >= required"):
        get("filter").run({**raw, "filter": {**raw["filter"], "max_rounds": 1}}, tmp_path)
    report = json.loads((tmp_path / "data/checks/accepted.json").read_text())  # the failing report is kept
    assert report["success"] is False and not (tmp_path / "data/generated/accepted.npz").exists()


def test_generation_and_evaluation_on_a_fake_device(run, tmp_path) -> None:
    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS[:-1], "data/augmented/train.npz", "plots/data/baseline_history.csv")
    noisy = {**raw, "quantum": {**raw["quantum"], "backend": "fake:FakeManilaV2", "shots": 256}}
    assert get("generate").run(noisy, tmp_path)["backend"] == "fake:FakeManilaV2"
    cand = load_arrays(tmp_path / "data/generated/candidates.npz")
    exact = load_arrays(root / "data/generated/candidates.npz")
    assert str(cand["backend"]) == "fake:FakeManilaV2" and cand["images"].shape == exact["images"].shape
    assert not np.array_equal(cand["images"], exact["images"])  # shot noise and device noise
    get("evaluate").run(noisy, tmp_path)
    comparison = json.loads((tmp_path / "metrics/comparison.json").read_text())
    assert comparison["quantum"] == {"backend": "fake:FakeManilaV2", "shots": 256, "noise": "device model", "optimization_level": 1}
    assert 0 <= comparison["baseline"]["accuracy"] <= 1


def test_generate_killed_mid_stage_on_ibm_resumes_without_resubmitting(run, tmp_path, monkeypatch, capsys) -> None:
    """A stage on ``ibm:`` dies while its first job is queued; the rerun re-attaches to it and submits only the rest."""
    import tasks.quantum
    from tests.standin_runtime import Killed, StandInRuntime

    root, raw, _ = run
    cloud: dict = {}
    runtimes = [StandInRuntime(cloud, kill_at_wait=0), StandInRuntime(cloud), StandInRuntime({})]
    first, resumed, uninterrupted = runtimes
    monkeypatch.setattr(tasks.quantum, "connect", lambda spec, seed, mode: runtimes.pop(0))
    ibm = {**raw, "quantum": {**raw["quantum"], "backend": "ibm:ibm_standin", "shots": 128}}
    copy_files(root, tmp_path, *FILTER_INPUTS[:-1])
    with pytest.raises(Killed):
        get("generate").run(ibm, tmp_path)
    assert first.submissions == ["job-0"] and not (tmp_path / "data/generated/candidates.npz").exists()
    journal = json.loads((tmp_path / "data/jobs/generate.json").read_text())
    assert [(e["job_id"], e["backend"]) for e in journal.values()] == [("job-0", "ibm:ibm_standin")]

    get("generate").run(ibm, tmp_path)  # the restart
    fresh = tmp_path / "fresh"
    copy_files(root, fresh, *FILTER_INPUTS[:-1])
    get("generate").run(ibm, fresh)
    jobs = len(uninterrupted.submissions)
    assert jobs >= 2 and len(resumed.submissions) == jobs - 1 and "job-0" not in resumed.submissions and resumed.closed
    assert f"{jobs - 1} job(s) submitted, 1 re-attached" in capsys.readouterr().out
    assert digest(fresh / "data/generated/candidates.npz") == digest(tmp_path / "data/generated/candidates.npz")


def test_a_run_over_the_shot_budget_is_refused_before_submission(run, tmp_path) -> None:
    from qmodels.backends import ShotBudgetError

    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS[:-1])
    tight = {**raw, "quantum": {**raw["quantum"], "backend": "aer", "shots": 100, "max_shots": 1000}}
    with pytest.raises(ShotBudgetError, match="over quantum.max_shots = 1,000"):
        get("generate").run(tight, tmp_path)
    assert not (tmp_path / "data/generated/candidates.npz").exists()


def test_no_output_contains_the_ibm_token(run, tmp_path, monkeypatch) -> None:
    """A token in the environment reaches no stage output (params, metrics, data, models, plots)."""
    secret = "dummy-secret-token-5678"
    monkeypatch.setenv("QISKIT_IBM_TOKEN", secret)
    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS[:-1], "data/augmented/train.npz", "plots/data/baseline_history.csv")
    noisy = {**raw, "quantum": {**raw["quantum"], "backend": "aer", "shots": 64}}
    for name in ("generate", "filter", "evaluate"):
        get(name).run(noisy, tmp_path)
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaked


@pytest.mark.parametrize("method", ["gan1", "gan2", "dcgan", "conventional", "duplicates", "prototype"])
def test_every_baseline_method_runs_through_generate_filter_and_merge(run, tmp_path, method) -> None:
    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS[:4])
    params = {**raw, "augment": {**raw["augment"], "method": method}, "filter": {**raw["filter"], "min_accepted_fraction": 0.0}}
    summary = get("train_generator").run(params, tmp_path)
    generator = json.loads((tmp_path / "metrics/generator.json").read_text())
    assert summary["method"] == generator["method"] == method
    if method in ("conventional", "duplicates", "prototype"):
        assert generator["generator_parameters"] == 0 and generator["final_loss_d"] is None
    else:
        assert generator["generator_parameters"] > 0 and np.isfinite([generator["final_loss_d"], generator["final_loss_g"]]).all()
    for stage in ("generate", "filter", "merge"):
        get(stage).run(params, tmp_path)
    cand = load_arrays(tmp_path / "data/generated/candidates.npz")
    assert str(cand["method"]) == method and cand["images"].min() >= 0 and cand["images"].max() <= 1
    assert json.loads((tmp_path / "metrics/filter.json").read_text())["method"] == method
    train = load_arrays(tmp_path / "data/prepared/train.npz")["images"]
    copies = {img.tobytes() for img in train}
    is_copy = [img.tobytes() in copies for img in cand["images"]]
    assert all(is_copy) if method == "duplicates" else not any(is_copy)


def test_gunduz_hybrid_qgan_runs_as_qgan_model_wgan_gp(run, tmp_path) -> None:
    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS[:4])
    params = {**raw, "qgan": {**raw["qgan"], "model": "wgan-gp", "n_critic": 2}, "filter": {**raw["filter"], "min_accepted_fraction": 0.0}}
    get("train_generator").run(params, tmp_path)
    generator = json.loads((tmp_path / "metrics/generator.json").read_text())
    assert generator["model"] == "wgan-gp" and generator["params"]["model"] == "wgan-gp" and generator["generator_parameters"] > 0
    for stage in ("generate", "filter", "score_generated"):
        get(stage).run(params, tmp_path)
    scores = json.loads((tmp_path / "metrics/generation.json").read_text())
    assert scores["method"] == "qgan" and 0 <= scores["candidates"]["label_fidelity"] <= 1


def test_hybridq_runs_as_qgan_model_hybridq(run, tmp_path) -> None:
    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS[:4])
    params = {**raw, "qgan": {**raw["qgan"], "model": "hybridq"}, "hybridq": {**raw["hybridq"], "sub_generators": 2, "qubits": 3, "layers": 2},
              "filter": {**raw["filter"], "min_accepted_fraction": 0.0}}
    get("train_generator").run(params, tmp_path)
    generator = json.loads((tmp_path / "metrics/generator.json").read_text())
    assert generator["model"] == "hybridq" and np.isfinite([generator["final_loss_d"], generator["final_loss_g"]]).all()
    get("generate").run(params, tmp_path)
    cand = load_arrays(tmp_path / "data/generated/candidates.npz")
    assert cand["images"].shape[1:] == (1, 8, 8) and 0 <= cand["images"].min() and cand["images"].max() <= 1


def test_mosaiq_runs_as_qgan_model_mosaiq(run, tmp_path) -> None:
    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS[:4])
    params = {**raw, "qgan": {**raw["qgan"], "model": "mosaiq"}, "mosaiq": {**raw["mosaiq"], "sub_generators": 2, "qubits": 3, "layers": 2},
              "filter": {**raw["filter"], "min_accepted_fraction": 0.0}}
    get("train_generator").run(params, tmp_path)
    generator = json.loads((tmp_path / "metrics/generator.json").read_text())
    assert generator["model"] == "mosaiq" and generator["generator_parameters"] == 3 * 2 * 3 * 2 * 2  # classes × subgens × qubits × layers × (RY, RX)
    for stage in ("generate", "filter", "score_generated"):
        get(stage).run(params, tmp_path)
    cand = load_arrays(tmp_path / "data/generated/candidates.npz")
    assert cand["images"].shape[1:] == (1, 8, 8) and 0 <= cand["images"].min() and cand["images"].max() <= 1
    with pytest.raises(ParamsError, match=r"mosaiq.sub_generators × mosaiq.qubits = 40 PCA components need more than 40 .* has 12"):
        get("train_generator").run({**params, "mosaiq": {**raw["mosaiq"]}}, tmp_path)


def test_generated_sets_are_scored_per_class(run) -> None:
    root, _, _ = run
    scores = json.loads((root / "metrics/generation.json").read_text())
    assert 0.5 < scores["judge_test_accuracy"] <= 1
    for key in ("candidates", "accepted"):
        s = scores[key]
        assert set(s["per_class"]) == {"0", "1", "2"} and s["n"] == sum(c["n"] for c in s["per_class"].values())
        assert 0 <= s["label_fidelity"] <= 1 and s["frechet_distance"] >= 0 and s["nearest_test"]["min"] > 0
        assert 0 <= s["duplicates"]["near"] <= 1


def test_a_classical_method_on_ibm_runs_no_circuits_and_needs_no_account(run, tmp_path, monkeypatch) -> None:
    root, raw, _ = run
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no saved account: connecting would fail
    copy_files(root, tmp_path, *FILTER_INPUTS[:4])
    params = {**raw, "augment": {**raw["augment"], "method": "duplicates"}, "quantum": {**raw["quantum"], "backend": "ibm:ibm_torino"}}
    get("train_generator").run(params, tmp_path)
    assert get("generate").run(params, tmp_path)["backend"] == "none (no circuits)"


def test_a_generator_of_another_method_is_refused(run, tmp_path) -> None:
    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS[:-1])
    with pytest.raises(InputError, match="holds a qgan generator but augment.method is gan2; rerun train_generator"):
        get("generate").run({**raw, "augment": {**raw["augment"], "method": "gan2"}}, tmp_path)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _drop_labels(path: Path) -> None:
    arrays = load_arrays(path)
    save_arrays(path, **{k: v for k, v in arrays.items() if k != "labels"})


def _nan_pixel(path: Path) -> None:
    arrays = load_arrays(path)
    arrays["images"][0, 0, 0, 0] = np.nan
    save_arrays(path, **arrays)


DAMAGE = {  # the damaged files: (stage to run, file, damage, message)
    "truncated classifier": ("analyze_errors", "models/baseline.pt", _truncate, "models/baseline.pt is not a readable checkpoint"),
    "split without labels": ("train_baseline", "data/prepared/train.npz", _drop_labels,
                             "data/prepared/train.npz has no 'labels' array .it has classes, images."),
    "NaN pixels": ("train_baseline", "data/prepared/train.npz", _nan_pixel, "data/prepared/train.npz: array 'images' holds NaN"),
    "generator copied over the classifier": ("analyze_errors", "models/baseline.pt",
                                             lambda p: p.write_bytes((p.parent / "generator.pt").read_bytes()),
                                             "models/baseline.pt is not the checkpoint expected here .no 'state_dict' entry.|"
                                             "models/baseline.pt is not an HQCNN classifier checkpoint"),
    "truncated JSON": ("generate", "data/analysis/errors.json", _truncate, "data/analysis/errors.json is not valid JSON"),
    "truncated generator": ("generate", "models/generator.pt", _truncate, "models/generator.pt is not a readable checkpoint"),
    "truncated candidates": ("filter", "data/generated/candidates.npz", _truncate,
                             "data/generated/candidates.npz is not a readable .npz file"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_input_file_is_named_with_the_stage_that_writes_it(run, tmp_path, monkeypatch, capsys, case: str) -> None:
    from cli.main import main

    stage, rel, damage, message = DAMAGE[case]
    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS, "data/prepared/val.npz")
    damage(tmp_path / rel)
    with pytest.raises(InputError, match=message) as info:
        get(stage).run(raw, tmp_path)
    assert info.value.path == tmp_path / rel
    monkeypatch.chdir(tmp_path)  # the CLI, run where dvc would run it, adds who writes the file
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    assert main(["stage", stage]) == 2
    err = capsys.readouterr().err
    writer = {"models/baseline.pt": "train_baseline", "data/prepared/train.npz": "ingest", "data/analysis/errors.json": "analyze_errors",
              "models/generator.pt": "train_generator", "data/generated/candidates.npz": "generate"}[rel]
    assert f"{rel} is written by stage {writer}: `dvc checkout --force {rel}` restores the cached version" in err


def test_a_classifier_of_other_images_is_refused(run, tmp_path) -> None:
    """A baseline trained on 8×8 digits, judging 12×12 ones: named, not a shape error deep in the CNN."""
    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS, "data/prepared/val.npz")
    for split in ("val", "test"):
        arrays = load_arrays(tmp_path / f"data/prepared/{split}.npz")
        arrays["images"] = np.zeros((len(arrays["labels"]), 1, 12, 12), np.float32)
        save_arrays(tmp_path / f"data/prepared/{split}.npz", **arrays)
    with pytest.raises(InputError, match=r"models/baseline.pt classifies 3 classes of 1×8×8 images but .*val.npz has 3 classes of 1×12×12"):
        get("analyze_errors").run(raw, tmp_path)


def test_leftovers_of_a_killed_write_are_removed_at_the_next_run(run, tmp_path) -> None:
    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS[:-1])
    stale = tmp_path / "data/generated/.candidates.npz.k1ll3d.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a file")
    get("generate").run(raw, tmp_path)
    assert not stale.exists() and digest(tmp_path / "data/generated/candidates.npz") == digest(root / "data/generated/candidates.npz")


@pytest.mark.parametrize("stage", ["train_generator", "filter", "evaluate"])
def test_kill_9_mid_stage_then_rerun_gives_the_uninterrupted_bytes(run, tmp_path, stage: str) -> None:
    """`kill -9` of `qaug stage NAME` part-way, then the same command: the outputs equal the in-process run's
    (another process, the same pins) and nothing is left behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS, "data/prepared/val.npz", "data/augmented/train.npz", "plots/data/baseline_history.csv")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    outs = [p for p in files(get(stage).paths_object(), "out") if p.suffix in (".pt", ".npz", ".json", ".csv")]
    for p in outs:
        (tmp_path / p).unlink(missing_ok=True)
    cmd, env = [sys.executable, "-m", "cli", "stage", stage], dict(os.environ, PREFECT_API_URL="", PYTHONUNBUFFERED="1")
    for delay in (0.5, 0.1, 0.0):  # after the stage's "[k/10] name" line: in its work, not in the imports
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert stage in proc.stdout.readline()  # printed once params are parsed, before any work
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        if proc.wait(timeout=60) == -signal.SIGKILL and not all((tmp_path / p).exists() for p in outs):
            break  # killed part-way: some output is still missing
        for p in outs:
            (tmp_path / p).unlink(missing_ok=True)
    else:
        pytest.fail(f"{stage} finished before every kill; the test did not interrupt it")
    subprocess.run(cmd, cwd=tmp_path, env=env, check=True, timeout=600, stdout=subprocess.DEVNULL)
    for p in outs:
        assert digest(tmp_path / p) == digest(root / p), f"{p} differs after kill + rerun"
    assert not list(tmp_path.rglob("*.tmp"))


def test_every_accepted_image_passes_its_class_threshold_when_judged_again(run, tmp_path) -> None:
    """τ high enough to reject: each accepted image is, for the baseline, of its class with p ≥ τ_i, and the
    thresholds are τ ∓ α/β·R[i] of the error shares."""
    from tasks.classifier import load_model
    from qaug.io import load_image_set
    from qmodels.hqcnn import predict_proba

    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS)
    params = {**raw["filter"], "tau": 0.5, "alpha": 0.3, "beta": 0.2, "max_rounds": 3, "min_accepted_fraction": 0.0}
    get("filter").run({**raw, "filter": params}, tmp_path)
    metrics = json.loads((tmp_path / "metrics/filter.json").read_text())
    shares = json.loads((tmp_path / "data/analysis/errors.json").read_text())["error_share"]
    taus = thresholds(shares, 0.5, 0.3, 0.2)
    assert [s["threshold"] for s in metrics["per_class"].values()] == pytest.approx(taus)
    acc = load_arrays(tmp_path / "data/generated/accepted.npz")
    test = load_image_set(tmp_path / "data/prepared/test.npz")
    probs = predict_proba(load_model(tmp_path / "models/baseline.pt", test, tmp_path / "data/prepared/test.npz"), acc["images"])
    labels = acc["labels"]
    assert len(labels) and sum(s["rejected"] for s in metrics["per_class"].values()) > 0  # it did filter
    assert (probs.argmax(1) == labels).all()
    assert (probs[np.arange(len(labels)), labels] >= np.array(taus)[labels]).all()


def test_each_regeneration_round_draws_new_samples(run, tmp_path, monkeypatch) -> None:
    """A judge that accepts nothing: every (class, round) asks the generator with its own seed."""
    import tasks.filter

    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS)
    seeds: list[int] = []
    real_load = tasks.filter.load_generator

    def recording(path, **kwargs):
        sampler = real_load(path, **kwargs)
        sample = sampler.sample
        sampler.sample = lambda cls, count, seed: seeds.append(seed) or sample(cls, count, seed)  # type: ignore[method-assign]
        return sampler

    monkeypatch.setattr(tasks.filter, "load_generator", recording)
    monkeypatch.setattr(tasks.filter, "accept", lambda probs, cls, threshold: np.zeros(len(probs), dtype=bool))
    get("filter").run({**raw, "filter": {**raw["filter"], "max_rounds": 4, "min_accepted_fraction": 0.0}}, tmp_path)
    needy = sum(1 for n in load_arrays(tmp_path / "data/generated/candidates.npz")["targets"] if n)
    assert len(seeds) == 3 * needy and len(set(seeds)) == len(seeds)


def test_with_no_generated_image_the_augmented_model_is_the_baseline(run, tmp_path) -> None:
    """Same seed, same settings, same data: the delta is exactly zero (a retrain with another seed is not)."""
    root, raw, _ = run
    copy_files(root, tmp_path, *FILTER_INPUTS, "data/prepared/val.npz", "plots/data/baseline_history.csv")
    acc = load_arrays(root / "data/generated/accepted.npz")
    save_arrays(tmp_path / "data/generated/accepted.npz", **{k: (v[:0] if v.ndim else v) for k, v in acc.items()})
    get("merge").run(raw, tmp_path)
    get("evaluate").run(raw, tmp_path)
    comparison = json.loads((tmp_path / "metrics/comparison.json").read_text())
    augmented = json.loads((tmp_path / "metrics/augmented.json").read_text())
    baseline = json.loads((root / "metrics/baseline.json").read_text())
    assert augmented["training"]["generated"] == 0
    assert augmented["per_class"] == baseline["per_class"] and augmented["accuracy"] == baseline["accuracy"]
    deltas = dict(_numbers(comparison))
    assert deltas and all(v == 0 for v in deltas.values()), deltas


def _numbers(obj, prefix: str = ""):
    """Every number in a nested comparison whose key says it is a difference."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{prefix}.{k}")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool) and "delta" in prefix:
        yield prefix, obj


def test_scoring_over_training_writes_the_curve_and_changes_no_weight(run, tmp_path) -> None:
    """qgan.score_every: FD/KID rows at every k-th step (HybridQ Fig. 4a), and the same generator bytes as unscored."""
    import csv

    root, raw, _ = run
    assert (root / "plots/data/generator_quality.csv").read_text().splitlines() == [
        "step,fd,kid,fd_0,kid_0,fd_1,kid_1,fd_2,kid_2"]  # off by default: the header only
    copy_files(root, tmp_path, "data/prepared/train.npz", "data/analysis/errors.json")
    get("train_generator").run({**raw, "qgan": {**raw["qgan"], "score_every": 2, "score_samples": 8}}, tmp_path)
    rows = list(csv.DictReader((tmp_path / "plots/data/generator_quality.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8]
    assert all(np.isfinite(float(r[k])) and float(r["fd"]) >= 0 for r in rows for k in ("fd", "kid", "fd_2"))
    assert json.loads((tmp_path / "metrics/generator.json").read_text())["quality"]["step"] == 8
    assert digest(tmp_path / "models/generator.pt") == digest(root / "models/generator.pt")
