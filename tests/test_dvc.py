"""dvc.yaml against the stage table and the committed lock (end-to-end runs through DVC: tests/test_flows.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from tasks.layout import files
from tasks.stages import NAMES, STAGES
from tests.pipeline_helpers import PROJECT


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
        assert spec["deps"] == [*stage.code, *stage.external, *map(str, files(paths, "dep"))], stage.name
        assert spec["params"] == list(stage.params), stage.name
        declared = _paths(spec.get("outs", [])) + _paths(spec.get("metrics", [])) + _paths(spec.get("plots", []))
        assert sorted(declared) == sorted(map(str, files(paths, "out"))), stage.name
        assert _paths(spec.get("metrics", [])) == (["metrics/summary.json"] if stage.name == "evaluate" else []), stage.name  # flat, one file
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
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:  # `from pkg import module` imports pkg/module.py
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for name in names:
                if name.split(".")[0] in ("qaug", "qmodels", "tasks"):
                    file = name.replace(".", "/") + ".py"
                    if (PROJECT / file).is_file() and file not in _INFRASTRUCTURE:
                        todo.append(file)
    return seen


def test_stage_code_deps_are_exactly_what_the_stage_imports() -> None:
    from grid.plan import ALL_STAGES  # the grid's own stages key their runs by their code too

    for stage in ALL_STAGES.values():
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


def _resolve(dep: str) -> str:
    """A dvc.yaml dep with its ``${section.key}`` templates filled from params.yaml, as DVC does."""
    from qaug.params import load_params, lookup

    return re.sub(r"\$\{([^}]+)\}", lambda m: str(lookup(load_params(PROJECT / "params.yaml"), m.group(1))), dep)


def test_the_committed_lock_holds_exactly_the_pipelines_stages() -> None:
    """A renamed stage must not linger in dvc.lock (train_qgan did, after its rename to train_generator)."""
    import hashlib

    lock = yaml.safe_load((PROJECT / "dvc.lock").read_text())["stages"]
    assert sorted(lock) == sorted(NAMES)
    for stage in STAGES:
        locked = {d["path"]: d["md5"] for d in lock[stage.name]["deps"]}
        external = [_resolve(dep) for dep in stage.external]
        assert sorted(locked) == sorted([*stage.code, *external, *map(str, files(stage.paths_object(), "dep"))]), stage.name
        for path in stage.code:  # the lock was made with this code: `qaug run` after editing a stage's code
            assert locked[path] == hashlib.md5((PROJECT / path).read_bytes()).hexdigest(), f"dvc.lock is stale: {stage.name} {path}"
