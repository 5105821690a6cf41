"""Grid files → cells (which params each cell gets, in which order, named how) and the equal-steps control's
step counts, without running a stage."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

import grid.equal_steps as equal_steps
from grid.equal_steps import EqualStepsPaths, resnet_epochs, steps
from grid.spec import CONTROLS, PAIRED_ON, REFERENCES, Arm, Cell, GridError, apply, flatten, load_grid, set_key
from qaug.io import save_arrays
from qaug.params import load_params
from tasks.classifier import BaselineParams
from tasks.evaluate import EvaluateParams
from tasks.layout import rooted
from tasks.merge import MergeParams
from tasks.methods import AugmentParams
from tests.pipeline_helpers import PROJECT


def grid_file(tmp_path, doc: dict, name: str = "g") -> object:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"base": str(PROJECT / "params.yaml"), "methods": ["gan1"], "controls": ["none"], **doc}, sort_keys=False))
    return path


def test_cells_are_every_regime_point_arm_and_seed_in_file_order(tmp_path) -> None:
    spec = load_grid(grid_file(tmp_path, {"regimes": {"r1": {}, "r2": {"ingest.train_per_class": 50}}, "seeds": [3, 1],
                                          "sweep": {"filter.tau": [0.6, 0.7], "augment.n_gen": [30, 60]}}))
    cells = spec.cells()
    assert len(cells) == 2 * 4 * 2 * 2
    assert [(c.regime, dict(c.point), c.arm.name, c.seed) for c in cells[:5]] == [
        ("r1", {"filter.tau": 0.6, "augment.n_gen": 30}, "none", 3), ("r1", {"filter.tau": 0.6, "augment.n_gen": 30}, "none", 1),
        ("r1", {"filter.tau": 0.6, "augment.n_gen": 30}, "gan1", 3), ("r1", {"filter.tau": 0.6, "augment.n_gen": 30}, "gan1", 1),
        ("r1", {"filter.tau": 0.6, "augment.n_gen": 60}, "none", 3)]
    assert cells[-1].regime == "r2" and cells[-1].point == (("filter.tau", 0.7), ("augment.n_gen", 60))
    assert {c.params["ingest"]["train_per_class"] for c in cells if c.regime == "r2"} == {50}
    assert all(c.params["seed"] == c.seed for c in cells)
    assert all(c.params["filter"]["tau"] == dict(c.point)["filter.tau"] for c in cells)
    assert spec.sweep == {"filter.tau": (0.6, 0.7), "augment.n_gen": (30, 60)} and spec.seeds == (3, 1)
    assert list(spec.regimes) == ["r1", "r2"] and spec.regimes["r2"] == {"ingest.train_per_class": 50}


def test_later_layers_win_base_params_regime_sweep_arm(tmp_path) -> None:
    spec = load_grid(grid_file(tmp_path, {
        "params": {"augment.n_gen": 11, "filter.tau": 0.5, "filter.beta": 0.2, "augment.oversample": 4},
        "regimes": {"r": {"augment.n_gen": 22, "filter.tau": 0.55}},
        "sweep": {"augment.n_gen": [33]},
        "methods": {"m": {"augment.method": "gan1", "augment.n_gen": 44}, "plain": {"augment.method": "gan2"}}}))
    by_arm = {c.arm.name: c.params for c in spec.cells()}
    assert by_arm["m"]["augment"]["n_gen"] == 44 and by_arm["plain"]["augment"]["n_gen"] == 33
    assert by_arm["plain"]["filter"]["tau"] == 0.55 and by_arm["plain"]["filter"]["beta"] == 0.2
    assert by_arm["plain"]["augment"]["oversample"] == 4 and by_arm["plain"]["filter"]["alpha"] == load_params(PROJECT / "params.yaml")["filter"]["alpha"]
    assert spec.base["augment"]["n_gen"] == 11  # the grid-wide params are part of the base


def test_defaults_every_control_one_regime_seed_zero_scoring_on(tmp_path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({"base": str(PROJECT / "params.yaml"), "methods": ["gan1"], "description": "  two words \n"}))
    spec = load_grid(path)
    assert [a.name for a in spec.arms] == [*CONTROLS, "gan1"] and REFERENCES == ("none", "duplicates")
    assert [(a.kind, a.control) for a in spec.arms] == [("none", True), ("augment", True), ("equal-steps", True), ("augment", True),
                                                        ("augment", True), ("augment", False)]
    assert spec.arms[1].overrides == {"augment.method": "duplicates"} and spec.arms[-1].overrides == {"augment.method": "gan1"}
    assert spec.regimes == {"default": {}} and spec.seeds == (0,) and spec.sweep == {} and spec.score_generated is True
    assert (spec.name, spec.description, spec.path) == ("d", "two words", path)
    cells = spec.cells()
    assert next(c for c in cells if c.arm.name == "duplicates").params["augment"]["method"] == "duplicates"
    assert next(c for c in cells if c.arm.name == "prototype").params["augment"]["method"] == "prototype"


def test_the_base_is_found_under_the_root(tmp_path) -> None:
    (tmp_path / "params.yaml").write_text((PROJECT / "params.yaml").read_text().replace("n_gen: 150", "n_gen: 99"))
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"methods": ["gan1"], "controls": ["none"], "score_generated": False}))
    spec = load_grid(path, root=tmp_path)
    assert spec.base["augment"]["n_gen"] == 99 and spec.score_generated is False


@pytest.mark.parametrize("key", ["seed", "device", "ingest.train_per_class", "baseline.lr", "analysis.split", "quantum.shots",
                                 "evaluate.epochs"])
def test_a_method_may_not_set_what_it_is_paired_on(tmp_path, key) -> None:
    assert key.split(".")[0] in PAIRED_ON
    with pytest.raises(GridError, match=f"methods.m sets {key}"):
        load_grid(grid_file(tmp_path, {"methods": {"m": {"augment.method": "gan1", key: 1}}}))


def test_a_method_may_set_its_own_generator_filter_and_merge(tmp_path) -> None:
    spec = load_grid(grid_file(tmp_path, {"methods": {"m": {"augment.method": "gan1", "filter.tau": 0.6, "merge.mixing_ratio": 0.2,
                                                            "qgan.steps": 5}}}))
    assert spec.arms[-1].overrides == {"augment.method": "gan1", "filter.tau": 0.6, "merge.mixing_ratio": 0.2, "qgan.steps": 5}


@pytest.mark.parametrize(("seeds", "expected"), [(" 2 .. 4 ", (2, 3, 4)), ("7..7", (7,)), (1, (0,)), (3, (0, 1, 2)), ([5, 0], (5, 0))])
def test_seed_forms(tmp_path, seeds, expected) -> None:
    assert load_grid(grid_file(tmp_path, {"seeds": seeds})).seeds == expected


@pytest.mark.parametrize("seeds", [0, -1, True, [True], [-1], [0, -1], [1.5], [], "a..b", "1..", None])
def test_bad_seeds_are_refused(tmp_path, seeds) -> None:
    with pytest.raises(GridError, match="seeds must be"):
        load_grid(grid_file(tmp_path, {"seeds": seeds}))


@pytest.mark.parametrize(("doc", "message"), [
    ({"sweep": {"seed": [1, 2]}}, "sweep.seed: seeds are the grid's 'seeds' axis"),
    ({"sweep": {"filter.tau": []}}, "sweep.filter.tau must be a non-empty list"),
    ({"regimes": {"bad name": {}}}, "'bad name' is not a usable name"),
    ({"regimes": {"-x": {}}}, "'-x' is not a usable name"),
    ({"methods": {"q/1": {"augment.method": "gan1"}}}, "'q/1' is not a usable name"),
    ({"methods": [3]}, "3 is not a usable name"),
    ({"methods": "gan1"}, "methods must be a non-empty list"),
    ({"methods": {"m": 5}}, "methods.m must be a mapping"),
    ({"regimes": [1]}, "regimes must be a mapping"),
    ({"controls": "none"}, "controls must be a list"),
    ({"controls": ["none", 1]}, "controls must be a list"),
    ({"params": [1]}, "params must be a mapping"),
    ({"score_generated": 1}, "score_generated must be true or false"),
    ({"regimes": {"r": {"seed": {"x": 1}}}}, "regimes.r sets seed"),
    ({"params": {"filter.tau": 3}}, "base params: filter.tau"),
])
def test_malformed_axes_are_named(tmp_path, doc, message) -> None:
    with pytest.raises(GridError) as err:
        load_grid(grid_file(tmp_path, doc))
    assert message in str(err.value)


def test_names_may_use_dots_plus_dashes_and_underscores(tmp_path) -> None:
    spec = load_grid(grid_file(tmp_path, {"regimes": {"a.b+c-d_e": {}}, "methods": {"Q2.v-1_x+": {"augment.method": "gan1"}}}))
    assert list(spec.regimes) == ["a.b+c-d_e"] and spec.arms[-1].name == "Q2.v-1_x+"


def test_a_regime_given_no_overrides_is_the_base(tmp_path) -> None:
    spec = load_grid(grid_file(tmp_path, {"regimes": {"plain": None, "nested": {"ingest": {"train_per_class": 40}}}}))
    assert spec.regimes == {"plain": {}, "nested": {"ingest.train_per_class": 40}}


def test_errors_are_listed_once_each_and_at_most_ten_cells(tmp_path) -> None:
    with pytest.raises(GridError) as err:  # the same bad value reached from two axes: one line naming both axes
        load_grid(grid_file(tmp_path, {"regimes": {"a": {"filter.tau": 2}, "b": {"filter.tau": 2}, "c": {"filter.tau": 3}}}))
    text = str(err.value)
    assert text.count("regimes.a, regimes.b: filter.tau") == 1 and text.count("regimes.c: filter.tau") == 1 and text.count("\n  ") == 2
    with pytest.raises(GridError) as one:
        load_grid(grid_file(tmp_path, {"regimes": {"a": {"filter.tau": 2}}}))
    assert "\n" not in str(one.value)


def test_combinations_are_checked_once_every_axis_is_fine(tmp_path) -> None:
    # each value is valid alone; together the sweep's HQCNN judge gets the regime's ResNet weights file
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    with pytest.raises(GridError) as err:
        load_grid(grid_file(tmp_path, {"regimes": {"w": {"evaluate.weights": str(weights), "evaluate.classifier": "resnet18"}},
                                       "sweep": {"evaluate.classifier": ["hqcnn"]}, "seeds": 12}))
    text = str(err.value)
    assert "cell " in text and "evaluate.weights" in text and "\n" not in text  # one problem, one line
    assert text.count("cell ") == 3 and " and 7 more: " in text  # ten cells checked, then it stops; three named


def test_set_key_makes_sections_and_refuses_to_go_through_a_value() -> None:
    raw = {"a": 1, "s": None}
    set_key(raw, "x.y.z", [1])
    set_key(raw, "s.t", 2)
    assert raw == {"a": 1, "s": {"t": 2}, "x": {"y": {"z": [1]}}}
    with pytest.raises(GridError, match="a.b: a is not a section"):
        set_key(raw, "a.b", 3)


def test_flatten_one_level_and_apply_leaves_its_inputs_alone() -> None:
    assert flatten({"augment": {"method": "gan1", "n": {"x": 1}}, "filter.tau": 0.5, "seed": 3}) == {
        "augment.method": "gan1", "augment.n": {"x": 1}, "filter.tau": 0.5, "seed": 3}
    assert flatten(None) == {} and flatten({"ingest": {}}) == {}
    base, layer = {"ingest": {"classes": [0, 1]}}, {"ingest.classes": [2]}
    out = apply(base, layer, {"filter.tau": 0.1})
    out["ingest"]["classes"].append(9)
    assert out == {"ingest": {"classes": [2, 9]}, "filter": {"tau": 0.1}}
    assert base == {"ingest": {"classes": [0, 1]}} and layer == {"ingest.classes": [2]}


def test_cell_names() -> None:
    arm = Arm("qgan-τ", "augment")
    cell = Cell("scarce 10", (("filter.tau", 0.6),), arm, 3, {})
    assert cell.point_label == "filter.tau=0.6" and cell.label == "qgan-τ · scarce 10 · filter.tau=0.6 · seed 3"
    assert Cell("r", (), arm, 0, {}).label == "qgan-τ · r · seed 0"
    assert cell.id.startswith("scarce-10-qgan-s3-") and len(cell.id.rsplit("-", 1)[1]) == 8
    assert cell.id != Cell("scarce 10", (("filter.tau", 0.7),), arm, 3, {}).id  # the point is in the id, not only the slug
    assert cell.id == Cell("scarce 10", (("filter.tau", 0.6),), arm, 3, {"other": 1}).id


# --- the equal-steps control ------------------------------------------------------------------------------------


def test_steps_of_the_hqcnn_by_hand() -> None:
    """docs/pipeline.md: 608 steps on the 300 real images, 870 with the 150 generated ones (30 epochs, at least 600 steps, batch 16)."""
    params = BaselineParams(epochs=30, min_steps=600, batch_size=16)
    assert steps(params, 300) == 608  # 19 a epoch; 600 steps need 32 epochs
    assert steps(params, 450) == 870  # 29 a epoch; 30 epochs already give 870
    assert steps(BaselineParams(epochs=1, min_steps=0, batch_size=16), 17) == 2  # a last, partial batch is a step


def test_resnet_epochs_by_hand() -> None:
    params = EvaluateParams(classifier="resnet18", epochs=20, batch_size=32)
    assert resnet_epochs(params, 300, 150) == (300, 30)  # 450 → 15 steps an epoch; 300 → 10
    assert resnet_epochs(params, 300, 90) == (260, 26)  # 390 → 13
    assert resnet_epochs(params, 300, 0) == (200, 20)
    assert resnet_epochs(params, 100, 1) == (80, 20)  # 101 → 4 (a last batch of 5); 100 → 4
    assert resnet_epochs(params, 70, 30) == (80, 27)  # 100 → 4; 70 → 3: 26.7 epochs, rounded up to reach the target


def _equal_steps_inputs(root, n: int = 30):
    paths = rooted(EqualStepsPaths(), root)
    for p, count in ((paths.train, n), (paths.test, 9)):
        save_arrays(p, images=np.zeros((count, 1, 4, 4), np.float32), labels=np.arange(count) % 3, classes=np.array([0, 1, 2]))
    return paths


def test_the_hqcnn_control_trains_for_the_augmented_models_steps(tmp_path, monkeypatch) -> None:
    seen = {}

    def fake_fit(params, seed, train, device):
        seen.update(params=params, seed=seed, images=len(train))
        return SimpleNamespace(model=None)

    monkeypatch.setattr(equal_steps, "fit", fake_fit)
    monkeypatch.setattr(equal_steps, "score", lambda model, test: {"accuracy": 0.5})
    monkeypatch.setattr(equal_steps, "training_summary", lambda result, images, params, seed: {"steps": params.min_steps, "images": images})
    paths = _equal_steps_inputs(tmp_path)
    base = BaselineParams(epochs=2, min_steps=10, batch_size=4)
    out = equal_steps.run(base, EvaluateParams(), AugmentParams(n_gen=12), MergeParams(), 7, "cpu", paths)
    assert out == {"accuracy": 0.5, "steps": steps(base, 42), "target_steps": steps(base, 42)}  # 30 real + 12 generated
    assert seen["params"].min_steps == steps(base, 42) and seen["params"].epochs == 2 and seen["seed"] == 7 and seen["images"] == 30
    metrics = json.loads(paths.metrics.read_text())
    assert metrics["training"]["target_steps"] == steps(base, 42)
    out = equal_steps.run(base, EvaluateParams(), AugmentParams(n_gen=12), MergeParams(mixing_ratio=0.5), 7, "cpu", paths)
    assert out["target_steps"] == steps(base, 60)  # α = 0.5: as many generated as real, whatever n_gen says
    raw = {"seed": 7, "device": "cpu", "baseline": {"epochs": 2, "min_steps": 10, "batch_size": 4}, "augment": {"n_gen": 12}}
    assert equal_steps.main(raw, tmp_path)["target_steps"] == steps(base, 42)  # the stage's entry point: params.yaml → run


def test_the_resnet_control_trains_for_the_augmented_resnets_steps(tmp_path, monkeypatch) -> None:
    seen = {}

    def fake_fit_resnet(params, seed, train, test, device, backbone):
        seen.update(params=params, seed=seed)
        return SimpleNamespace(steps=0), {"accuracy": 0.25}

    monkeypatch.setattr(equal_steps, "fit_resnet", fake_fit_resnet)
    monkeypatch.setattr(equal_steps, "read_backbone", lambda params: None)
    monkeypatch.setattr(equal_steps, "resnet_summary", lambda result, images, params, seed: {"steps": seen["params"].epochs, "images": images})
    paths = _equal_steps_inputs(tmp_path, n=300)
    downstream = EvaluateParams(classifier="resnet18", epochs=20, batch_size=32)
    out = equal_steps.run(BaselineParams(), downstream, AugmentParams(n_gen=90), MergeParams(), 1, "cpu", paths)
    assert out == {"accuracy": 0.25, "steps": 26, "target_steps": 260} and seen["params"].epochs == 26 and seen["seed"] == 1


def test_equal_steps_reads_its_sections() -> None:
    raw = load_params(PROJECT / "params.yaml")
    raw["baseline"]["epochs"], raw["evaluate"]["epochs"], raw["augment"]["n_gen"], raw["merge"]["mixing_ratio"], raw["seed"] = 3, 4, 5, 0.25, 9
    params, downstream, augment, merge, seed, device = equal_steps.parse(raw)
    assert (params.epochs, downstream.epochs, augment.n_gen, merge.mixing_ratio, seed, str(device)) == (3, 4, 5, 0.25, 9, "cpu")
