"""Run keys, for every key of params.yaml and every grid stage: a stage's run key changes exactly when a
params key it reads changes, or the key of a run it reads from does (taken from the stage table, not a list here)."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest

from grid.plan import ALL_STAGES, plan
from grid.spec import Arm, Cell
from qaug.params import load_params, lookup
from tasks.stages import NAMES
from tests.pipeline_helpers import PROJECT

BASE = load_params(PROJECT / "params.yaml")
ARMS = (Arm("m", "augment"), Arm("none", "none", control=True), Arm("equal-steps", "equal-steps", control=True))
# base variants: the HQCNN judge, a ResNet judge (its none control is resnet_baseline), a generator scoring over training
VARIANTS = {"hqcnn": {}, "resnet": {"evaluate.classifier": "resnet18"}, "scoring": {"qgan.score_every": 4}}


@pytest.fixture(autouse=True)
def _same_data(monkeypatch):
    """The data's content is a key's other part (tests/test_source.py); here it stays fixed, so a params value the
    source would refuse (``ingest.source: embedded-mnist-other``) can still be keyed."""
    monkeypatch.setattr("tasks.stages.Stage.content_digest", lambda self, raw: "the same images")


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
    """Every leaf of params.yaml, and a key params.yaml lacks in every section: a stage that reads a whole section is
    keyed by all of it, one that reads some of its keys only by those."""
    def keys(raw: dict) -> list[str]:
        return leaves(raw) + [f"{name}.unlisted" for name, value in raw.items() if isinstance(value, dict)]

    return [(variant, key) for variant, overrides in VARIANTS.items() for key in keys(_base(variant)) if key not in overrides]


@cache
def _base_keys(variant: str) -> dict[str, tuple[str, dict[str, str]]]:
    return stage_keys(_base(variant))


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
    before = _base_keys(variant)
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


# --- the grid's own stages and how runs are named -------------------------------------------------------------


def test_the_controls_own_stages_read_what_shapes_their_outputs() -> None:
    """equal_steps: the baseline's settings, the judge's, and how many images were generated (n_gen or the ratio);
    resnet_baseline: the judge's settings only."""
    for key, equal_steps_reads, resnet_reads in (
            ("augment.n_gen", True, False), ("merge.mixing_ratio", True, False), ("baseline.epochs", True, False),
            ("evaluate.epochs", True, True), ("seed", True, True), ("device", True, True), ("augment.method", False, False),
            ("filter.tau", False, False), ("ingest.image_size", True, True)):  # ingest: through the images they read
        raw = _base("resnet")
        before, after = stage_keys(raw), stage_keys(with_value(raw, key, changed(lookup(raw, key))))
        assert (before["equal_steps"][0] != after["equal_steps"][0]) is equal_steps_reads, key
        assert (before["resnet_baseline"][0] != after["resnet_baseline"][0]) is resnet_reads, key


def test_which_stages_a_cell_needs() -> None:
    from grid.plan import reference_stage, result_stage, stages_of

    augment, none, steps = (Cell("r", (), arm, 0, BASE) for arm in ARMS)
    assert stages_of(augment, True) == ("ingest", "train_baseline", "analyze_errors", "train_generator", "generate", "filter",
                                        "score_generated", "merge", "resnet_baseline", "evaluate") == NAMES  # what `qaug run` runs
    assert "score_generated" not in stages_of(augment, False)
    assert stages_of(none, True) == ("ingest", "train_baseline") and stages_of(steps, True) == ("ingest", "equal_steps")
    assert [result_stage(c) for c in (augment, none, steps)] == ["evaluate", "train_baseline", "equal_steps"]
    resnet = Cell("r", (), ARMS[1], 0, _base("resnet"))
    assert reference_stage(resnet) == result_stage(resnet) == "resnet_baseline" and stages_of(resnet, True) == ("ingest", "resnet_baseline")
    no_section = Cell("r", (), ARMS[1], 0, {k: v for k, v in BASE.items() if k != "evaluate"})  # the default judge: the HQCNN
    assert reference_stage(no_section) == "train_baseline"


def test_runs_are_shared_within_a_seed_and_labelled_by_what_they_are_for() -> None:
    def params(seed: int, arm: Arm) -> dict:
        raw = with_value(with_value(BASE, "seed", seed), "filter.tau", 0.6)
        return with_value(raw, "filter.beta", 0.2) if arm.name == "other" else raw

    cells = [Cell("scarce", (("filter.tau", 0.6),), arm, seed, params(seed, arm)) for seed in (0, 1)
             for arm in (*ARMS, Arm("other", "augment", {"filter.beta": 0.2}))]
    runs, per_cell = plan(cells, score=False)
    stages = [r.stage for r in runs.values()]
    assert stages.count("ingest") == stages.count("train_baseline") == stages.count("analyze_errors") == 2
    assert stages.count("equal_steps") == 2 and stages.count("train_generator") == 2  # "other" changes only filter onwards
    assert stages.count("filter") == stages.count("merge") == stages.count("evaluate") == 4
    by_label = {r.label for r in runs.values()}
    assert "train_baseline · scarce · filter.tau=0.6 · seed 1" in by_label and "equal_steps · scarce · filter.tau=0.6 · seed 0" in by_label
    assert "evaluate · m · scarce · filter.tau=0.6 · seed 0" in by_label
    first = per_cell[cells[0].id]
    assert runs[first["evaluate"]].upstream == tuple(first[s] for s in ("merge", "ingest", "train_baseline", "resnet_baseline"))
    order = list(runs)
    for key, run in runs.items():  # inputs come first
        assert all(order.index(u) < order.index(key) for u in run.upstream)


def test_a_stage_whose_inputs_no_earlier_stage_makes_is_refused(monkeypatch) -> None:
    import grid.plan

    monkeypatch.setattr(grid.plan, "stages_of", lambda cell, score: ("train_baseline",))
    with pytest.raises(RuntimeError, match="stage train_baseline reads .*which no earlier stage of the cell writes"):
        plan([Cell("r", (), ARMS[1], 0, BASE)], score=False)


def test_the_code_digest_is_of_every_file_named_and_in_order() -> None:
    import hashlib

    from grid.plan import _code_digest

    h = hashlib.sha256()
    for p in ("grid/spec.py", "grid/stats.py"):
        h.update(p.encode() + b"\0" + (PROJECT / p).read_bytes())
    assert _code_digest(("grid/spec.py", "grid/stats.py")) == h.hexdigest() != _code_digest(("grid/stats.py", "grid/spec.py"))


class _Recording(dict):
    """A params mapping that notes which top-level keys are read."""

    def __init__(self, raw: dict) -> None:
        super().__init__(raw)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


@pytest.mark.parametrize("stage", sorted(ALL_STAGES))
def test_every_section_a_stage_parses_is_in_its_run_key(stage: str) -> None:
    """What ``parse`` reads (down to sections) is what the stage table keys the run by, and nothing more."""
    raw = _Recording(_base("scoring"))
    ALL_STAGES[stage].parse(raw)
    assert raw.read == {k.split(".")[0] for k in ALL_STAGES[stage].params}


def test_editing_a_stages_code_reruns_it_and_what_reads_its_outputs(monkeypatch) -> None:
    import grid.plan

    before = _base_keys("hqcnn")
    real = grid.plan._code_digest
    monkeypatch.setattr(grid.plan, "_code_digest", lambda paths: real(paths) + ("edited" if "tasks/filter.py" in paths else ""))
    after = stage_keys(_base("hqcnn"))
    moved = {s for s in before if before[s][0] != after[s][0]}
    assert moved == {"filter", "score_generated", "merge", "evaluate"}  # filter's code; the others read its outputs


def test_every_run_is_labelled_by_stage_and_only_per_arm_runs_by_arm() -> None:
    """The runs every arm of a seed shares (or the controls' own) carry no arm name; the others the first arm using them."""
    per_seed = {"ingest", "train_baseline", "analyze_errors", "equal_steps", "resnet_baseline"}
    cells = [Cell(regime, (), arm, 0, raw) for regime, raw in (("h", BASE), ("n", _base("resnet"))) for arm in ARMS]
    runs, per_cell = plan(cells, score=True)
    first = {}
    for cell in cells:
        for key in per_cell[cell.id].values():
            first.setdefault(key, cell)
    for key, run in runs.items():
        arm = [] if run.stage in per_seed else [first[key].arm.name]
        assert run.label == " · ".join([run.stage, *arm, first[key].regime, "seed 0"])
    assert {r.stage for r in runs.values()} == set(ALL_STAGES)
