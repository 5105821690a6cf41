"""`qaug show --compare`: naming runs and reading their headline numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.report import COMPARISON, FILTER, differing_params, experiment_refs, resolve_runs, run_summary

ROWS = [  # the shape of dvc.api.exp_show() rows
    {"Experiment": None, "rev": "workspace"},
    {"Experiment": None, "rev": "main"},
    {"Experiment": "brisbane", "rev": "1a2b3c4"},
]


def test_runs_resolve_by_experiment_name_or_rev() -> None:
    assert resolve_runs(["brisbane", "main", "workspace", "1a2b3c4"], ROWS) == {
        "brisbane": "1a2b3c4", "main": "main", "workspace": None, "1a2b3c4": "1a2b3c4",
    }
    with pytest.raises(FileNotFoundError, match="no experiment or revision 'torino'; known: brisbane, main, workspace"):
        resolve_runs(["torino"], ROWS)


def test_run_summary_reads_nested_fields_and_leaves_gaps_empty() -> None:
    metrics: dict[Path, dict] = {
        COMPARISON: {"quantum": {"backend": "fake:FakeBrisbane", "shots": 1024, "noise": "device model"},
                     "baseline": {"accuracy": 0.96}, "augmented": {"accuracy": 0.97}, "delta": {"accuracy": 0.01, "macro": {"f1": 0.02}}},
    }
    summary = run_summary(metrics)
    assert summary["backend"] == "fake:FakeBrisbane" and summary["shots"] == 1024 and summary["Δ macro F1"] == 0.02
    assert summary["label fidelity, baseline HQCNN (candidates)"] is None  # no metrics/filter.json in this run
    metrics[FILTER] = {"label_fidelity": 0.9, "accepted": 30, "needed": 30}
    assert run_summary(metrics)["label fidelity, baseline HQCNN (candidates)"] == 0.9


def test_any_git_revision_resolves_when_no_experiment_has_that_name() -> None:
    known = {"HEAD", "v1.0"}
    assert resolve_runs(["HEAD", "brisbane"], ROWS, is_commit=known.__contains__) == {"HEAD": "HEAD", "brisbane": "1a2b3c4"}
    older = {"hybridq": "9f8e7d6"}  # an experiment of an earlier baseline commit (not in exp_show's rows)
    assert resolve_runs(["hybridq", "brisbane"], ROWS, older=older) == {"hybridq": "9f8e7d6", "brisbane": "1a2b3c4"}
    with pytest.raises(FileNotFoundError, match="no experiment or revision 'nope'"):
        resolve_runs(["nope"], ROWS, is_commit=known.__contains__)


def test_experiment_refs_of_every_commit_newest_name_wins() -> None:
    lines = "\n".join([
        "refs/exps/exec/EXEC_HEAD 1111111",  # DVC's bookkeeping, not an experiment
        "refs/exps/celery/stash 2222222",
        "refs/exps/5b/2149f4d1af61fc602f40eb06ac01f4b19457ed/dcgan 3333333",  # older (sorted by committer date)
        "refs/exps/b4/7dcbcff29496640d87c69b514cbbd3d15ce79a/hybridq 4444444",
        "refs/exps/e0/0f71a495a0eb7f53c95fcc22d01ab9528ee9b4/dcgan 5555555",  # the same name, newer
        "",
    ])
    assert experiment_refs(lines) == {"dcgan": "5555555", "hybridq": "4444444"}
    with pytest.raises(FileNotFoundError, match="known: .*hybridq"):
        resolve_runs(["torino"], ROWS, older=experiment_refs(lines))


def test_only_params_that_differ_between_runs_are_listed() -> None:
    params = {
        "main": {"seed": 0, "filter": {"tau": 0.7, "alpha": 0.1}, "ingest": {"classes": [0, 1, 2]}},
        "exp-1": {"seed": 0, "filter": {"tau": 0.5, "alpha": 0.1}, "ingest": {"classes": [0, 1]}},
        "exp-2": {"seed": 0, "filter": {"tau": 0.7, "alpha": 0.1}, "ingest": {"classes": [0, 1, 2]}, "new": {"key": 1}},
    }
    assert differing_params(params) == {
        "main": {"param filter.tau": 0.7, "param ingest.classes": [0, 1, 2], "param new.key": None},
        "exp-1": {"param filter.tau": 0.5, "param ingest.classes": [0, 1], "param new.key": None},
        "exp-2": {"param filter.tau": 0.7, "param ingest.classes": [0, 1, 2], "param new.key": 1},
    }
    assert differing_params({"a": params["main"], "b": params["main"]}) == {"a": {}, "b": {}}
