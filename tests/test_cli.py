import json
import subprocess
import sys

import pytest
import yaml

from cli.main import main
from tests.pipeline_helpers import project_env


def test_demo_writes_metrics_and_sample_grid(tmp_path) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--image-size", "8", "--epochs", "1", "--qgan-steps", "3"]) == 0
    metrics = json.loads((out / "demo.json").read_text())
    assert 0.0 <= metrics["hqcnn_test_accuracy"] <= 1.0
    assert set(metrics["qgan_label_fidelity"]) == {"0", "1", "2"}
    assert (out / "qgan_samples.png").stat().st_size > 1000


def test_stage_with_bad_params_fails_before_work_naming_the_key(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("cli.server.watched", lambda required: False)  # plain dvc repro, whatever server the session started
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


def _lock(out_hash: str = "a", code_hash: str = "c", tau: float = 0.8, stages=("ingest", "filter", "score_generated")) -> dict:
    spec = {"ingest": ("tasks/ingest.py", "i", {"seed": 0}, "data/prepared/train.npz", "t"),
            "filter": ("tasks/filter.py", code_hash, {"filter": {"tau": tau}}, "data/generated/accepted.npz", out_hash),
            "score_generated": ("tasks/score_generated.py", "s", {}, "metrics/generation.json", "g")}
    return {"stages": {name: {"deps": [{"path": spec[name][0], "md5": spec[name][1]}], "params": {"params.yaml": spec[name][2]},
                              "outs": [{"path": spec[name][3], "md5": spec[name][4]}]} for name in stages}}


def test_a_run_says_whether_it_reproduced_the_committed_lock() -> None:
    from qaug.repro import lock_difference

    order = ["ingest", "filter", "score_generated"]
    ran = dict.fromkeys(order, "ran")
    assert lock_difference(_lock(), _lock(), order, ran) == "reproduced: every stage ran and every output has the committed dvc.lock's hash"
    assert lock_difference(_lock("a"), _lock("b"), order, ran) == "differs from the committed dvc.lock at stage filter: data/generated/accepted.npz"
    assert "stage filter's deps changed" in lock_difference(_lock("a"), _lock("b", code_hash="d"), order, ran)
    assert "stage filter's params changed" in lock_difference(_lock("a"), _lock("a", tau=0.9), order, ran)


def test_reproduced_is_said_only_of_the_stages_that_ran() -> None:
    """A fresh clone: DVC skips score_generated (its only output is in git, its deps unchanged), so its metrics are
    the committed file, never recomputed: the run must not call them reproduced."""
    from qaug.repro import lock_difference

    order = ["ingest", "filter", "score_generated"]
    said = lock_difference(_lock(), _lock(), order, {"ingest": "ran", "filter": "restored", "score_generated": "unchanged"})
    assert said.startswith("reproduced ingest: they ran and every output has the committed dvc.lock's hash; not compared")
    assert "filter (restored from DVC's run cache); score_generated (skipped by DVC: no dep or param changed)" in said
    assert "`qaug run --force` recomputes and compares every stage; `dvc repro -f -s filter` then `git diff dvc.lock`" in said
    nothing = lock_difference(_lock(), _lock(), order, {})
    assert nothing.startswith("not compared with the committed dvc.lock: this run recomputed no stage") and "reproduced" not in nothing
    assert "ingest, filter, score_generated (not reported as run by DVC)" in nothing
    stale = lock_difference(_lock("a"), _lock("b"), order, dict.fromkeys(order, "unchanged"))
    assert stale.endswith("data/generated/accepted.npz (outputs of an earlier run: this run did not recompute them)")


@pytest.mark.parametrize("prefect", [False, True])
def test_qaug_run_says_reproduced_only_of_what_it_ran(prefect: bool, tmp_path, monkeypatch, capsys) -> None:
    """Both ways a run goes (plain dvc repro, the Prefect flow) feed what DVC did with each stage to the verdict."""
    from qaug.repro import Repro
    from tasks.stages import NAMES

    monkeypatch.chdir(tmp_path)
    lock = _lock(stages=("ingest", "filter", "score_generated"))
    (tmp_path / "dvc.lock").write_text(json.dumps(lock))
    outcome = {**dict.fromkeys(NAMES, "ran"), "score_generated": "unchanged"}
    monkeypatch.setattr("qaug.repro.committed_lock", lambda: lock)
    monkeypatch.setattr("qaug.repro.dvc_repro", lambda force=False: Repro(0, outcome))
    monkeypatch.setattr("cli.pipeline.pipeline_flow", lambda force, command: outcome)
    monkeypatch.setattr("qaug.params.load_params", lambda path: {})
    monkeypatch.setattr("tasks.preflight.before_repro", lambda raw, force=False: None)
    for name in ("results.show", "pipeline.push", "pipeline.build_docs"):
        monkeypatch.setattr(f"cli.{name}", lambda *args: 0)
    monkeypatch.setattr("cli.server.watched", lambda required: prefect)
    assert main(["run"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"reproduced {', '.join(n for n in NAMES if n != 'score_generated')}: they ran")
    assert "not compared, as this run did not recompute them: score_generated (skipped by DVC" in last


def test_dvc_repro_streams_its_output_and_notes_what_dvc_did_with_each_stage(tmp_path, capsys) -> None:
    """DVC 3's own words, from a real dvc repro: ran, then unchanged, then restored from the run cache."""
    from qaug.repro import dvc_repro

    env = project_env()
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=env, timeout=300)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True, env=env, timeout=300)
    (tmp_path / "in.txt").write_text("in")  # a stage without deps never comes from the run cache
    write = "import sys; open(sys.argv[1], 'w').write(sys.argv[2]); print('wrote', sys.argv[1])"
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        "first": {"cmd": f'python -c "{write}" a.txt 1', "deps": ["in.txt"], "outs": ["a.txt"]},
        "second": {"cmd": f'python -c "{write}" b.txt 2', "deps": ["a.txt"], "outs": [{"b.txt": {"cache": False}}]}}}))
    assert dvc_repro(root=tmp_path) == (0, {"first": "ran", "second": "ran"})
    assert "wrote a.txt" in capsys.readouterr().out  # the stages' own output reaches the terminal
    assert dvc_repro(root=tmp_path) == (0, {"first": "unchanged", "second": "unchanged"})
    (tmp_path / "a.txt").unlink()
    assert dvc_repro(root=tmp_path) == (0, {"first": "restored", "second": "unchanged"})
    assert dvc_repro(force=True, root=tmp_path) == (0, {"first": "ran", "second": "ran"})


def test_exps_shows_the_changed_params_and_headline_metrics_in_120_columns(tmp_path, monkeypatch) -> None:
    """Real `dvc exp run`s of a one-stage project with the pipeline's params and metrics/summary.json: `dvc exp
    show --only-changed` puts the metrics and the dependency hashes first, cutting the changed params at 120
    columns; `qaug exps` shows each experiment's params that differ and its headline numbers."""
    from rich.console import Console

    from cli import results
    from tests.pipeline_helpers import tiny_params

    env = project_env()
    run = lambda *cmd: subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True, text=True, timeout=900)  # noqa: E731
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    (tmp_path / "score.py").write_text(
        "import json, yaml\np = yaml.safe_load(open('params.yaml'))\n"
        "acc = round(0.9 - p['filter']['tau'] / 10 + p['augment']['n_gen'] / 1000, 4)\n"
        "json.dump({'accuracy_baseline': 0.9, 'accuracy_augmented': acc, 'accuracy_delta': acc - 0.9, 'macro_f1_baseline': 0.8,\n"
        "           'macro_f1_augmented': acc - 0.1, 'macro_f1_delta': acc - 1.0, 'recall_delta_0': 0.01, 'recall_delta_1': 0.02,\n"
        "           'recall_delta_2': 0.03, 'train_real': 36, 'train_generated': p['augment']['n_gen']}, open('metrics/summary.json', 'w'))\n"
        "open('data/augmented/train.npz', 'w').write(str(acc))\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"score": {
        "cmd": f"{sys.executable} score.py", "deps": ["score.py"], "params": ["filter", "augment", "quantum"],
        "outs": ["data/augmented/train.npz"], "metrics": [{"metrics/summary.json": {"cache": False}}]}}}))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "data/augmented").mkdir(parents=True)
    run("git", "init", "-q", "-b", "main")
    run(sys.executable, "-m", "dvc", "init", "-q")
    run(sys.executable, "-m", "dvc", "repro", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline")
    run(sys.executable, "-m", "dvc", "exp", "run", "-q", "-n", "tau-half", "-S", "filter.tau=0.5")
    run(sys.executable, "-m", "dvc", "exp", "run", "-q", "-n", "brisbane-30", "-S", "quantum.backend=fake:FakeBrisbane", "-S", "augment.n_gen=30")
    monkeypatch.chdir(tmp_path)
    console = Console(width=120, record=True)
    monkeypatch.setattr("rich.console.Console", lambda width=None, **kw: console)
    assert results.exps(__import__("argparse").Namespace(all_commits=False, json=False)) == 0
    lines = console.export_text().splitlines()
    assert max(map(len, lines)) <= 120, "\n".join(lines)
    cells: dict[str, list[list[str]]] = {}  # run → its lines' cells (a run's params wrap onto the lines below it)
    for line in lines:
        cols = [c.strip() for c in line.split("│")[1:-1]]
        if cols and cols[0]:
            cells[cols[0]] = [cols]
        elif cols:
            cells[list(cells)[-1]].append(cols)
    params = {run: " ".join(c[1] for c in rows) for run, rows in cells.items()}
    numbers = {run: rows[0][2:] for run, rows in cells.items()}
    assert set(cells) == {"workspace", "main", "└ tau-half", "└ brisbane-30"}
    assert params["main"] == "augment.n_gen=12, filter.tau=0.34, quantum.backend=exact"
    assert params["└ tau-half"] == "augment.n_gen=12, filter.tau=0.5, quantum.backend=exact"  # exp run -S applies to the workspace:
    assert params["└ brisbane-30"] == "augment.n_gen=30, filter.tau=0.5, quantum.backend=fake:FakeBrisbane"  # tau stays 0.5
    assert numbers["└ tau-half"] == ["0.900", "0.862", "-0.038", "-0.138", "12"]
    assert numbers["└ brisbane-30"] == ["0.900", "0.880", "-0.020", "-0.120", "30"]
