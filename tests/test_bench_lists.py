"""The benches that say whether the tests catch wrong code name code and tests by text; a stale name would make them
fail to plant a bug or run no test, so every name they hold must still point at something."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def missing_tests(node_ids: list[str]) -> list[str]:
    """The node ids (file or file::test) that name no test file or no test function in it."""
    missing = []
    for node in node_ids:
        path, _, test = node.partition("::")
        source = (ROOT / path).read_text() if (ROOT / path).is_file() else None
        if source is None or (test and not re.search(rf"^def {re.escape(test)}\(", source, re.M)):
            missing.append(node)
    return missing


@pytest.mark.parametrize("name", list(bench("planted_bugs").BUGS))
def test_each_planted_bug_changes_text_found_once_and_names_existing_tests(name: str) -> None:
    path, original, planted, tests = bench("planted_bugs").BUGS[name]
    assert (ROOT / path).read_text().count(original) == 1, f"{path} no longer holds {original!r} exactly once"
    assert original != planted and missing_tests(tests) == []


def test_each_mutation_target_is_a_module_with_tests_that_exist() -> None:
    targets = bench("mutation").TARGETS
    assert all((ROOT / module).is_file() for module in targets)
    assert {module: missing_tests(tests) for module, tests in targets.items() if missing_tests(tests)} == {}
