"""Run keys, for every key of params.yaml and every grid stage: a stage's run key changes exactly when a
params key it reads changes, or the key of a run it reads from does (taken from the stage table, not a list here)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from grid.plan import ALL_STAGES, plan
from grid.spec import Arm, Cell
from qaug.params import load_params, lookup
from tests.pipeline_helpers import PROJECT

BASE = load_params(PROJECT / "params.yaml")
ARMS = (Arm("m", "augment"), Arm("none", "none", control=True), Arm("equal-steps", "equal-steps", control=True))
# base variants: the HQCNN judge, a ResNet judge (its none control is resnet_baseline), a generator scoring over training
VARIANTS = {"hqcnn": {}, "resnet": {"evaluate.classifier": "resnet18"}, "scoring": {"qgan.score_every": 4}}


def leaves(raw: dict, prefix: str = "") -> list[str]:
    """Every dotted key of ``raw`` that holds a value (not a section)."""
    out = []
    for k, v in raw.items():
        out += leaves(v, f"{prefix}{k}.") if isinstance(v, dict) and v else [f"{prefix}{k}"]
    return out


def changed(value: Any) -> Any:
    """Some other value of the same kind (plan() keys params without checking them)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "-other"
    if isinstance(value, list):
        return [*value, 9]
    return 7  # None


def with_value(raw: dict, dotted: str, value: Any) -> dict:
    out = copy.deepcopy(raw)
    *sections, last = dotted.split(".")
    node = out
    for s in sections:
        node = node.setdefault(s, {})
    node[last] = value
    return out


def stage_keys(raw: dict) -> dict[str, tuple[str, dict[str, str]]]:
    """Stage → (its run key, the stage of each run it reads from → that run's key), over one cell of every arm kind."""
    cells = [Cell("r", (), arm, 0, raw) for arm in ARMS]
    runs, per_cell = plan(cells, score=True)
    out = {}
    for keys in per_cell.values():
        for stage, key in keys.items():
            out[stage] = (key, {runs[u].stage: u for u in runs[key].upstream})
    return out


def reads(stage: str, raw: dict, dotted: str) -> bool:
    """Whether the stage table says ``stage`` reads ``dotted`` (a key it lists, or one inside a section it lists)."""
    return any(dotted == k or dotted.startswith(k + ".") for k in ALL_STAGES[stage].params_read(raw))


def cases() -> list[tuple[str, str]]:
    return [(variant, key) for variant, overrides in VARIANTS.items()
            for key in leaves(_base(variant)) if key not in overrides]


def _base(variant: str) -> dict:
    raw = BASE
    for key, value in VARIANTS[variant].items():
        raw = with_value(raw, key, value)
    return raw


def test_every_grid_stage_and_every_key_the_stage_table_names_is_covered() -> None:
    seen = set()
    for variant in VARIANTS:
        seen |= set(stage_keys(_base(variant)))
    assert seen == set(ALL_STAGES)
    for stage in ALL_STAGES.values():  # a misspelt key in the table would be read as absent and never change a run key
        for key in (*stage.params, *(k for pair in stage.read_if for k in pair)):
            assert any(leaf == key or leaf.startswith(key + ".") for leaf in leaves(BASE)), f"{stage.name} lists {key}, not in params.yaml"


@pytest.mark.parametrize(("variant", "key"), cases())
def test_a_run_key_changes_exactly_with_the_params_and_inputs_its_stage_reads(variant: str, key: str) -> None:
    raw = _base(variant)
    before = stage_keys(raw)
    after = stage_keys(with_value(raw, key, changed(lookup(raw, key))))
    for stage, (key_before, upstream) in before.items():
        key_after, upstream_after = after[stage]
        read = reads(stage, raw, key)
        inputs_moved = upstream != upstream_after
        if read or inputs_moved:
            assert key_after != key_before, f"{stage}: changing {key} ({variant}) left its run key alone"
        else:
            assert key_after == key_before, f"{stage}: changing {key} ({variant}), which it does not read, changed its run key"


def test_inception_settings_are_in_the_generators_key_only_when_it_scores_over_training() -> None:
    for every, keyed in ((0, False), (4, True)):
        raw = with_value(BASE, "qgan.score_every", every)
        before = stage_keys(raw)
        after = stage_keys(with_value(raw, "metrics.inception_features", 64))
        assert (before["train_generator"][0] != after["train_generator"][0]) is keyed
        assert before["score_generated"][0] != after["score_generated"][0]  # which reads them either way


def test_a_key_no_stage_reads_changes_no_run_key() -> None:
    raw = with_value(BASE, "unread_section.value", 1)
    assert {s: k for s, (k, _) in stage_keys(raw).items()} == {s: k for s, (k, _) in stage_keys(BASE).items()}
