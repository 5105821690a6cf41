"""The torchvision and image-folder sources, on data the tests make (nothing is downloaded)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image

from qaug.io import InputError, load_arrays
from qaug.params import ParamsError
from tasks.ingest import IngestParams, IngestPaths, run
from tasks.layout import rooted


def _write_idx(path, array: np.ndarray) -> None:
    """MNIST's idx format: magic (0x08 = ubyte, ndim), big-endian dims, raw bytes."""
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture()
def mnist_root(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 10)
    images = rng.integers(0, 256, size=(40, 28, 28))
    for name, images_, labels_ in (("train", images, labels), ("t10k", images[:8], labels[:8])):
        _write_idx(raw / f"{name}-images-idx3-ubyte", images_)
        _write_idx(raw / f"{name}-labels-idx1-ubyte", labels_)
    return tmp_path, images, labels


def test_torchvision_dataset_from_a_local_root(mnist_root, tmp_path) -> None:
    root, images, labels = mnist_root
    params = IngestParams(source="torchvision", dataset="MNIST", root=str(root), classes=(1, 3),
                          train_per_class=4, val_per_class=3, test_per_class=3, image_size=14)
    summary = run(params, 0, rooted(IngestPaths(), tmp_path / "out"))
    train = load_arrays(tmp_path / "out/data/prepared/train.npz")
    assert train["images"].shape == (8, 1, 14, 14) and np.bincount(train["labels"]).tolist() == [4, 4]
    assert train["classes"].tolist() == ["1 - one", "3 - three"] and summary["counts"]["test"] == 6


def test_torchvision_missing_files_say_how_to_fix(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="set ingest.download: true"):
        run(IngestParams(source="torchvision", dataset="MNIST", root=str(tmp_path)), 0, rooted(IngestPaths(), tmp_path))
    with pytest.raises(ParamsError, match="not a torchvision dataset class"):
        run(IngestParams(source="torchvision", dataset="NoSuchSet", root=str(tmp_path)), 0, rooted(IngestPaths(), tmp_path))


def _folder(tmp_path, mode: str, classes=("cat", "dog", "owl"), per_class=5, size=(20, 16)):
    root = tmp_path / "images"
    rng = np.random.default_rng(1)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            Image.fromarray(rng.integers(0, 256, size=shape).astype(np.uint8), mode).save(root / c / f"{i}.png")
    return root


def test_colour_image_folder(tmp_path) -> None:
    root = _folder(tmp_path, "RGB")
    params = IngestParams(source="folder", root=str(root), classes=(), train_per_class=2, val_per_class=1, test_per_class=2, image_size=12)
    run(params, 0, rooted(IngestPaths(), tmp_path))
    train = load_arrays(tmp_path / "data/prepared/train.npz")
    assert train["images"].shape == (6, 3, 12, 12) and train["images"].dtype == np.float32
    assert train["classes"].tolist() == ["cat", "dog", "owl"]
    assert 0 <= train["images"].min() and train["images"].max() <= 1


def test_grayscale_folder_subset_of_classes(tmp_path) -> None:
    root = _folder(tmp_path, "L")
    params = IngestParams(source="folder", root=str(root), classes=("owl", "cat"), train_per_class=3, val_per_class=1, test_per_class=1, image_size=8)
    run(params, 0, rooted(IngestPaths(), tmp_path))
    test = load_arrays(tmp_path / "data/prepared/test.npz")
    assert test["images"].shape == (2, 1, 8, 8) and test["classes"].tolist() == ["owl", "cat"]


def test_folder_errors_name_the_problem(tmp_path) -> None:
    root = _folder(tmp_path, "L", per_class=2)
    with pytest.raises(ParamsError, match=r"ingest\.classes lists \['fox'\]"):
        run(IngestParams(source="folder", root=str(root), classes=("fox",)), 0, rooted(IngestPaths(), tmp_path))
    with pytest.raises(ParamsError, match=r"class 'cat' has 2 images .folder .*cat. but ingest\.train_per_class \+ val_per_class \+ test_per_class = 300"):
        run(IngestParams(source="folder", root=str(root), classes=("cat", "dog")), 0, rooted(IngestPaths(), tmp_path))
    (root / "cat" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png is not a readable image"):
        run(IngestParams(source="folder", root=str(root), classes=("cat",)), 0, rooted(IngestPaths(), tmp_path))
    (root / "cat" / "broken.png").unlink()
    Image.fromarray(np.full((4, 4), 40000, dtype=np.uint16)).save(root / "cat" / "deep.png")
    with pytest.raises(ValueError, match="deep.png is a I;16 .16/32-bit. image; convert the folder to 8-bit"):
        run(IngestParams(source="folder", root=str(root), classes=("cat",)), 0, rooted(IngestPaths(), tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist; make one subfolder per class"):
        run(IngestParams(source="folder", root=str(tmp_path / "nope")), 0, rooted(IngestPaths(), tmp_path))


def test_per_class_counts_make_an_imbalanced_training_split(tmp_path) -> None:
    from qaug.params import section

    def ingest(raw: dict) -> None:
        run(section(IngestParams, raw, "ingest"), 0, rooted(IngestPaths(), tmp_path))

    ingest({"ingest": {"train_per_class": {0: 20, 1: 20, 2: 4}, "val_per_class": 5, "test_per_class": {0: 3, 1: 3, 2: 3}, "image_size": 8}})
    assert np.bincount(np.load(tmp_path / "data/prepared/train.npz")["labels"]).tolist() == [20, 20, 4]
    assert np.bincount(np.load(tmp_path / "data/prepared/test.npz")["labels"]).tolist() == [3, 3, 3]
    for counts, message in [({0: 20, 1: 20}, r"missing \['2'\]"), ({0: 1, 1: 1, 2: 1, 7: 1}, r"\['7'\] not in ingest.classes"),
                            ({0: 5, 1: 5, 2: 0}, "train_per_class.2 must be at least 1")]:
        with pytest.raises(ParamsError, match=message):
            section(IngestParams, {"ingest": {"train_per_class": counts}}, "ingest")
    with pytest.raises(ParamsError, match="class '2' has 500 images"):
        ingest({"ingest": {"train_per_class": {0: 5, 1: 5, 2: 600}}})


def _params(root, **kw) -> IngestParams:
    return IngestParams(source="folder", root=str(root), classes=(), train_per_class=2, val_per_class=1, test_per_class=1,
                        image_size=8, **kw)


def _ingest(tmp_path, root, **kw) -> np.ndarray:
    run(_params(root, **kw), 0, rooted(IngestPaths(), tmp_path))
    return load_arrays(tmp_path / "data/prepared/train.npz")["images"]


def test_a_gray_palette_image_keeps_a_gray_folder_gray(tmp_path, caplog) -> None:
    """One PNG saved with a (gray) palette used to turn the whole set to 3 channels."""
    root = _folder(tmp_path, "L", per_class=4)
    for c in ("cat", "dog"):
        Image.open(root / c / "0.png").convert("P").save(root / c / "0.png")
    with caplog.at_level("INFO", logger="qaug.ingest"):
        assert _ingest(tmp_path, root).shape[1] == 1
    (line,) = [r.getMessage() for r in caplog.records if "converted" in r.getMessage()]  # one line for both files
    assert line == f"image folder: converted 2 image(s) P (gray palette) → L (e.g. {root / 'cat' / '0.png'})"


def test_odd_modes_are_converted_with_one_line_per_kind(tmp_path, caplog) -> None:
    root = _folder(tmp_path, "RGB", per_class=4)
    rgb = Image.open(root / "cat" / "1.png")
    rgb.quantize(16).save(root / "cat" / "1.png")  # a colour palette
    rgb.convert("RGBA").save(root / "dog" / "1.png")  # opaque alpha: dropped, nothing lost
    rgb.convert("CMYK").save(root / "owl" / "1.jpg")
    Image.open(root / "owl" / "2.png").convert("L").save(root / "owl" / "2.png")
    with caplog.at_level("INFO", logger="qaug.ingest"):
        assert _ingest(tmp_path, root).shape[1] == 3
    said = sorted(r.getMessage() for r in caplog.records if r.getMessage().startswith("image folder"))
    assert said == [f"image folder: 1 gray image(s) repeated over 3 channels, since 12 are colour (e.g. {root / 'cat' / '0.png'}; "
                    "ingest.channels: gray makes the set gray)",
                    f"image folder: converted 1 image(s) CMYK → RGB (e.g. {root / 'owl' / '1.jpg'})",
                    f"image folder: converted 1 image(s) P → RGB (e.g. {root / 'cat' / '1.png'})",
                    f"image folder: converted 1 image(s) RGBA → RGB (e.g. {root / 'dog' / '1.png'})"]


def test_a_gray_image_in_a_colour_set_is_pillows_rgb_conversion(tmp_path) -> None:
    """Gray files are resized once and repeated over 3 channels: the bytes of converting each to RGB first."""
    from qaug.images import load_images

    root = _folder(tmp_path, "L", classes=("a",), per_class=2, size=(23, 17))
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (9, 30, 3)).astype(np.uint8)).save(root / "a" / "c.png")
    files = sorted((root / "a").iterdir())
    expected = [np.asarray(Image.open(f).convert("RGB").resize((12, 12), Image.Resampling.LANCZOS), np.float32) / 255.0 for f in files]
    assert load_images(files, "auto", 12).tobytes() == np.stack(expected).transpose(0, 3, 1, 2).tobytes()


def test_transparency_is_refused_naming_the_file(tmp_path) -> None:
    root = _folder(tmp_path, "RGB", per_class=4)
    rgba = Image.open(root / "dog" / "2.png").convert("RGBA")
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    rgba.save(root / "dog" / "2.png")
    with pytest.raises(InputError, match=r"dog/2.png has transparent pixels \(RGBA image\); what shows through them .* flatten"):
        _ingest(tmp_path, root)


def test_an_image_smaller_than_8_by_8_is_refused_and_8_by_8_digits_pass(tmp_path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    root = tmp_path / "digits"
    for label in (0, 1):
        (root / str(label)).mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == label][:4]):
            Image.fromarray((image * 16).astype(np.uint8)).save(root / str(label) / f"{i}.png")
    assert _ingest(tmp_path, root).shape == (4, 1, 8, 8)
    Image.new("L", (1, 1)).save(root / "1" / "pixel.png")
    with pytest.raises(InputError, match=r"1/pixel.png is 1×1 pixels, smaller than 8×8 .*remove or replace it"):
        _ingest(tmp_path, root)


@pytest.mark.parametrize("side, size", [(40, "40×40 pixels"), (50, "2,500 pixels")])  # Pillow warns over the limit, refuses at twice it
def test_an_image_over_the_decompression_bomb_limit_is_named(side: int, size: str, tmp_path, monkeypatch) -> None:
    root = _folder(tmp_path, "L", per_class=4)
    Image.new("L", (side, side)).save(root / "owl" / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InputError, match=rf"owl/huge.png is {size}, over Pillow's decompression-bomb limit of 1,000 pixels; shrink it"):
        _ingest(tmp_path, root)
