"""MedMNIST files (``<flag>.npz`` at 28×28, ``<flag>_{64,128,224}.npz``): the published MD5s and label names, and
one checked read of a local file.

qaug reads the file itself, offline, rather than through the ``medmnist`` package (which downloads and wraps it in
torch datasets): what identifies a file is its name and MD5. The table is MedMNIST v3's own (``medmnist/info.py`` of
github.com/MedMNIST/MedMNIST at 3.0.2, the files of Zenodo record 10519652; the 28×28 MD5s are unchanged since v2):
a file named like a published one must have its MD5, so a truncated download or an edited copy is refused instead of
quietly training on other data (a file you changed on purpose: give it a name of your own; it is then read unchecked,
its classes named by their label values). The 3D flags (``organmnist3d``, ...) hold volumes, not images; multi-label
files (ChestMNIST's 14 findings) have no single class per image: both are refused.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qaug.images import MIN_SIDE
from qaug.io import InputError

SPLITS = ("train", "val", "test")
KEYS = tuple(f"{split}_{kind}" for split in SPLITS for kind in ("images", "labels"))
RECORD = "https://zenodo.org/records/10519652"


@dataclass(frozen=True)
class Flag:
    task: str
    channels: int
    labels: tuple[str, ...]  # class name of each label value
    md5: dict[int, str]  # image side → MD5 of the published file


FLAGS: dict[str, Flag] = {
    "pathmnist": Flag("multi-class", 3, (
        "adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle", "normal colon mucosa",
        "cancer-associated stroma", "colorectal adenocarcinoma epithelium"),
        {28: "a8b06965200029087d5bd730944a56c1", 64: "55aa9c1e0525abe5a6b9d8343a507616",
         128: "ac42d08fb904d92c244187169d1fd1d9", 224: "2c51a510bcdc9cf8ddb2af93af1eadec"}),
    "chestmnist": Flag("multi-label, binary-class", 1, (
        "atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule", "pneumonia", "pneumothorax",
        "consolidation", "edema", "emphysema", "fibrosis", "pleural", "hernia"),
        {28: "02c8a6516a18b556561a56cbdd36c4a8", 64: "9de6cd0b934ebb5b7426cfba5efbae16",
         128: "db107e5590b27930b62dbaf558aebee3", 224: "45bd33e6f06c3e8cdb481c74a89152aa"}),
    "dermamnist": Flag("multi-class", 3, (
        "actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma", "benign keratosis-like lesions",
        "dermatofibroma", "melanoma", "melanocytic nevi", "vascular lesions"),
        {28: "0744692d530f8e62ec473284d019b0c7", 64: "b70a2f5635c6199aeaa28c31d7202e1f",
         128: "2defd784463fa5243564e855ed717de1", 224: "8974907d8e169bef5f5b96bc506ae45d"}),
    "octmnist": Flag("multi-class", 1, (
        "choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
        {28: "c68d92d5b585d8d81f7112f81e2d0842", 64: "e229e9440236b774d9f0dfef9d07bdaf",
         128: "0a97e76651ace45c5d943ee3f65b63ae", 224: "abc493b6d529d5de7569faaef2773ba3"}),
    "pneumoniamnist": Flag("binary-class", 1, (
        "normal", "pneumonia"),
        {28: "28209eda62fecd6e6a2d98b1501bb15f", 64: "8f4eceb4ccffa70c672198ea285246c6",
         128: "05b46931834c231683c68f40c47b2971", 224: "d6a3c71de1b945ea11211b03746c1fe1"}),
    "retinamnist": Flag("ordinal-regression", 3, (
        "0", "1", "2", "3", "4"),
        {28: "bd4c0672f1bba3e3a89f0e4e876791e4", 64: "afda852cc34dcda56f86ad2b2457dbcc",
         128: "e48e916a24454daf90583d4e6efb1a18", 224: "eae7e3b6f3fcbda4ae613ebdcbe35348"}),
    "breastmnist": Flag("binary-class", 1, (
        "malignant", "normal, benign"),
        {28: "750601b1f35ba3300ea97c75c52ff8f6", 64: "742edef2a1fd1524b2efff4bd7ba9364",
         128: "363e4b3f8d712e9b5de15470a2aaadf1", 224: "b56378a6eefa9fed602bb16d192d4c8b"}),
    "bloodmnist": Flag("multi-class", 3, (
        "basophil", "eosinophil", "erythroblast", "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
        "lymphocyte", "monocyte", "neutrophil", "platelet"),
        {28: "7053d0359d879ad8a5505303e11de1dc", 64: "2b94928a2ae4916078ca51e05b6b800b",
         128: "adace1e0ed228fccda1f39692059dd4c", 224: "b718ff6835fcbdb22ba9eacccd7b2601"}),
    "tissuemnist": Flag("multi-class", 1, (
        "Collecting Duct, Connecting Tubule", "Distal Convoluted Tubule", "Glomerular endothelial cells",
        "Interstitial endothelial cells", "Leukocytes", "Podocytes", "Proximal Tubule Segments", "Thick Ascending Limb"),
        {28: "ebe78ee8b05294063de985d821c1c34b", 64: "123ece2eba09d0aa5d698fda57103344",
         128: "61b955355d7425a89687b06cca3ce0c2", 224: "b077128c4a949f0a4eb01517f9037b9c"}),
    "organamnist": Flag("multi-class", 1, (
        "bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver", "lung-left", "lung-right",
        "pancreas", "spleen"),
        {28: "68e3f8846a6bd62f0c9bf841c0d9eacc", 64: "2dcccc29b88e6da5a01161ef20cda288",
         128: "eeae80d0a227a8d099027e1b3cfd3b60", 224: "50747347e05c87dd3aaf92c49f9f3170"}),
    "organcmnist": Flag("multi-class", 1, (
        "bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver", "lung-left", "lung-right",
        "pancreas", "spleen"),
        {28: "b9ceb9546e10131b32923c5bbeaea2b1", 64: "3ce34a8724ea6f548e6db4744d03b6a9",
         128: "773c1f009daa3fe5d9a2a201b2a7ed94", 224: "050f5e875dc056f6768abf94ec9995d1"}),
    "organsmnist": Flag("multi-class", 1, (
        "bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver", "lung-left", "lung-right",
        "pancreas", "spleen"),
        {28: "9ab87b696fb54e2a387ebe992d6ed5f1", 64: "53a6d115339d874c25e309a994ff46d3",
         128: "ded0c5fa01a95dc4978b956f613e9b8e", 224: "b354719e553fbbb2513d5533f52a4cb1"}),
}
VOLUMES = ("organmnist3d", "nodulemnist3d", "adrenalmnist3d", "fracturemnist3d", "vesselmnist3d", "synapsemnist3d")


@dataclass(frozen=True)
class MedMNIST:
    """A checked MedMNIST file: per split, images (n, H, W) or (n, H, W, 3) uint8 and labels (n,) int64."""

    flag: str | None  # None: a name that is not a published file (read without an MD5 to compare)
    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]

    @property
    def names(self) -> tuple[str, ...] | None:
        """The class name of each label value, from the flag's label dictionary (None for an unknown flag)."""
        return FLAGS[self.flag].labels if self.flag else None


def identify(path: Path) -> tuple[str | None, int]:
    """The flag and image side a file name says (``dermamnist_64.npz`` → dermamnist, 64); flag None when it is no
    published flag."""
    match = re.fullmatch(r"(.+?)(?:_(64|128|224))?\.npz", Path(path).name)
    if match is None:
        return None, 0
    flag = match[1]
    return (flag if flag in FLAGS or flag in VOLUMES else None), int(match[2] or 28)


def published(flag: str, size: int) -> str:
    """Where the published file is and the MD5 it must have."""
    name = f"{flag}{'' if size == 28 else f'_{size}'}.npz"
    md5 = FLAGS[flag].md5[size] if flag in FLAGS else None
    return f"{RECORD}/files/{name}?download=1" + (f", MD5 {md5}" if md5 else "")


def present(path: Path) -> Path:
    """``path``, or FileNotFoundError saying which file to put there and where to get it."""
    path = Path(path)
    if not path.is_file():
        flag, size = identify(path)
        what = (f"put {path.name} there (download: {published(flag, size)})" if flag in FLAGS else
                f"put a MedMNIST .npz there (e.g. dermamnist_64.npz from {RECORD})")
        raise FileNotFoundError(f"MedMNIST file {path} (ingest.root) not found; {what}")
    return path


def read(path: Path) -> MedMNIST:
    """The file at ``path``, checked: exists, its MD5 when the name is a published file's, 2D single-label, the six
    arrays of the format with matching shapes. Raises FileNotFoundError / InputError naming the file and the fix."""
    path = present(path)
    flag, size = identify(path)
    if flag in VOLUMES:
        raise InputError(f"{path} is a 3D MedMNIST file (volumes, not images); use a 2D flag such as dermamnist", path)
    if flag is not None and FLAGS[flag].task.startswith("multi-label"):
        raise InputError(_multi_label(path, len(FLAGS[flag].labels)), path)
    if flag is not None:
        with path.open("rb") as f:
            md5 = hashlib.file_digest(f, "md5").hexdigest()
        if md5 != FLAGS[flag].md5[size]:
            raise InputError(f"{path} has MD5 {md5}, not the published {path.name}'s {FLAGS[flag].md5[size]}: an incomplete "
                             f"download or an edited copy; download it again ({published(flag, size)}), or give a file "
                             "you changed on purpose a name of your own", path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise InputError(f"{path} lacks {', '.join(missing)}: a MedMNIST file holds {', '.join(KEYS)} "
                                 f"(it holds {', '.join(npz.files) or 'nothing'})", path)
            arrays = {k: npz[k] for k in KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"{path} is not a readable .npz file ({err}); download it again", path) from None
    images = {s: _images(path, s, arrays[f"{s}_images"]) for s in SPLITS}
    labels = {s: _labels(path, s, arrays[f"{s}_labels"], len(images[s])) for s in SPLITS}
    shapes = {s: images[s].shape[1:] for s in SPLITS}
    if len(set(shapes.values())) > 1:
        raise InputError(f"{path}: the splits' images differ in shape ({', '.join(f'{s} {shapes[s]}' for s in SPLITS)})", path)
    if flag is not None:
        top = max(int(v.max(initial=0)) for v in labels.values())
        if top >= len(FLAGS[flag].labels):
            raise InputError(f"{path}: label {top} is not one of {flag}'s {len(FLAGS[flag].labels)} classes", path)
    return MedMNIST(flag, images, labels)


def _multi_label(path: Path, columns: int) -> str:
    return (f"{path} is multi-label (labels with {columns} columns, a 0/1 per finding, as ChestMNIST's): qaug's classifiers "
            "take one class per image; use a single-label flag, or write the images of the classes you want to an image folder")


def _images(path: Path, split: str, images: np.ndarray) -> np.ndarray:
    ok = images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)
    if not ok or images.dtype != np.uint8:
        raise InputError(f"{path}: {split}_images is {images.dtype} {images.shape}; MedMNIST images are uint8 (N, H, W) "
                         "gray or (N, H, W, 3) RGB", path)
    if min(images.shape[1:3]) < MIN_SIDE:
        raise InputError(f"{path}: {split}_images are {images.shape[1]}×{images.shape[2]} pixels, smaller than "
                         f"{MIN_SIDE}×{MIN_SIDE}", path)
    return images


def _labels(path: Path, split: str, labels: np.ndarray, n: int) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] > 1:
        raise InputError(_multi_label(path, labels.shape[1]), path)
    if labels.ndim not in (1, 2) or len(labels) != n:
        raise InputError(f"{path}: {split}_labels has shape {labels.shape} for {n} images; MedMNIST labels are (N, 1)", path)
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise InputError(f"{path}: {split}_labels must be non-negative integers (class values), got {labels.dtype}", path)
    return labels.reshape(-1).astype(np.int64)
