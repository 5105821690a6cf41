"""The house's layers, read from the source (imports inside functions too, since most of ours are there):
qmodels/ below qaug/ below tasks/ below grid/ and flows/, and the cli/ on top; no import circle."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("qmodels", "qaug", "tasks", "grid", "flows", "cli")

# What each package must not import: the packages above it (the models know no files, params or Prefect).
FORBIDDEN = {
    "qmodels": {"qaug", "tasks", "grid", "flows", "cli"},
    "qaug": {"tasks", "grid", "flows", "cli"},
    "tasks": {"grid", "flows", "cli"},
    "grid": {"cli"},
    "flows": {"cli"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file; ``from pkg import name`` names pkg.name when that
    is a module of ours, pkg otherwise."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module) if p)
            found.update(f"{module}.{a.name}" if is_module(f"{module}.{a.name}") else module for a in node.names)
    return found


def is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_imports_a_layer_above_it(package: str) -> None:
    upward = sorted(f"{module_name(path)} imports {name}" for path in sources(package) for name in imported(path)
                    if name.split(".")[0] in FORBIDDEN[package])
    assert not upward, f"{package}/ must not import {sorted(FORBIDDEN[package])}:\n" + "\n".join(upward)


def test_no_import_circle() -> None:
    """Inside qaug/ above all (qaug.device and qaug.reproducible once imported each other), and in every package."""
    graph = {module_name(path): {name for name in imported(path) if name.split(".")[0] in PACKAGES and is_module(name)}
             for package in PACKAGES for path in sources(package)}
    for node, deps in graph.items():
        deps.discard(node)  # `from qaug import __version__` in qaug/__init__.py is not a circle
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as err:
        pytest.fail(f"import circle: {' -> '.join(err.args[1])}")


def test_the_checker_sees_imports_inside_functions_and_relative_ones(tmp_path, monkeypatch) -> None:
    """The rules above only hold if the reader finds every import: deferred ones are how most of ours are written."""
    (tmp_path / "qaug").mkdir()
    (tmp_path / "qaug" / "__init__.py").write_text("")
    (tmp_path / "qaug" / "io.py").write_text("")
    (tmp_path / "qaug" / "a.py").write_text("def f():\n    from tasks.stages import NAMES\n    from . import io\n    from .io import x\n")
    monkeypatch.setitem(globals(), "REPO", tmp_path)
    assert imported(tmp_path / "qaug" / "a.py") == {"tasks.stages", "qaug.io"}
