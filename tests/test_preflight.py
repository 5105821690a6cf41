"""The pre-flight check: every data, class and backend problem is named before dvc repro deletes an output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from cli.main import main
from qaug.repro import Repro

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A project folder with the repo's params.yaml, a previous run's output, and dvc repro replaced by a tripwire."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no saved IBM account
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "baseline.json").write_text("{}")  # what dvc repro would delete first
    (tmp_path / "data" / "raw").mkdir(parents=True)  # the default ingest.root, a dvc.yaml dep, as the repo ships it
    calls: list[bool] = []
    monkeypatch.setattr("qaug.repro.dvc_repro", lambda force=False, root=Path("."): calls.append(force) or Repro(0, {}))
    monkeypatch.setattr("cli.results.show", lambda args: 0)
    monkeypatch.setattr("cli.server.watched", lambda required: False)  # plain dvc repro, whatever server the session started
    monkeypatch.setattr("cli.pipeline.push", lambda: None)
    monkeypatch.setattr("tasks.preflight.stale_stages", lambda root=Path("."): None)  # not a DVC project: check all

    def run(**sections) -> tuple[int, bool]:
        raw = yaml.safe_load((REPO / "params.yaml").read_text())
        for name, values in sections.items():
            raw[name] = {**raw.get(name, {}), **values}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
        calls.clear()
        code = main(["run"])
        return code, bool(calls)

    return run


def _images(folder: Path, n: int, mode: str = "L", dtype=np.uint8, value: int = 128) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(np.full((8, 8), value + i, dtype=dtype)).save(folder / f"{i}.png")


def _folder_source(tmp_path: Path, per_class: int = 3, classes=("a", "b")) -> dict:
    for c in classes:
        _images(tmp_path / "imgs" / c, per_class)
    return {"source": "folder", "root": "imgs", "classes": [], "train_per_class": 1, "val_per_class": 1, "test_per_class": 1,
            "image_size": 8}


def _without_class_folders(tmp: Path) -> dict:
    (tmp / "empty").mkdir()
    return {"ingest": {"source": "folder", "root": "empty", "classes": []}}


def _with_empty_class_folder(tmp: Path) -> dict:
    (tmp / "imgs" / "c").mkdir(parents=True)
    return {"ingest": _folder_source(tmp)}


def _with_file(name: str, content: bytes):
    def make(tmp: Path) -> dict:
        source = _folder_source(tmp)
        (tmp / "imgs" / "a" / name).write_bytes(content)
        return {"ingest": source}
    return make


def _with_16_bit_png(tmp: Path) -> dict:
    source = _folder_source(tmp)
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(tmp / "imgs" / "a" / "deep.png")
    return {"ingest": source}


def _with_image(name: str, image: Image.Image):
    def make(tmp: Path) -> dict:
        source = _folder_source(tmp)
        image.save(tmp / "imgs" / "b" / name)
        return {"ingest": source}
    return make


def _transparent() -> Image.Image:
    im = Image.new("RGBA", (8, 8), (200, 10, 10, 255))
    im.putpixel((3, 3), (0, 0, 0, 0))
    return im


CASES = {
    "more images than a class has": (lambda tmp: {"ingest": {"train_per_class": 450}},
                                     r"class '0' has 500 images but ingest.train_per_class \+ val_per_class \+ test_per_class = 650 \(450 \+ 100 \+ 100\)"),
    "a digit the source lacks": (lambda tmp: {"ingest": {"classes": [0, 99]}}, r"ingest.classes lists \[99\], which the source does not have"),
    "a class name on digits": (lambda tmp: {"ingest": {"classes": ["a", 1]}}, r"ingest.classes lists \['a'\]"),
    "one class": (lambda tmp: {"ingest": {"classes": [0]}}, r"ingest.classes must list at least 2 classes for a classifier .*, got \[0\]"),
    "missing folder": (lambda tmp: {"ingest": {"source": "folder", "root": "nowhere", "classes": []}},
                       r"image folder nowhere \(ingest.root\) does not exist"),
    "folder without class folders": (_without_class_folders, "has no class subfolders"),
    "folder with one class": (lambda tmp: {"ingest": _folder_source(tmp, classes=("a",))}, r"selects 1 class\(es\) \['a'\] from the folder source"),
    "class folder without images": (_with_empty_class_folder, r"class 'c' has 0 images \(folder imgs/c\)"),
    "corrupt PNG": (_with_file("x.png", b"\x89PNG broken"), r"imgs/a/x.png is not a readable image"),
    "a text file among images": (_with_file("notes.txt", b"hi"), r"imgs/a/notes.txt is not a readable image"),
    "16-bit PNG": (_with_16_bit_png, r"deep.png is a I;16 \(16/32-bit\) image; convert the folder to 8-bit"),
    "a 1×1 image": (_with_image("pixel.png", Image.new("L", (1, 1))), r"imgs/b/pixel.png is 1×1 pixels, smaller than 8×8"),
    "transparent pixels": (_with_image("logo.png", _transparent()), r"imgs/b/logo.png has transparent pixels \(RGBA image\)"),
    "torchvision data not there": (lambda tmp: {"ingest": {"source": "torchvision", "root": "tv", "dataset": "MNIST", "classes": [0, 1]}},
                                   r"torchvision MNIST not found under 'tv'.*set ingest.download: true"),
    "unknown fake device": (lambda tmp: {"quantum": {"backend": "fake:NoSuchDevice"}},
                            r"quantum.backend fake backend 'NoSuchDevice' does not exist"),
    "ibm without an account": (lambda tmp: {"quantum": {"backend": "ibm:ibm_torino"}},
                               r"ibm:ibm_torino: needs an IBM Quantum account: set QISKIT_IBM_TOKEN or save one"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_inputs_fail_before_dvc_repro_with_a_message(case: str, project, tmp_path, capsys) -> None:
    make, message = CASES[case]
    code, repro_ran = project(**make(tmp_path))
    err = capsys.readouterr().err
    assert code == 2 and not repro_ran, err
    assert (tmp_path / "metrics" / "baseline.json").exists()
    assert __import__("re").search(message, err) and len(err.strip().splitlines()) == 1, err


def test_an_image_over_the_decompression_bomb_limit_fails_before_dvc_repro(project, tmp_path, monkeypatch, capsys) -> None:
    source = _folder_source(tmp_path)
    Image.new("L", (60, 60)).save(tmp_path / "imgs" / "a" / "scan.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's is ~89 Mpx: the same path, without the memory
    assert project(ingest=source) == (2, False)
    err = capsys.readouterr().err
    assert err.strip() == ("qaug run: imgs/a/scan.png is 3,600 pixels, over Pillow's decompression-bomb limit of 1,000 pixels; "
                           "shrink it (qaug resizes every image to ingest.image_size, at most 256 px) or remove it from the image folder")
    assert (tmp_path / "metrics" / "baseline.json").exists()


@pytest.mark.parametrize("content, message", [
    (lambda text: text + "seed: 3\n", r"params.yaml: key seed appears twice \(lines \d+ and \d+\); keep one"),
    (lambda text: (text + "# réglages\n").encode("latin-1"), r"params.yaml is not UTF-8 text \(byte 0xe9 on line \d+\); save it as UTF-8")])
def test_a_params_file_dvc_would_refuse_fails_before_dvc_repro(content, message, project, tmp_path, monkeypatch, capsys) -> None:
    """yaml.safe_load takes both; DVC refuses them once the run has started."""
    assert project() == (0, True)
    text = content((tmp_path / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
    monkeypatch.setattr("qaug.repro.dvc_repro", lambda force=False, root=Path("."): pytest.fail("dvc repro started"))
    capsys.readouterr()
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert __import__("re").fullmatch(f"qaug run: {message}\n", err), err
    assert (tmp_path / "metrics" / "baseline.json").exists()


def test_the_default_data_root_must_exist_for_dvc_even_for_the_embedded_set(project, tmp_path, capsys) -> None:
    """dvc.yaml's ingest depends on ${ingest.root}: without the folder DVC would fail the run midway."""
    (tmp_path / "data" / "raw").rmdir()
    assert project() == (2, False)
    assert "ingest.root data/raw does not exist: dvc.yaml's ingest stage depends on that folder" in capsys.readouterr().err
    assert (tmp_path / "metrics" / "baseline.json").exists()


def test_the_data_source_is_checked_only_when_ingest_will_run(project, tmp_path, monkeypatch) -> None:
    """Prepared splits pulled from a DVC remote need no raw data: a missing folder matters only to ingest."""
    missing = {"source": "folder", "root": "nowhere", "classes": []}
    monkeypatch.setattr("tasks.preflight.stale_stages", lambda root=Path("."): {"train_generator"})
    assert project(ingest=missing) == (0, True)
    monkeypatch.setattr("tasks.preflight.stale_stages", lambda root=Path("."): {"ingest", "train_baseline"})
    assert project(ingest=missing) == (2, False)


def test_a_good_folder_source_passes(project, tmp_path) -> None:
    code, repro_ran = project(ingest=_folder_source(tmp_path))
    assert code == 0 and repro_ran


def test_a_stage_failing_under_dvc_says_how_to_restore(project, monkeypatch, capsys) -> None:
    monkeypatch.setattr("qaug.repro.dvc_repro", lambda force=False, root=Path("."): Repro(255, {}))
    code, _ = project()
    assert code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "`dvc checkout --force` restores the outputs of the last good run" in last  # not a git repository: no `git checkout`


def test_a_rejected_token_gives_the_services_reason_and_never_the_token(monkeypatch) -> None:
    import qiskit_ibm_runtime
    from qiskit_ibm_runtime.accounts import InvalidAccountError

    from qmodels.backends import BackendError, BackendSpec, connect

    token = "s3cr3t-token-value"

    def refuse(**kwargs):
        raise InvalidAccountError(f"Unable to retrieve instances. Please check that you are using a valid API token ({token[:4]}...).")

    monkeypatch.setenv("QISKIT_IBM_TOKEN", token)
    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", refuse)
    with pytest.raises(BackendError) as info:
        connect(BackendSpec.parse("ibm:ibm_torino"))
    text = str(info.value)
    assert "IBM Quantum refused the token in QISKIT_IBM_TOKEN (InvalidAccountError: 'Unable to retrieve instances" in text
    assert token not in text


def test_a_grid_regime_asking_for_more_images_than_exist_fails_before_work(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    (tmp_path / "g.yaml").write_text("methods: [gan1]\ncontrols: [none, duplicates]\nregimes:\n  ok: {}\n"
                                     "  greedy: {ingest.train_per_class: {0: 10, 1: 10, 2: 450}}\nseeds: 1\n")
    assert main(["grid", "g.yaml", "--no-progress"]) == 2
    assert "class '2' has 500 images but ingest.train_per_class + val_per_class + test_per_class = 650" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()  # no output folder, no store, no lock
