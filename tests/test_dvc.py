"""dvc.yaml against the stage table, and an end-to-end ``dvc repro`` in a temporary git repo."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tasks.layout import files
from tasks.stages import NAMES, STAGES
from tests.pipeline_helpers import PROJECT, tiny_params


def dvc_stages() -> dict:
    return yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]


def _paths(entries: list) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries]


def test_dvc_yaml_mirrors_the_stage_table() -> None:
    stages = dvc_stages()
    assert list(stages) == list(NAMES)
    for stage in STAGES:
        spec = stages[stage.name]
        paths = stage.paths_object()
        assert spec["cmd"] == f"qaug stage {stage.name}"
        assert spec["deps"] == [*stage.code, *map(str, files(paths, "dep"))], stage.name
        assert spec["params"] == list(stage.params), stage.name
        declared = _paths(spec.get("outs", [])) + _paths(spec.get("metrics", [])) + _paths(spec.get("plots", []))
        assert sorted(declared) == sorted(map(str, files(paths, "out"))), stage.name
        for entry in spec.get("metrics", []) + spec.get("plots", []):
            assert next(iter(entry.values())) == {"cache": False}
        for dep in stage.code:
            assert (PROJECT / dep).is_file(), f"{stage.name}: {dep} does not exist"


_INFRASTRUCTURE = {"qaug/io.py", "qaug/params.py", "tasks/layout.py", "tasks/stages.py"}


def _project_imports(path: str) -> set[str]:
    """Project modules (qaug, qmodels, tasks) that ``path`` imports, transitively, as file paths."""
    seen: set[str] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for node in ast.walk(ast.parse((PROJECT / current).read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for name in names:
                if name.split(".")[0] in ("qaug", "qmodels", "tasks"):
                    file = name.replace(".", "/") + ".py"
                    if (PROJECT / file).is_file() and file not in _INFRASTRUCTURE:
                        todo.append(file)
    return seen


def test_stage_code_deps_are_exactly_what_the_stage_imports() -> None:
    for stage in STAGES:
        module = stage.module.replace(".", "/") + ".py"
        assert set(stage.code) == _project_imports(module), stage.name


def test_no_stage_depends_on_shared_infrastructure() -> None:
    """Editing io/params helpers must not rerun everything: they are not stage deps."""
    for spec in dvc_stages().values():
        assert not _INFRASTRUCTURE & set(spec["deps"])


def test_dvc_analytics_off_in_the_repo() -> None:
    config = (PROJECT / ".dvc" / "config").read_text()
    assert re.search(r"analytics\s*=\s*false", config)


def test_dvc_plots_render_offline() -> None:
    """`dvc plots show` uses a template with vega inlined: no CDN script tags, the one placeholder DVC needs."""
    config = (PROJECT / ".dvc" / "config").read_text()
    assert re.search(r"html_template\s*=\s*offline_plots\.html", config)
    template = (PROJECT / ".dvc" / "offline_plots.html").read_text()
    assert "{plot_divs}" in template and "<script src=" not in template
    assert "jsdelivr" not in template and "unpkg" not in template
    assert all(name in template for name in ("vegaLite", "vegaEmbed", '"5.20.2"'))


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


@pytest.fixture()
def project(tmp_path) -> Path:
    """A fresh git + DVC repo with dvc.yaml, tiny params and copies of the code deps (DVC hashes
    the copies; the stages themselves run this environment's installed ``qaug``)."""
    root = tmp_path / "proj"
    root.mkdir()
    for folder in ("qaug", "qmodels", "tasks"):
        shutil.copytree(PROJECT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT / "dvc.yaml", root / "dvc.yaml")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    env = _env()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=env, timeout=900)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True, env=env, timeout=900)
    subprocess.run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], cwd=root, check=True, env=env, timeout=900)
    return root


def _env() -> dict:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", DO_NOT_TRACK="1", GIT_AUTHOR_NAME="qaug tests", GIT_AUTHOR_EMAIL="tests@qaug.invalid",
               GIT_COMMITTER_NAME="qaug tests", GIT_COMMITTER_EMAIL="tests@qaug.invalid")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # `qaug` of this environment
    return env


def _dvc(root: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_dvc_repro_end_to_end_then_noop_then_only_downstream_of_a_param(project: Path, prefect_api) -> None:
    first = _dvc(project, "repro")
    assert _ran(first) == list(NAMES)
    for path in ("data/augmented/train.npz", "metrics/comparison.json", "plots/per_class_accuracy.png", "dvc.lock"):
        assert (project / path).is_file(), path

    subprocess.run(["git", "add", "-A"], cwd=project, check=True, env=_env(), timeout=900)
    subprocess.run(["git", "commit", "-qm", "first run"], cwd=project, check=True, env=_env(), timeout=900)
    branch = subprocess.run(["git", "branch", "--show-current"], cwd=project, capture_output=True, text=True, env=_env(), timeout=900).stdout.strip()
    assert _ran(_dvc(project, "repro")) == []  # nothing changed: nothing runs

    from flows.scheduled import scheduled_repro

    lock = (project / "dvc.lock").read_bytes()
    stamp = (project / "data/augmented/train.npz").stat().st_mtime_ns
    state = scheduled_repro(root=str(project), return_state=True)  # what a scheduled run does: the same no-op
    assert state.is_completed(), state.message
    assert (project / "dvc.lock").read_bytes() == lock and (project / "data/augmented/train.npz").stat().st_mtime_ns == stamp

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["filter"]["tau"] = 0.5
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert _ran(_dvc(project, "repro")) == ["filter", "score_generated", "merge", "evaluate"]

    shown = _dvc(project, "metrics", "show")
    assert "metrics/comparison.json" in shown and "metrics/filter.json" in shown

    # the committed first run next to the workspace (what `qaug show --compare` does for experiments too)
    shown = subprocess.run([sys.executable, "-m", "qaug", "show", "--compare", branch, "workspace", "--json"],
                           cwd=project, env=_env(), capture_output=True, text=True, timeout=900)
    assert shown.returncode == 0, shown.stderr
    runs = json.loads(shown.stdout)
    committed = json.loads(subprocess.run(["git", "show", f"{branch}:metrics/comparison.json"], cwd=project, capture_output=True, text=True, timeout=900).stdout)
    assert runs[branch]["baseline accuracy"] == committed["baseline"]["accuracy"]
    assert runs["workspace"]["augmented accuracy"] == json.loads((project / "metrics/comparison.json").read_text())["augmented"]["accuracy"]
    for run in runs.values():
        assert run["backend"] == "exact" and 0 <= run["label fidelity, baseline HQCNN (candidates)"] <= 1
        assert run["Δ accuracy"] == pytest.approx(run["augmented accuracy"] - run["baseline accuracy"])


def test_the_committed_lock_holds_exactly_the_pipelines_stages() -> None:
    """A renamed stage must not linger in dvc.lock (train_qgan did, after its rename to train_generator)."""
    import hashlib

    lock = yaml.safe_load((PROJECT / "dvc.lock").read_text())["stages"]
    assert sorted(lock) == sorted(NAMES)
    for stage in STAGES:
        locked = {d["path"]: d["md5"] for d in lock[stage.name]["deps"]}
        assert sorted(locked) == sorted([*stage.code, *map(str, files(stage.paths_object(), "dep"))]), stage.name
        for path in stage.code:  # the lock was made with this code: `qaug run` after editing a stage's code
            assert locked[path] == hashlib.md5((PROJECT / path).read_bytes()).hexdigest(), f"dvc.lock is stale: {stage.name} {path}"
