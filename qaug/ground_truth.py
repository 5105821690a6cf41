"""An ISIC-style ground-truth CSV → each image id's class, every malformed row refused by its line number.

The first column is the image id: the image's file name without extension (``ISIC_0000000`` for
``ISIC_0000000.jpg``). The classes are either one-hot columns, one per class, exactly one 1 in each row (the
ISIC 2018/2019 ground truth: ``image,MEL,NV,BCC,...`` with values written ``1.0``/``0.0``), or one label column
named by ``ingest.label_column`` (e.g. Fitzpatrick17k's ``three_partition_label``, whose first column ``md5hash`` names
the image). A row with no class or two is a labelling error only the user can settle, so it is refused, not skipped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from qaug.io import InputError


@dataclass(frozen=True)
class GroundTruth:
    path: Path
    classes: tuple[str, ...]  # the one-hot columns in file order, or the label column's values sorted
    rows: tuple[tuple[int, str, str], ...]  # (line in the file, image id, class)


def read(path: Path, label_column: str = "") -> GroundTruth:
    """The CSV at ``path`` (one-hot columns when ``label_column`` is empty); FileNotFoundError or InputError naming
    the file, the line and the fix."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ground-truth CSV {path} (ingest.labels, inside ingest.root) not found; put the CSV there: "
                                "first column the image id (its file name without extension), then one-hot class columns "
                                "(ISIC: MEL, NV, BCC, ...) or a label column named by ingest.label_column")
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            lines = [(n, row) for n, row in enumerate(csv.reader(f), start=1) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text; save it as UTF-8", path) from None
    except csv.Error as err:
        raise InputError(f"{path} is not a readable CSV ({err})", path) from None
    if not lines:
        raise InputError(f"{path} is empty; its first line must name the columns (image id first)", path)
    header = [cell.strip() for cell in lines[0][1]]
    if label_column:
        if label_column not in header[1:]:
            raise InputError(f"{path} has no column {label_column!r} (ingest.label_column); its columns are {header}", path)
        column = header.index(label_column)
    elif len(header) < 2:
        raise InputError(f"{path} has no class columns after the image id ({header}); add one-hot columns or name a "
                         "label column in ingest.label_column", path)
    seen: dict[str, int] = {}
    rows = []
    for line, row in lines[1:]:
        if len(row) != len(header):
            raise InputError(f"{path} line {line} has {len(row)} fields, the header {len(header)}", path)
        image = row[0].strip()
        if not image:
            raise InputError(f"{path} line {line} has no image id in its first column", path)
        if image in seen:
            raise InputError(f"{path} line {line} repeats image id {image!r} of line {seen[image]}; keep one row per image", path)
        seen[image] = line
        label = row[column].strip() if label_column else _one_hot(path, line, image, header, row)
        if not label:
            raise InputError(f"{path} line {line} ({image}) has no label in column {label_column!r}", path)
        rows.append((line, image, label))
    if label_column:
        classes = tuple(sorted({label for _, _, label in rows}, key=lambda c: (not c.isdigit(), int(c) if c.isdigit() else 0, c)))
    else:
        classes = tuple(header[1:])
    return GroundTruth(path, classes, tuple(rows))


def _one_hot(path: Path, line: int, image: str, header: list[str], row: list[str]) -> str:
    """The one column of ``row`` holding 1 (values 0/1, also written 0.0/1.0)."""
    ones = []
    for name, cell in zip(header[1:], row[1:]):
        try:
            value = float(cell)
        except ValueError:
            value = None
        if value not in (0.0, 1.0):
            raise InputError(f"{path} line {line} ({image}): column {name} holds {cell.strip()!r}; one-hot columns hold 0 or 1 "
                             "(for a column of class names set ingest.label_column)", path)
        if value == 1.0:
            ones.append(name)
    if len(ones) != 1:
        raise InputError(f"{path} line {line} ({image}) has {len(ones)} classes marked 1 ({', '.join(ones) or 'none'}); "
                         "a one-hot row marks exactly one: fix the row or remove it", path)
    return ones[0]
