import json

from qaug.cli import main


def test_demo_writes_metrics_and_sample_grid(tmp_path) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--image-size", "8", "--epochs", "1", "--qgan-steps", "3"]) == 0
    metrics = json.loads((out / "demo.json").read_text())
    assert 0.0 <= metrics["hqcnn_test_accuracy"] <= 1.0
    assert set(metrics["qgan_label_fidelity"]) == {"0", "1", "2"}
    assert (out / "qgan_samples.png").stat().st_size > 1000


def test_stage_with_bad_params_fails_before_work_naming_the_key(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("qaug.cli._watched", lambda required: False)  # plain dvc repro, whatever server the session started
    (tmp_path / "params.yaml").write_text("filter:\n  tau: 1.5\n")
    assert main(["stage", "filter"]) == 2
    assert "params.yaml: filter.tau must be in [0, 1], got 1.5" in capsys.readouterr().err
    assert main(["run"]) == 2  # the whole pipeline checks every section before dvc starts
    assert "filter.tau" in capsys.readouterr().err and not (tmp_path / "data").exists()


def test_stage_without_inputs_says_what_to_run_first(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    assert main(["stage", "merge"]) == 2
    assert "data/prepared/train.npz does not exist; run the stage that makes it first" in capsys.readouterr().err


def test_show_prints_the_comparison(tmp_path, monkeypatch, capsys) -> None:
    import numpy as np

    from qaug.metrics import classification_metrics, compare

    monkeypatch.chdir(tmp_path)
    assert main(["show"]) == 2 and "run the pipeline first" in capsys.readouterr().err
    labels = np.array([0, 1, 1, 0])
    base = classification_metrics(np.eye(2)[[0, 0, 1, 0]], labels, ["a", "b"])
    aug = classification_metrics(np.eye(2)[[0, 1, 1, 0]], labels, ["a", "b"])
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/comparison.json").write_text(json.dumps(compare(base, aug)))
    assert main(["show", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {"metric": "accuracy", "baseline": 0.75, "augmented": 1.0, "delta": 0.25}
    assert main(["show"]) == 0 and "+0.250" in capsys.readouterr().out

    def scores(fid):
        return {"n": 4, "label_fidelity": 0.75, "frechet_distance": 0.125, "kid": 0.01, "inception_fid": fid, "diversity": 0.3,
                "real_diversity": 0.35, "duplicates": {"near": 0.0}, "nearest_test": {"mean": 0.2}}

    generation = {"method": "qgan", "inception": {"enabled": False, "note": "Inception FID skipped: set metrics.inception_weights"},
                  **{k: {**scores(None), "per_class": {"a": scores(None)}} for k in ("candidates", "accepted")}}
    (tmp_path / "metrics/generation.json").write_text(json.dumps(generation))
    assert main(["show"]) == 0
    out = capsys.readouterr().out
    assert "generated samples (qgan)" in out and "0.125" in out and "Inception FID skipped" in out
    generation["inception"] = {"enabled": True}
    generation["accepted"]["inception_fid"] = 12.5
    (tmp_path / "metrics/generation.json").write_text(json.dumps(generation))
    assert main(["show"]) == 0
    out = capsys.readouterr().out
    assert "12.500" in out and "skipped" not in out


def test_a_run_says_whether_it_reproduced_the_committed_lock() -> None:
    from qaug.repro import lock_difference

    def lock(out_hash: str, code_hash: str = "c", tau: float = 0.8) -> dict:
        return {"stages": {
            "ingest": {"deps": [{"path": "tasks/ingest.py", "md5": "i"}], "params": {"params.yaml": {"seed": 0}},
                       "outs": [{"path": "data/prepared/train.npz", "md5": "t"}]},
            "filter": {"deps": [{"path": "tasks/filter.py", "md5": code_hash}], "params": {"params.yaml": {"filter": {"tau": tau}}},
                       "outs": [{"path": "data/generated/accepted.npz", "md5": out_hash}]},
        }}

    order = ["ingest", "filter"]
    assert lock_difference(lock("a"), lock("a"), order).startswith("reproduced")
    assert lock_difference(lock("a"), lock("b"), order) == "differs from the committed dvc.lock at stage filter: data/generated/accepted.npz"
    assert "stage filter's deps changed" in lock_difference(lock("a"), lock("b", code_hash="d"), order)
    assert "stage filter's params changed" in lock_difference(lock("a"), lock("a", tau=0.9), order)
