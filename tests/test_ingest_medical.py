"""Medical formats: a MedMNIST .npz and an image folder with an ISIC-style ground-truth CSV, on files the tests make
in those formats (tiny arrays and PNGs); malformed ones are refused before any work, naming the file or line."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from grid.outputs import status
from grid.spec import GridError, load_grid
from qaug import medmnist
from qaug.io import InputError, load_arrays
from qaug.params import ParamsError, section
from tasks.ingest import IngestParams, IngestPaths, run
from tasks.layout import rooted
from tasks.preflight import before_repro, check_data
from tasks.source import source_digest
from tests.pipeline_helpers import PROJECT, dvc_project, project_env
from tests.test_preflight import project  # noqa: F401  (the fixture: `qaug run` with dvc repro replaced by a tripwire)

SPLIT_VALUE = {"train": 40, "val": 120, "test": 200}  # every pixel of an image tells which of the file's splits it is from


@pytest.fixture(autouse=True)
def _own_hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QAUG_CACHE_DIR", str(tmp_path / "hash-cache"))


def _npz(path: Path, rgb: bool = False, per_class=(5, 3, 3), classes: int | tuple = 3, side: int = 12, **replace) -> Path:
    """A MedMNIST-format file: per split ``per_class`` images of each class (label values 0..classes-1, or those given),
    uint8, labels (N, 1)."""
    arrays = {}
    values = np.array(classes if isinstance(classes, tuple) else range(classes), dtype=np.uint8)
    for split, n in zip(medmnist.SPLITS, per_class):
        labels = np.repeat(values, n)[:, None]
        images = np.full((len(labels), side, side, 3) if rgb else (len(labels), side, side), SPLIT_VALUE[split], np.uint8)
        images += labels.reshape(-1, *([1] * (images.ndim - 1)))  # the class on top of the split
        arrays |= {f"{split}_images": images, f"{split}_labels": labels}
    arrays |= replace
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def _medmnist(path: Path, **kw) -> IngestParams:
    return IngestParams(**{"source": "medmnist", "root": str(path), "classes": (0, 2), "train_per_class": 4,
                           "val_per_class": 2, "test_per_class": 3, "image_size": 8, **kw})


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("rgb", [False, True])
def test_a_medmnist_file_ingests_each_split_from_the_files_own(tmp_path, rgb) -> None:
    path = _npz(tmp_path / "raw" / "lesions_64.npz", rgb=rgb)  # not a published name: read unchecked, classes by value
    summary = run(_medmnist(path), 0, rooted(IngestPaths(), tmp_path))
    channels = 3 if rgb else 1
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        part = load_arrays(tmp_path / "data" / "prepared" / f"{split}.npz")
        assert part["images"].shape == (2 * n, channels, 8, 8) and part["images"].dtype == np.float32
        assert part["classes"].tolist() == ["0", "2"] and np.bincount(part["labels"]).tolist() == [n, n]
        # provenance: every pixel is its file split's value plus its class (0 or 2), resizing a flat image changes nothing
        expected = (SPLIT_VALUE[split] + np.array([0, 2])[part["labels"]]) / 255
        assert np.allclose(part["images"], expected[:, None, None, None], atol=1e-6), split
    assert summary["splits_from"] == "the file's train/val/test splits" and summary["image_shape"] == [channels, 8, 8]


def test_an_unknown_flags_classes_are_its_label_values(tmp_path) -> None:
    path = _npz(tmp_path / "scans.npz", classes=(3, 7, 9))
    run(_medmnist(path, classes=("9", 3)), 0, rooted(IngestPaths(), tmp_path))  # a value quoted or not
    test = load_arrays(tmp_path / "data/prepared/test.npz")
    assert test["classes"].tolist() == ["9", "3"]
    assert np.allclose(test["images"][:, 0, 0, 0], (SPLIT_VALUE["test"] + np.array([9, 3])[test["labels"]]) / 255)
    with pytest.raises(ParamsError, match=r"ingest.classes lists \[4\], which the source does not have \(it has \[3, 7, 9\]\)"):
        check_data({"ingest": {"source": "medmnist", "root": str(path), "classes": [3, 4]}})


def test_channels_convert_a_medmnist_file(tmp_path) -> None:
    rgb, gray = _npz(tmp_path / "rgb.npz", rgb=True), _npz(tmp_path / "gray.npz")
    run(_medmnist(rgb, channels="gray"), 0, rooted(IngestPaths(), tmp_path / "a"))
    run(_medmnist(gray, channels="rgb"), 0, rooted(IngestPaths(), tmp_path / "b"))
    assert load_arrays(tmp_path / "a/data/prepared/train.npz")["images"].shape[1] == 1
    assert load_arrays(tmp_path / "b/data/prepared/train.npz")["images"].shape[1] == 3


def test_a_published_flag_is_md5_checked_and_names_its_classes(tmp_path, monkeypatch) -> None:
    assert medmnist.identify(Path("dermamnist_64.npz")) == ("dermamnist", 64) and medmnist.identify(Path("bloodmnist.npz")) == ("bloodmnist", 28)
    assert medmnist.FLAGS["dermamnist"].md5[64] == "b70a2f5635c6199aeaa28c31d7202e1f"  # MedMNIST v3's info.py
    path = _npz(tmp_path / "dermamnist_64.npz", rgb=True, classes=7)
    out = rooted(IngestPaths(), tmp_path / "out")
    params = _medmnist(path, classes=("melanoma", 5))  # by class name or label value
    with pytest.raises(InputError, match=re.escape(f"{path} has MD5 {_md5(path)}, not the published dermamnist_64.npz's "
                                                   "b70a2f5635c6199aeaa28c31d7202e1f")):
        run(params, 0, out)
    assert not (tmp_path / "out").exists()  # refused before any output
    monkeypatch.setitem(medmnist.FLAGS["dermamnist"].md5, 64, _md5(path))  # as if it were the published file
    run(params, 0, out)
    assert load_arrays(out.train)["classes"].tolist() == ["melanoma", "melanocytic nevi"]


def _without(key: str):
    return lambda tmp: _npz(tmp / "set.npz", **{key: None})


MALFORMED = {
    "multi-label labels": (lambda tmp: _npz(tmp / "findings.npz", train_labels=np.zeros((15, 3), np.uint8)),
                           r"findings.npz is multi-label \(labels with 3 columns"),
    "a multi-label flag": (lambda tmp: _npz(tmp / "chestmnist_64.npz"), r"chestmnist_64.npz is multi-label \(labels with 14 columns"),
    "a 3D flag": (lambda tmp: _npz(tmp / "organmnist3d.npz"), r"organmnist3d.npz is a 3D MedMNIST file"),
    "no test labels": (_without("test_labels"), r"set.npz lacks test_labels: a MedMNIST file holds train_images, train_labels"),
    "float images": (lambda tmp: _npz(tmp / "set.npz", val_images=np.zeros((9, 12, 12), np.float32)),
                     r"set.npz: val_images is float32 \(9, 12, 12\); MedMNIST images are uint8"),
    "labels for other images": (lambda tmp: _npz(tmp / "set.npz", test_labels=np.zeros((4, 1), np.uint8)),
                                r"set.npz: test_labels has shape \(4, 1\) for 9 images"),
    "not an npz": (lambda tmp: (tmp / "set.npz").write_bytes(b"PK broken") and tmp / "set.npz", r"set.npz is not a readable .npz file"),
    "a published file's name, other content": (lambda tmp: _npz(tmp / "pneumoniamnist.npz", classes=2),
                                               r"pneumoniamnist.npz has MD5 [0-9a-f]{32}, not the published pneumoniamnist.npz's "
                                               r"28209eda62fecd6e6a2d98b1501bb15f: an incomplete download"),
    "missing file": (lambda tmp: tmp / "raw" / "dermamnist_128.npz",
                     r"MedMNIST file .*dermamnist_128.npz \(ingest.root\) not found; put dermamnist_128.npz there \(download: "
                     r"https://zenodo.org/records/10519652/files/dermamnist_128.npz\?download=1, MD5 2defd784463fa5243564e855ed717de1\)"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_medmnist_file_is_refused_before_work(tmp_path, case) -> None:
    make, message = MALFORMED[case]
    path = make(tmp_path)
    with pytest.raises((InputError, FileNotFoundError), match=message):
        check_data({"ingest": {"source": "medmnist", "root": str(path), "classes": [0, 1]}})
    with pytest.raises((InputError, FileNotFoundError), match=message):
        run(_medmnist(path, classes=(0, 1)), 0, rooted(IngestPaths(), tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_split_counts_are_checked_against_the_files_split(tmp_path) -> None:
    path = _npz(tmp_path / "set.npz", per_class=(20, 2, 20))
    with pytest.raises(ParamsError, match=re.escape(f"class '0' has 2 images in the val split of {path} but ingest.val_per_class "
                                                    "asks for 3 (qaug's val images come from the file's val split only)")):
        check_data({"ingest": {"source": "medmnist", "root": str(path), "classes": [0, 1], "val_per_class": 3,
                               "train_per_class": 4, "test_per_class": 4}})


def test_params_name_the_key_for_a_medmnist_root_and_a_csv_outside_the_folder() -> None:
    with pytest.raises(ParamsError, match=r"ingest.root must name the MedMNIST .npz file .*, got 'data/raw'"):
        section(IngestParams, {"ingest": {"source": "medmnist"}}, "ingest")
    with pytest.raises(ParamsError, match=r"ingest.labels must be a path inside ingest.root.*, got '../truth.csv'"):
        section(IngestParams, {"ingest": {"source": "csv", "labels": "../truth.csv"}}, "ingest")


ISIC = ("MEL", "NV", "BCC")


def _isic(tmp_path: Path, rows: list[tuple[str, str]] | None = None, label_column: str = "", per_class: int = 4) -> Path:
    """An image folder with a ground-truth CSV: ISIC one-hot (``1.0``/``0.0``) or a label column (HAM10000's ``dx``)."""
    root = tmp_path / "isic"
    root.mkdir(exist_ok=True)
    rows = rows if rows is not None else [(f"ISIC_{c * 100 + i:07d}", name) for c, name in enumerate(ISIC) for i in range(per_class)]
    rng = np.random.default_rng(0)
    for image, _ in rows:
        Image.fromarray(rng.integers(0, 256, (10, 10, 3)).astype(np.uint8), "RGB").save(root / f"{image}.png")
    if label_column:
        lines = [f"image_id,age,{label_column}", *(f"{image},50,{label.lower()}" for image, label in rows)]
    else:
        lines = ["image," + ",".join(ISIC), *(f"{image}," + ",".join("1.0" if c == label else "0.0" for c in ISIC) for image, label in rows)]
    (root / "truth.csv").write_text("\n".join(lines) + "\n")
    (root / "LICENSE.txt").write_text("no image, no row: ignored")
    return root


def _csv(root: Path, **kw) -> IngestParams:
    return IngestParams(**{"source": "csv", "root": str(root), "labels": "truth.csv", "classes": ("NV", "MEL"),
                           "train_per_class": 2, "val_per_class": 1, "test_per_class": 1, "image_size": 8, **kw})


@pytest.mark.parametrize("label_column", ["", "dx"])
def test_an_isic_style_folder_ingests_the_selected_classes(tmp_path, label_column) -> None:
    root = _isic(tmp_path, label_column=label_column)
    classes = ("NV", "MEL") if not label_column else ("nv", "mel")
    summary = run(_csv(root, classes=classes, label_column=label_column), 0, rooted(IngestPaths(), tmp_path))
    train = load_arrays(tmp_path / "data/prepared/train.npz")
    assert train["images"].shape == (4, 3, 8, 8) and train["classes"].tolist() == list(classes)
    assert np.bincount(train["labels"]).tolist() == [2, 2] and summary["counts"] == {"train": 4, "val": 2, "test": 2}
    everything = run(_csv(root, classes=(), label_column=label_column), 0, rooted(IngestPaths(), tmp_path / "all"))
    assert everything["classes"] == (list(ISIC) if not label_column else ["bcc", "mel", "nv"])  # column order / sorted labels


def _edit(change):
    def make(tmp: Path) -> dict:
        root = _isic(tmp)
        change(root)
        return {"root": str(root)}
    return make


def _replace_line(root: Path, n: int, line: str) -> None:
    text = (root / "truth.csv").read_text().splitlines()
    text[n - 1] = line
    (root / "truth.csv").write_text("\n".join(text) + "\n")


CSV_MALFORMED = {
    "two classes in a row": (_edit(lambda root: _replace_line(root, 3, "ISIC_0000001,1.0,1.0,0.0")),
                             r"truth.csv line 3 \(ISIC_0000001\) has 2 classes marked 1 \(MEL, NV\); a one-hot row marks exactly one"),
    "no class in a row": (_edit(lambda root: _replace_line(root, 2, "ISIC_0000000,0.0,0.0,0.0")),
                          r"truth.csv line 2 \(ISIC_0000000\) has 0 classes marked 1 \(none\)"),
    "a word in a one-hot column": (_edit(lambda root: _replace_line(root, 4, "ISIC_0000002,yes,0.0,0.0")),
                                   r"truth.csv line 4 \(ISIC_0000002\): column MEL holds 'yes'; one-hot columns hold 0 or 1"),
    "a missing image": (_edit(lambda root: (root / "ISIC_0000101.png").unlink()),
                        r"truth.csv line 7: image ISIC_0000101 has no file in .*isic \(e.g. ISIC_0000101.jpg\); put it there or remove the row"),
    "a repeated id": (_edit(lambda root: _replace_line(root, 9, "ISIC_0000000,0.0,1.0,0.0")),
                      r"truth.csv line 9 repeats image id 'ISIC_0000000' of line 2; keep one row per image"),
    "a short row": (_edit(lambda root: _replace_line(root, 5, "ISIC_0000003,1.0")), r"truth.csv line 5 has 2 fields, the header 4"),
    "two files for one id": (_edit(lambda root: shutil.copy(root / "ISIC_0000100.png", root / "ISIC_0000100.jpg")),
                             r"truth.csv line 6: image ISIC_0000100 matches 2 files \(ISIC_0000100.jpg, ISIC_0000100.png\); keep one"),
    "an unknown class": (lambda tmp: {"root": str(_isic(tmp)), "classes": ["NV", "SCC"]},
                         r"ingest.classes lists \['SCC'\], which the source does not have \(it has \['MEL', 'NV', 'BCC'\]\)"),
    "no such label column": (lambda tmp: {"root": str(_isic(tmp)), "label_column": "dx"},
                             r"truth.csv has no column 'dx' \(ingest.label_column\); its columns are \['image', 'MEL', 'NV', 'BCC'\]"),
    "no CSV": (lambda tmp: {"root": str(_isic(tmp)), "labels": "ISIC_2019_Training_GroundTruth.csv"},
               r"ground-truth CSV .*isic/ISIC_2019_Training_GroundTruth.csv \(ingest.labels, inside ingest.root\) not found; put the CSV there"),
    "no image folder": (lambda tmp: {"root": str(tmp / "nowhere")}, r"image folder .*nowhere \(ingest.root\) does not exist"),
    "too few images of a class": (lambda tmp: {"root": str(_isic(tmp, per_class=3))},
                                  r"class 'NV' has 3 images \(rows of .*truth.csv\) but ingest.train_per_class \+ val_per_class \+ "
                                  r"test_per_class = 5"),
}


@pytest.mark.parametrize("case", list(CSV_MALFORMED))
def test_a_malformed_ground_truth_is_refused_before_work_naming_the_line(tmp_path, case) -> None:
    make, message = CSV_MALFORMED[case]
    settings = {"source": "csv", "labels": "truth.csv", "classes": ["NV", "MEL"], "train_per_class": 3, "val_per_class": 1,
                "test_per_class": 1, "image_size": 8, **make(tmp_path)}
    with pytest.raises((InputError, FileNotFoundError, ParamsError), match=message):
        check_data({"ingest": settings})
    with pytest.raises((InputError, FileNotFoundError, ParamsError), match=message):
        run(section(IngestParams, {"ingest": settings}, "ingest"), 0, rooted(IngestPaths(), tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_source_digests_cover_the_npz_the_csv_and_its_images(tmp_path) -> None:
    path = _npz(tmp_path / "set.npz")
    first = source_digest(_medmnist(path))
    _npz(path, per_class=(5, 3, 4))
    assert source_digest(_medmnist(path)) != first
    with pytest.raises(FileNotFoundError, match=r"MedMNIST file .*gone.npz \(ingest.root\) not found"):
        source_digest(_medmnist(tmp_path / "gone.npz"))

    root = _isic(tmp_path)
    params = _csv(root)
    first = source_digest(params)
    Image.new("RGB", (10, 10), (1, 2, 3)).save(root / "ISIC_0000200.png")  # a BCC image: BCC is not selected
    (root / "notes.txt").write_text("not referenced")
    assert source_digest(params) == first
    Image.new("RGB", (10, 10), (1, 2, 3)).save(root / "ISIC_0000100.png")  # an NV image
    second = source_digest(params)
    assert second != first
    _replace_line(root, 2, "ISIC_0000000,0.0,1.0,0.0")  # relabelled MEL → NV
    assert source_digest(params) != second


def test_qaug_run_names_the_missing_medmnist_file_before_dvc_repro(project, tmp_path, capsys) -> None:  # noqa: F811
    code, repro_ran = project(ingest={"source": "medmnist", "root": "data/raw/dermamnist_64.npz", "classes": [1, 4]})
    err = capsys.readouterr().err
    assert code == 2 and not repro_ran
    assert err.strip() == ("qaug run: MedMNIST file data/raw/dermamnist_64.npz (ingest.root) not found; put dermamnist_64.npz there "
                           "(download: https://zenodo.org/records/10519652/files/dermamnist_64.npz?download=1, "
                           "MD5 b70a2f5635c6199aeaa28c31d7202e1f)")
    _npz(tmp_path / "data/raw/lesions_64.npz", per_class=(10, 5, 5))
    before_repro({"ingest": {"source": "medmnist", "root": "data/raw/lesions_64.npz", "classes": [1, 2], "train_per_class": 2,
                             "val_per_class": 2, "test_per_class": 2}}, tmp_path)  # a file as ingest.root is the DVC dep: fine


def test_the_dermamnist_grid_names_the_files_it_needs(tmp_path, monkeypatch) -> None:
    """Shipped but not run here: validating it (`qaug grid --status`) names the ResNet weights, then the data file."""
    grid = PROJECT / "grids" / "dermamnist.yaml"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    shutil.copy(PROJECT / "params.yaml", tmp_path / "params.yaml")
    with pytest.raises(GridError, match=r"base params: evaluate.weights '~/.cache/torch/hub/checkpoints/resnet50-0676ba61.pth' is not a file"):
        load_grid(grid)
    weights = tmp_path / ".cache/torch/hub/checkpoints/resnet50-0676ba61.pth"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"stands in for torchvision's file")
    spec = load_grid(grid)
    ingest = spec.base["ingest"]
    assert (ingest["source"], ingest["root"], ingest["classes"], ingest["image_size"]) == ("medmnist", "data/raw/dermamnist_64.npz", [1, 4, 5], 64)
    assert ingest["train_per_class"] == {1: 36, 4: 78, 5: 469}  # 10 % of the train split's 359 / 779 / 4,693
    assert spec.base["evaluate"]["classifier"] == "resnet50" and list(spec.sweep) == ["merge.mixing_ratio"]
    with pytest.raises(GridError, match=r"MedMNIST file data/raw/dermamnist_64.npz \(ingest.root\) not found; put dermamnist_64.npz "
                                        r"there \(download: https://zenodo.org/records/10519652/files/dermamnist_64.npz"):
        status(grid, tmp_path / "out")
    _npz(tmp_path / "data/raw/dermamnist_64.npz", rgb=True, classes=7, side=64)  # the right name, not the published bytes
    assert status(grid, tmp_path / "out")["stage_runs_done"] == 0  # planned: the key holds the file's content
    with pytest.raises(InputError, match=r"dermamnist_64.npz has MD5 [0-9a-f]{32}, not the published"):
        check_data(spec.cells()[0].params)  # what `qaug grid` checks before any work


def test_dvc_reruns_ingest_when_the_npz_or_the_ground_truth_changes(tmp_path) -> None:
    """``${ingest.root}`` is a file for medmnist (DVC hashes it) and the folder holding the CSV for csv."""
    root = dvc_project(tmp_path / "project")
    env = project_env()

    def dvc(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True, text=True, timeout=600)

    def use(**ingest) -> None:
        raw = yaml.safe_load((root / "params.yaml").read_text())
        raw["ingest"].update(ingest, train_per_class=2, val_per_class=1, test_per_class=1)
        (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        assert dvc("repro", "--single-item", "ingest").returncode == 0 and dvc("status", "--json", "ingest").stdout.strip() == "{}"

    npz = _npz(root / "data/raw/lesions_64.npz")
    use(source="medmnist", root="data/raw/lesions_64.npz", classes=[0, 2])
    _npz(npz, per_class=(5, 3, 4))
    assert "data/raw/lesions_64.npz" in dvc("status", "--json", "ingest").stdout
    isic = _isic(root / "data/raw")
    use(source="csv", root="data/raw/isic", labels="truth.csv", classes=["NV", "MEL"])
    _replace_line(isic, 2, "ISIC_0000000,0.0,1.0,0.0")
    assert "data/raw/isic" in dvc("status", "--json", "ingest").stdout
