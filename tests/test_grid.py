"""qaug grid: grid files checked before any work, paired cells computed once, resume after a kill,
the same numbers on Dask (a loopback scheduler and two workers) as on local processes, the offline report."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from grid import command
from grid.format import pts
from grid.outputs import load_plan, status
from grid.plan import plan
from grid.spec import GridError, load_grid
from tests.pipeline_helpers import PROJECT, tiny_params

SMALL = {  # cheap: no generator training (prototype), two seeds, two controls
    "description": "test grid",
    "methods": {"proto": {"augment.method": "prototype"}},
    "controls": ["none", "duplicates"],
    "regimes": {"tiny": {}},
    "seeds": [0, 1],
    "score_generated": False,
}


def write_grid(folder: Path, doc: dict, name: str = "small") -> Path:
    raw = tiny_params()
    raw["filter"]["min_accepted_fraction"] = 0.0
    (folder / "params.yaml").write_text(yaml.safe_dump(raw))
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"base": str(folder / "params.yaml"), **doc}))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- grid files -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"colour": 1}, "unknown key(s) colour"),
    ({"methods": {"q": {"augment.metod": "qgan"}}}, "methods.q: augment.metod is not a parameter of augment"),
    ({"methods": {"q": {"augment.method": "qgann"}}}, "methods.q: augment.method must be one of"),
    ({"methods": ["qgan", "duplicates"]}, "methods.duplicates has a control's name"),
    ({"methods": {}}, "methods must be a non-empty list"),
    ({"controls": ["none", "dupes"]}, "controls ['dupes'] are not controls"),
    ({"controls": ["duplicates"]}, "controls must include 'none'"),
    ({"regimes": {"scarce": {"ingest.train_per_class": 0}}}, "regimes.scarce: ingest.train_per_class must be at least 1"),
    ({"regimes": {"x": {"ingest.train_per_class": {0: 5, 1: 5}}}}, "regimes.x: ingest.train_per_class must give a count for each"),
    ({"regimes": {"x": {"nosuch.key": 1}}}, "regimes.x: unknown section(s) nosuch"),
    ({"regimes": {"x": {"seed": 3}}}, "regimes.x sets seed"),
    ({"seeds": [0, 0]}, "seeds has duplicates"),
    ({"seeds": "a lot"}, "seeds must be a count N of at least 1"),
    ({"seeds": 0}, "seeds must be a count N of at least 1 (seeds 0..N-1), a non-empty list"),
    ({"seeds": "5..2"}, "range 'A..B' with A ≤ B, got '5..2'"),
    ({"sweep": {"filter.tau": 0.5}}, "sweep.filter.tau must be a non-empty list"),
    ({"sweep": {"filter.tau": [0.5, 1.5]}}, "sweep.filter.tau=1.5: filter.tau must be in [0, 1]"),
    ({"score_generated": "yes"}, "score_generated must be true or false"),
    ({"regimes": {"big": {"ingest.train_per_class": 8}}, "methods": {"m": {"mosaiq.qubits": 0}}}, "methods.m: mosaiq.qubits"),
    ({"methods": {"m": {"augment.method": "qgan", "baseline.lr": 0.1}}}, "methods.m sets baseline.lr: a method shares the seed"),
    ({"regimes": {"noisy": {"quantum.backend": "aer"}}}, "regimes.noisy: quantum.backend is 'aer'; grids compare methods on the exact"),
    ({"methods": {"m": {"augment.method": "qgan", "evaluate.classifier": "resnet18"}}}, "methods.m sets evaluate.classifier: a method shares"),
    ({"sweep": {"merge.mixing_ratio": [0.2, 1.0]}}, "sweep.merge.mixing_ratio=1.0: merge.mixing_ratio must be in [0, 1)"),
])
def test_a_bad_grid_file_is_refused_naming_the_key(tmp_path, change, message) -> None:
    path = write_grid(tmp_path, {**SMALL, **change})
    with pytest.raises(GridError) as err:
        load_grid(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_every_bad_axis_value_is_named_at_once(tmp_path) -> None:
    path = write_grid(tmp_path, {**SMALL, "regimes": {"r": {"ingest.image_size": 4}},
                                 "methods": {"a": {"augment.n_gen": 0}, "b": {"filter.tau": 3}}})
    with pytest.raises(GridError) as err:
        load_grid(path)
    for message in ("regimes.r: ingest.image_size", "methods.a: augment.n_gen", "methods.b: filter.tau"):
        assert message in str(err.value)


def test_a_missing_grid_file_or_base_is_named(tmp_path) -> None:
    with pytest.raises(GridError, match="nope.yaml not found"):
        load_grid(tmp_path / "nope.yaml")
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "base": str(tmp_path / "missing.yaml")}))
    with pytest.raises(GridError, match="missing.yaml not found"):
        load_grid(path)


def test_seeds_as_a_count_or_a_range_and_overrides_nested_or_dotted(tmp_path) -> None:
    spec = load_grid(write_grid(tmp_path, {**SMALL, "seeds": "3..5", "methods": {"a": {"augment": {"method": "gan1", "n_gen": 9}}}}))
    assert spec.seeds == (3, 4, 5)
    cell = next(c for c in spec.cells() if c.arm.name == "a")
    assert cell.params["augment"]["method"] == "gan1" and cell.params["augment"]["n_gen"] == 9
    assert cell.params["augment"]["strategy"] == "customised"  # nested overrides merge, they do not replace the section
    assert load_grid(write_grid(tmp_path, {**SMALL, "seeds": 4})).seeds == (0, 1, 2, 3)


def test_shipped_grids_validate_and_pair_their_cells() -> None:
    for name in ("quick", "he2025", "regimes", "hybridq"):
        spec = load_grid(PROJECT / "grids" / f"{name}.yaml", root=PROJECT)
        assert {"none", "duplicates", "equal-steps", "conventional", "prototype"} <= {a.name for a in spec.arms}
        if name in ("he2025", "regimes"):
            assert len(spec.seeds) >= 10
    hybridq = load_grid(PROJECT / "grids/hybridq.yaml", root=PROJECT)
    runs, _ = plan(hybridq.cells(), hybridq.score_generated)
    assert hybridq.base["evaluate"]["classifier"] == "resnet18"
    assert sum(r.stage == "resnet_baseline" for r in runs.values()) == len(hybridq.seeds)  # shared by both mixing ratios
    spec = load_grid(PROJECT / "grids/regimes.yaml", root=PROJECT)
    imbalanced = next(c for c in spec.cells() if c.regime == "imbalanced")
    assert imbalanced.params["ingest"]["train_per_class"] == {0: 100, 1: 100, 2: 10}


def test_methods_of_a_seed_share_subsample_baseline_and_error_analysis() -> None:
    spec = load_grid(PROJECT / "grids/he2025.yaml", root=PROJECT)
    cells = spec.cells()
    runs, per_cell = plan(cells, spec.score_generated)
    for block in {(c.regime, c.point, c.seed) for c in cells}:
        mine = [per_cell[c.id] for c in cells if (c.regime, c.point, c.seed) == block]
        for stage in ("ingest", "train_baseline", "analyze_errors"):  # equal-steps needs no baseline, none no analysis
            assert len({keys[stage] for keys in mine if stage in keys}) == 1
    baselines = [r for r in runs.values() if r.stage == "train_baseline"]
    assert len(baselines) == len(spec.regimes) * len(spec.seeds)  # trained once per (regime, seed), not per method
    assert len([r for r in runs.values() if r.stage == "ingest"]) == len(spec.seeds)  # both regimes use the same subsample
    # a threshold variant reuses the generator and its candidates; only filtering onwards is its own
    by_arm = {c.arm.name: per_cell[c.id] for c in cells if c.seed == 0 and c.regime == "trained"}
    assert by_arm["qgan"]["train_generator"] == by_arm["qgan-tau0.6"]["train_generator"] == by_arm["qgan-general"]["train_generator"]
    assert by_arm["qgan"]["generate"] == by_arm["qgan-tau0.6"]["generate"] != by_arm["qgan-general"]["generate"]
    assert by_arm["qgan"]["filter"] != by_arm["qgan-tau0.6"]["filter"]


def test_inception_settings_retrain_generators_only_when_they_score_over_training(tmp_path) -> None:
    weights = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    weights.write_bytes(b"only its path is keyed here")
    doc = {**SMALL, "methods": {"gan": {"augment.method": "gan1"}}, "seeds": [0],
           "sweep": {"metrics.inception_weights": [None, str(weights)]}}
    for every, shared in ((0, True), (4, False)):
        spec = load_grid(write_grid(tmp_path, {**doc, "params": {"qgan.score_every": every}}))
        cells = [c for c in spec.cells() if c.arm.name == "gan"]
        _, per_cell = plan(cells, score=True)
        first, second = (per_cell[c.id] for c in cells)
        assert (first["train_generator"] == second["train_generator"]) is shared
        assert first["score_generated"] != second["score_generated"]  # which reads them either way


# --- running ----------------------------------------------------------------------------------------------------


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def quick(prefect_api, tmp_path_factory) -> tuple[Path, dict]:
    """grids/quick.yaml end to end on two local worker processes (what CI runs)."""
    out = tmp_path_factory.mktemp("quick")
    return out, run_quick(out, workers=2)


def run_quick(out: Path, workers: int) -> dict:
    """From the project folder, as a user runs it (the grid's base is params.yaml there)."""
    cwd = os.getcwd()
    os.chdir(PROJECT)
    try:
        return command.run(Path("grids/quick.yaml"), out, "process", workers, None, progress=False)
    finally:
        os.chdir(cwd)


def test_quick_grid_runs_every_cell_and_trains_each_baseline_once(quick) -> None:
    out, result = quick
    summary = json.loads((out / "summary.json").read_text())
    # the first wave: (3 methods + 5 controls) × 2 seeds; its one primary (qgan vs none) stays open at 2 seeds, so the
    # second wave runs seed 2 for those two arms only (of the 24 cells the plan allows)
    assert not result["failed"] and result["cells_finished"] == 18 and result["cells"] == 24
    assert summary["design"] == {"plan": [2, 3], "looks_judged": 2, "finished": True, "margins": summary["design"]["margins"], "primaries": 1}
    assert [d["verdict"] for d in summary["decisions"]] in (["better"], ["worse"], ["equivalent"], ["inconclusive"])
    assert summary["decisions"][0]["n"] == 3 and summary["unfinished_cells"] == []
    assert summary["executed"]["train_baseline"] == 3  # one per seed, shared by every arm of the seed
    assert summary["executed"]["train_generator"] == 2 * 5 + 1  # qgan and qgan-general share theirs; 3 resamplers; qgan's seed 2
    cells = [json.loads(p.read_text()) for p in sorted((out / "cells").glob("*.json"))]
    assert len(cells) == 18 and {(c["arm"], c["seed"]) for c in cells if c["seed"] == 2} == {("qgan", 2), ("none", 2)}
    for seed in (0, 1):
        mine = [c for c in cells if c["seed"] == seed]
        assert len({c["runs"]["ingest"] for c in mine}) == 1 and len({c["runs"]["train_baseline"] for c in mine if "train_baseline" in c["runs"]}) == 1
    train_files = {digest(p) for p in (out / "store/ingest").glob("*/data/prepared/train.npz")}
    assert len(train_files) == 3  # one subsample per seed, every arm of the seed reads that file


def test_tidy_table_and_comparisons_hold_every_cell_and_pair(quick) -> None:
    out, _ = quick
    rows = read_csv(out / "results.csv")
    cells = {(c["arm"], c["seed"]): c for c in (json.loads(p.read_text()) for p in (out / "cells").glob("*.json"))}
    acc = {(r["arm"], int(r["seed"])): float(r["value"]) for r in rows if r["metric"] == "accuracy"}
    assert len(acc) == 18
    assert acc == {k: v["metrics"]["accuracy"] for k, v in cells.items()}
    assert {r["metric"] for r in rows} >= {"accuracy", "macro_f1", "recall/0", "recall/1", "recall/2", "steps", "generated", "label_fidelity"}
    comparisons = read_csv(out / "comparisons.csv")
    pairs = {(r["arm"], r["reference"]) for r in comparisons if r["metric"] == "accuracy"}
    arms = {"qgan", "qgan-general", "gan1", "duplicates", "equal-steps", "conventional", "prototype"}
    assert pairs == {(a, "none") for a in arms} | {(a, "duplicates") for a in arms - {"duplicates"}}
    assert not any(c["collapsed"] or c["baseline_collapsed"] for c in cells.values())  # every pair counts
    row = next(r for r in comparisons if (r["metric"], r["arm"], r["reference"]) == ("accuracy", "qgan", "none"))
    expected = sum(cells[("qgan", s)]["metrics"]["accuracy"] - cells[("none", s)]["metrics"]["accuracy"] for s in (0, 1, 2)) / 3
    assert int(row["n"]) == 3 and float(row["mean"]) == pytest.approx(expected, abs=1e-6)
    assert row["role"] == "primary" and row["verdict"] in ("better", "worse", "equivalent", "inconclusive") and float(row["margin"]) == 0.02
    others = [r for r in comparisons if r is not row]
    assert {r["role"] for r in others} == {"exploratory"} and {r["verdict"] for r in others} == {""}  # never a verdict word
    assert int(next(r for r in others if (r["metric"], r["arm"], r["reference"]) == ("accuracy", "gan1", "none"))["n"]) == 2


def test_equal_steps_control_trains_as_long_as_an_augmented_model(quick) -> None:
    from grid.equal_steps import steps
    from qaug.params import section
    from tasks.classifier import BaselineParams

    out, _ = quick
    spec = load_grid(PROJECT / "grids/quick.yaml", root=PROJECT)
    params = section(BaselineParams, spec.base, "baseline")
    target = steps(params, 48 + spec.base["augment"]["n_gen"])  # 16 real images a class × 3, plus n_gen generated
    cells = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    for seed in (0, 1):
        equal = next(c for c in cells if c["arm"] == "equal-steps" and c["seed"] == seed)
        none = next(c for c in cells if c["arm"] == "none" and c["seed"] == seed)
        assert equal["train_images"] == none["train_images"] == 48  # real images only
        assert target <= equal["steps"] < target + 3  # within one epoch (3 batches) above
        assert none["steps"] == steps(params, 48) < equal["steps"]


def test_report_is_one_offline_file_with_every_figure_embedded(quick) -> None:
    out, _ = quick
    page = (out / "report.html").read_text()

    class Refs(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.images, self.external = [], []

        def handle_starttag(self, tag, attrs) -> None:
            attrs = dict(attrs)
            if tag == "img":
                self.images.append(attrs.get("src", ""))
            for key in ("src", "href"):
                if attrs.get(key) and not attrs[key].startswith(("data:", "#")):
                    self.external.append((tag, attrs[key]))
            if tag in ("script", "link", "iframe"):
                self.external.append((tag, attrs))

    refs = Refs()
    refs.feed(page)
    assert not refs.external
    assert len(refs.images) >= 1 + 5  # the regime's figure and a sample grid per augmenting arm
    assert all(src.startswith("data:image/png;base64,") and len(src) > 1000 for src in refs.images)
    assert "over the baseline" in page and "<h2>Decisions</h2>" in page and "qgan vs none" in page and "equal-steps" in page


def test_progress_and_verdicts_reach_prefect(quick) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["grid-quick-progress", "grid-quick-verdicts"])))
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["quick"])))
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["quick"])))
    by_key = {a.key: a for a in artifacts}
    assert by_key["grid-quick-progress"].data == 100.0
    assert "over the baseline" in by_key["grid-quick-verdicts"].data and "| arm | seeds (left out) |" in by_key["grid-quick-verdicts"].data
    assert runs and all(r.state.is_completed() for r in runs)
    names = {t.name for t in tasks}
    assert "train_baseline · tiny · seed 0" in names and "evaluate · qgan · tiny · seed 1" in names


def test_a_cell_reproduces_the_pipeline_run_with_the_same_params(quick, tmp_path) -> None:
    """The grid runs the very stage code `qaug run` runs: the same params give the same bytes (one torch thread, as in the grid)."""
    import torch

    from tasks.stages import get

    out, _ = quick
    spec, cells, runs, per_cell = load_plan(PROJECT / "grids/quick.yaml")
    cell = next(c for c in cells if c.arm.name == "qgan" and c.seed == 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for stage in ("ingest", "train_baseline", "analyze_errors", "train_generator", "generate", "filter", "merge", "resnet_baseline",
                      "evaluate"):
            get(stage).run(cell.params, tmp_path)
    finally:
        torch.set_num_threads(threads)
    evaluated = out / "store/evaluate" / per_cell[cell.id]["evaluate"]
    for rel in ("metrics/comparison.json", "models/augmented.pt"):
        assert digest(tmp_path / rel) == digest(evaluated / rel), rel


def test_a_finished_grid_reruns_nothing(quick) -> None:
    out, _ = quick
    before = (out / "results.csv").read_bytes()
    result = run_quick(out, workers=1)
    assert result["executed"] == {} and sum(result["reused"].values()) == 80 + 10  # the second wave: seed 2's ingest, baseline, resnet_baseline and qgan's 7 runs
    assert (out / "results.csv").read_bytes() == before
    info = status(PROJECT / "grids/quick.yaml", out)
    assert info["cells_done"] == 18 and info["looks_judged"] == 2 and info["next_wave"] is None
    final, shown = json.loads((out / "summary.json").read_text())["decisions"][0], info["decisions"][0]
    assert (shown["mean"], shown["low"], shown["high"], shown["seeds"]) == (final["mean"], final["low"], final["high"], final["n"])
    assert shown["text"].startswith(final["verdict"]) and f"margin ±{pts(final['margin'], False)}" in command.status_text(info)


# MosaiQ needs more images a class than PCA components: its train_generator fails once validation has passed.
FAILING = {"mosaiq": {"augment.method": "qgan", "qgan.model": "mosaiq"}}


@pytest.fixture(scope="module")
def small(prefect_api, tmp_path_factory) -> tuple[Path, Path, dict]:
    """The small grid plus a method that fails at run time, uninterrupted, on local processes: the reference for resume and Dask."""
    folder = tmp_path_factory.mktemp("small")
    path = write_grid(folder, {**SMALL, "methods": {**SMALL["methods"], **FAILING}})
    result = command.run(path, folder / "out", "process", 2, None, progress=False)
    return path, folder / "out", result


def kill_grid_when(path: Path, out: Path, ready) -> int:
    """Start `qaug grid` in a process group of its own, SIGKILL the group once ``ready()``; the stage runs it finished."""
    from prefect.settings import get_current_settings

    env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url)}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "grid", str(path), "--out", str(out), "--no-progress"], cwd=PROJECT,
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while not ready():
            assert proc.poll() is None and time.monotonic() < deadline, "the grid ended or stalled before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the grid and its workers, mid-way
        proc.wait(timeout=60)
    return len(list((out / "store").glob("*/*/run.json")))


def test_a_killed_grid_resumes_without_rerunning_finished_stages(small, tmp_path) -> None:
    path, reference, _ = small
    out = tmp_path / "out"
    done_before = kill_grid_when(path, out, lambda: len(list((out / "store").glob("*/*/run.json"))) >= 6)
    result = command.run(path, out, "process", 2, None, progress=False)
    total = status(path, out)["stage_runs"]
    ran = sum(result["executed"].values()) + len(result["failed"]) + len(result["blocked"])
    assert sum(result["reused"].values()) == done_before and ran == total - done_before
    assert not list((out / "store").glob("*/.*.tmp"))  # the killed runs' leftovers are gone
    assert (out / "results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    assert (out / "comparisons.csv").read_bytes() == (reference / "comparisons.csv").read_bytes()


def test_a_grid_killed_inside_its_second_wave_resumes_there(prefect_api, tmp_path) -> None:
    """Seeds in waves: killed after the first look was judged and part of the second wave ran, a rerun judges the first
    look again from the store, runs only the second wave's missing stage runs and ends where an uninterrupted run ends."""
    from prefect.settings import get_current_settings

    path = write_grid(tmp_path, {**SMALL, "seeds": {"waves": [2, 3]}, "primary": [{"method": "proto", "reference": "none"}],
                                 "score_generated": True}, name="waves")
    proc = subprocess.run([sys.executable, "-m", "cli", "grid", str(path), "--out", str(tmp_path / "reference"), "--no-progress"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PREFECT_API_URL": get_current_settings().api.url})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reference = json.loads((tmp_path / "reference/summary.json").read_text())
    assert reference["design"]["looks_judged"] == 2  # open after 2 seeds: the second wave ran
    # every scoring cell lacks Inception weights: the grid says so once, its stage runs in the workers stay quiet
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if "Inception FID skipped" in line]
    assert said == ["Inception FID skipped: set metrics.inception_weights in params.yaml to a local copy of "
                    "weights-inception-2015-12-05-6726825d.pth (torch-fidelity release v0.2.0, the FID Inception-v3); qaug never "
                    "downloads weights (every cell that scores its generated samples)"], said
    assert len(list((tmp_path / "reference/store/score_generated").glob("*/run.json"))) == 3 + 2  # proto seeds 0–2, duplicates 0–1
    out = tmp_path / "out"
    done_before = kill_grid_when(path, out, lambda: len(list((out / "store/ingest").glob("*/run.json"))) >= 3)  # wave 2 began
    result = command.run(path, out, "process", 2, None, progress=False)
    assert sum(result["reused"].values()) == done_before and sum(result["executed"].values()) == sum(reference["executed"].values()) - done_before
    assert (out / "comparisons.csv").read_bytes() == (tmp_path / "reference/comparisons.csv").read_bytes()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["design"]["looks_judged"] == 2 and summary["decisions"] == json.loads((tmp_path / "reference/summary.json").read_text())["decisions"]


def test_a_second_grid_on_the_same_folder_is_refused(small) -> None:
    _, out, _ = small
    with command.exclusive(out):
        with pytest.raises(GridError, match="another qaug grid is running"):
            with command.exclusive(out):
                pass


def test_dask_on_a_loopback_scheduler_with_two_workers_gives_the_same_numbers(small, tmp_path) -> None:
    from prefect.settings import get_current_settings

    path, reference, expected = small
    dask = str(Path(sys.executable).with_name("dask"))
    env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url), "OMP_NUM_THREADS": "1"}
    scheduler_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                              cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs += [subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                   cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                  for _ in range(2)]
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            result = command.run(path, tmp_path / "out", "dask", 2, address, progress=False)
            workers = client.run(os.getpid)
        assert result["failed"].keys() == expected["failed"].keys() and result["cells_finished"] == expected["cells_finished"]
        records = [json.loads(p.read_text()) for p in (tmp_path / "out/store").glob("*/*/run.json")]
        assert {r["environment"]["torch_threads"] for r in records} == {1}
        assert {r["worker"]["pid"] for r in records} == set(workers.values())  # both external workers did the work, nothing else
        assert (tmp_path / "out/results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)


def test_ray_on_a_local_instance_with_two_workers_gives_the_same_numbers(small, tmp_path) -> None:
    import ray

    path, reference, expected = small
    try:
        result = command.run(path, tmp_path / "out", "ray", 2, None, progress=False)
    finally:
        ray.shutdown()
    assert result["failed"].keys() == expected["failed"].keys() and result["cells_finished"] == expected["cells_finished"]
    records = [json.loads(p.read_text()) for p in (tmp_path / "out/store").glob("*/*/run.json")]
    assert {r["environment"]["torch_threads"] for r in records} == {1}
    assert os.getpid() not in {r["worker"]["pid"] for r in records}  # Ray's worker processes did the work
    assert (tmp_path / "out/results.csv").read_bytes() == (reference / "results.csv").read_bytes()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow  # 20 s; the local Ray instance test covers the numbers, this one --address
def test_ray_on_a_running_loopback_cluster_gives_the_same_numbers(small, tmp_path, monkeypatch) -> None:
    """`--address` of a cluster started with `ray start --head` (token authentication off on both sides, as
    RAY_AUTH_MODE=disabled does; a real cluster's clients need its token instead)."""
    import socket

    import ray
    from prefect.settings import get_current_settings

    path, reference, expected = small
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url), "OMP_NUM_THREADS": "1"}
    temp = tempfile.mkdtemp(prefix="qaug-ray-")  # short (Ray's socket paths) and its own: /tmp/ray's address file is left alone
    head = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                             "--port", str(port), "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", temp],
                            cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:  # --block and a session of its own: the test stops its own cluster, not any other Ray on the machine
        deadline = time.monotonic() + 120
        while not _listening(port):
            assert head.poll() is None and time.monotonic() < deadline, "the ray head did not start"
            time.sleep(0.5)
        result = command.run(path, tmp_path / "out", "ray", 2, f"127.0.0.1:{port}", progress=False)
        ray.shutdown()
        assert result["failed"].keys() == expected["failed"].keys() and result["cells_finished"] == expected["cells_finished"]
        records = [json.loads(p.read_text()) for p in (tmp_path / "out/store").glob("*/*/run.json")]
        assert {r["environment"]["torch_threads"] for r in records} == {1} and os.getpid() not in {r["worker"]["pid"] for r in records}
        assert (tmp_path / "out/results.csv").read_bytes() == (reference / "results.csv").read_bytes()
    finally:
        ray.shutdown()
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def test_a_failing_stage_is_reported_and_blocks_only_its_cells(small) -> None:
    _, out, result = small
    for seed in (0, 1):
        label = f"train_generator · mosaiq · tiny · seed {seed}"
        assert "PCA components need more than 40 training images" in result["failed"][label]
    assert len(result["failed"]) == 2 and result["cells_finished"] == 6 and result["cells"] == 8  # none, duplicates, proto × 2 seeds
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["blocked"]) == sorted(f"{s} · mosaiq · tiny · seed {seed}" for s in ("generate", "filter", "merge", "evaluate")
                                                 for seed in (0, 1))
    page = (out / "report.html").read_text()
    assert "Failed stage runs" in page and "evaluate · mosaiq · tiny · seed 0: not run (an input failed)" in page
    assert not any("mosaiq" in p.name for p in (out / "cells").glob("*.json"))
    assert sorted(summary["unfinished_cells"]) == ["mosaiq · tiny · seed 0", "mosaiq · tiny · seed 1"]


# --- a grid judged by a ResNet (HybridQ's protocol) -------------------------------------------------------------

RESNET = {  # prototype samples (no generator training), ResNet-18 from scratch, a mixing-ratio sweep
    "description": "ResNet grid",
    "params": {"evaluate": {"classifier": "resnet18", "epochs": 2, "batch_size": 8}, "augment": {"strategy": "general", "n_gen": 36}},
    "methods": {"proto": {"augment.method": "prototype"}},
    "controls": ["none", "duplicates", "equal-steps"],
    "regimes": {"tiny": {}},
    "sweep": {"merge.mixing_ratio": [0.25, 0.5]},
    "seeds": [0, 1],
    "score_generated": False,
}


@pytest.fixture(scope="module")
def resnet_grid(prefect_api, tmp_path_factory) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("resnet")
    path = write_grid(folder, RESNET, name="resnet")
    return path, folder / "out", command.run(path, folder / "out", "process", 2, None, progress=False)


def test_a_resnet_grid_pairs_every_method_with_the_baseline_resnet_evaluate_trains(resnet_grid) -> None:
    path, out, result = resnet_grid
    assert not result["failed"] and result["cells_finished"] == result["cells"] == 16  # 4 arms × 2 ratios × 2 seeds
    summary = json.loads((out / "summary.json").read_text())
    assert summary["classifiers"] == ["resnet18"]
    assert summary["stage_runs"]["resnet_baseline"] == 2  # once per seed: the mixing ratio is not an input of the baseline
    # ResNets trained: 2 baselines, 8 evaluate runs (proto and duplicates × 2 ratios × 2 seeds) and 4 equal-steps, no baseline twice
    assert {s: result["executed"][s] for s in ("resnet_baseline", "evaluate", "equal_steps")} == {"resnet_baseline": 2, "evaluate": 8,
                                                                                                  "equal_steps": 4}
    spec, cells, runs, per_cell = load_plan(path)
    records = {c["cell"]: c for c in (json.loads(p.read_text()) for p in (out / "cells").glob("*.json"))}
    for cell in cells:
        if cell.arm.kind != "augment":
            continue
        none = next(c for c in cells if c.arm.name == "none" and (c.seed, c.point) == (cell.seed, cell.point))
        # the `none` cell is the very ResNet run this method's evaluate read as its baseline: same numbers
        compared = json.loads((out / "store/evaluate" / per_cell[cell.id]["evaluate"] / "metrics/comparison.json").read_text())
        assert compared["classifier"] == "resnet18" and per_cell[cell.id]["resnet_baseline"] == per_cell[none.id]["resnet_baseline"]
        baseline = json.loads((out / "store/resnet_baseline" / per_cell[none.id]["resnet_baseline"] / "metrics/resnet_baseline.json").read_text())
        assert compared["baseline"] == {k: baseline[k] for k in compared["baseline"]}
        assert records[none.id]["metrics"]["accuracy"] == compared["baseline"]["accuracy"]
        assert records[none.id]["metrics"]["macro_recall"] == compared["baseline"]["macro"]["recall"]
        assert records[cell.id]["metrics"]["accuracy"] == compared["augmented"]["accuracy"]
        real, ratio = 36, dict(cell.point)["merge.mixing_ratio"]
        assert records[cell.id]["generation"]["generated"] == round(ratio / (1 - ratio) * real)  # 12 at α 0.25, 36 at 0.5
    rows = read_csv(out / "comparisons.csv")
    assert {(r["arm"], r["reference"]) for r in rows if r["metric"] == "macro_precision"} == {
        ("proto", "none"), ("duplicates", "none"), ("equal-steps", "none"), ("proto", "duplicates"), ("equal-steps", "duplicates")}
    page = (out / "report.html").read_text()
    assert "resnet18 trained by evaluate" in page and "macro precision (%)" in page
    from grid.report import markdown

    assert markdown(summary).startswith("Judged by resnet18 trained by evaluate")


def test_a_resnet_judged_cell_reproduces_the_pipeline_run_with_the_same_params(resnet_grid, tmp_path) -> None:
    """`qaug run`'s stages, resnet_baseline included, on a ResNet-judged cell's params give the grid's bytes (one torch thread)."""
    import torch

    from grid.plan import stages_of
    from tasks.stages import get

    path, out, _ = resnet_grid
    spec, cells, runs, per_cell = load_plan(path)
    cell = next(c for c in cells if c.arm.name == "proto" and c.seed == 1 and dict(c.point)["merge.mixing_ratio"] == 0.5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for stage in stages_of(cell, spec.score_generated):
            get(stage).run(cell.params, tmp_path)
    finally:
        torch.set_num_threads(threads)
    for stage, rel in (("resnet_baseline", "metrics/resnet_baseline.json"), ("evaluate", "metrics/comparison.json"),
                       ("evaluate", "models/augmented.pt")):
        assert digest(tmp_path / rel) == digest(out / "store" / stage / per_cell[cell.id][stage] / rel), rel


def test_a_resnet_grids_equal_steps_control_takes_the_augmented_resnets_steps(resnet_grid) -> None:
    _, out, _ = resnet_grid
    cells = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    for cell in (c for c in cells if c["arm"] == "equal-steps"):
        ratio = cell["point"]["merge.mixing_ratio"]
        augmented = next(c for c in cells if c["arm"] == "proto" and (c["seed"], c["point"]) == (cell["seed"], cell["point"]))
        none = next(c for c in cells if c["arm"] == "none" and (c["seed"], c["point"]) == (cell["seed"], cell["point"]))
        assert augmented["steps"] == 2 * math.ceil((36 + round(ratio / (1 - ratio) * 36)) / 8)  # 2 epochs of the merged set
        assert augmented["steps"] <= cell["steps"] < augmented["steps"] + 5  # within one epoch of the real set (5 batches)
        assert cell["train_images"] == none["train_images"] == 36 and none["steps"] == 2 * 5


def test_too_few_images_for_a_regime_names_the_grid_file_regime_and_keys(tmp_path) -> None:
    from tests.pipeline_helpers import colour_folder

    colour_folder(tmp_path / "images", per_class=20, size=8)
    path = write_grid(tmp_path, {**SMALL, "params": {"ingest": {"source": "folder", "root": str(tmp_path / "images"), "classes": []}},
                                 "regimes": {"ok": {"ingest.train_per_class": 2}, "big": {"ingest.train_per_class": 30}}})
    with pytest.raises(GridError) as err:
        command.run(path, tmp_path / "out", "process", 1, None, progress=False)
    message = str(err.value)
    assert message.startswith(f"{path}: regimes.big: class 'blue' has 20 images") and "ingest.train_per_class" in message
    assert "params.yaml" not in message and not (tmp_path / "out").exists()  # before any work
    missing = write_grid(tmp_path, {**SMALL, "regimes": {"gone": {"ingest": {"source": "folder", "root": str(tmp_path / "nope")}}}})
    with pytest.raises(GridError, match=rf"^{missing}: regimes.gone: image folder .*nope \(ingest.root\) does not exist"):
        command.run(missing, tmp_path / "out", "process", 1, None, progress=False)


def test_a_problem_is_named_once_with_every_axis_that_has_it(tmp_path) -> None:
    """A base that cannot work (here a missing weights file) was reported once per regime, sweep value, control and method."""
    path = write_grid(tmp_path, {**SMALL, "params": {"evaluate": {"classifier": "resnet18", "weights": str(tmp_path / "nope.pth")}},
                                 "regimes": {"a": {}, "b": {}}})
    with pytest.raises(GridError) as err:
        load_grid(path)
    assert str(err.value).count("evaluate.weights") == 1 and "small.yaml: base params: evaluate.weights" in str(err.value)
    path = write_grid(tmp_path, {**SMALL, "regimes": {"r1": {"ingest.image_size": 4}, "r2": {"ingest.image_size": 4}, "ok": {}}})
    with pytest.raises(GridError) as err:
        load_grid(path)
    assert str(err.value).count("ingest.image_size must be") == 1 and "regimes.r1, regimes.r2: ingest.image_size" in str(err.value)
    five = {f"r{i}": {"ingest.image_size": 4} for i in range(1, 6)}
    with pytest.raises(GridError) as err:
        load_grid(write_grid(tmp_path, {**SMALL, "regimes": five}))
    assert "regimes.r1, regimes.r2, regimes.r3 and 2 more: ingest.image_size" in str(err.value)
    for n, named in ((3, "regimes.r1, regimes.r2, regimes.r3: "), (4, "regimes.r1, regimes.r2, regimes.r3 and 1 more: ")):
        with pytest.raises(GridError) as err:
            load_grid(write_grid(tmp_path, {**SMALL, "regimes": dict(list(five.items())[:n])}))
        assert named + "ingest.image_size" in str(err.value)
