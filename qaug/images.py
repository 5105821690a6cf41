"""An image folder's files as one array: each file opened, checked, brought to one mode and resized, every
conversion said once (a count and an example file), every refusal naming the file and the fix.

What each file becomes, and why:

* gray: ``1`` and ``L``, ``LA`` with an opaque alpha, and palette images (``P``, ``PA``) whose used palette
  colours are all gray (a gray PNG saved with a palette is still gray: it must not turn the set to colour).
* colour: ``RGB``; palette images with a colour; ``RGBA``/``PA`` with an opaque alpha; ``CMYK``, ``YCbCr``,
  ``HSV`` by Pillow's conversion to RGB (no colour profile: a CMYK print file's colours shift somewhat).
* ``ingest.channels: auto`` makes the set gray when every file is gray, else colour: its gray files are
  repeated over 3 channels (said once, with a colour file as the example). ``gray`` / ``rgb`` force one.

Refused before any work, because converting would change the images in a way only the user can decide or
the file is no image for this pipeline:

* transparency (an alpha channel or palette transparency with any pixel not opaque): what shows through
  (black, white, the colours stored under transparent pixels) becomes part of the training images; flatten
  the files onto the background you want first. An alpha that is opaque everywhere is dropped (lossless).
* 16/32-bit images (``I;16``, ``I``, ``F``): 8 bits would clip them.
* more pixels than Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, ~89 Mpx, where Pillow
  warns; it refuses at twice that): qaug shrinks every image to ``ingest.image_size`` (at most 256 px), and
  decoding such a file costs hundreds of MB, so it is a mistake or a bomb.
* smaller than 8×8 pixels (``ingest.image_size``'s minimum): enlarging it invents its content, and a 1×1
  file is a placeholder, not a sample. scikit-learn's 8×8 digits pass.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from qaug.io import InputError

log = logging.getLogger("qaug.ingest")
MIN_SIDE = 8  # ingest.image_size's minimum
DEEP_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}  # 16/32-bit: converting to 8 bits would clip them
_GRAY = {"1", "L", "LA", "La"}
_PALETTE = {"P", "PA"}
_ALPHA = {"LA", "La", "PA", "RGBA", "RGBa"}
_ALPHA_FIX = ("flatten the folder's images onto the background you want first (e.g. ImageMagick: "
              "`mogrify -background white -alpha remove -alpha off FILE`)")


def load_images(files: Sequence[Path], channels: str, size: int) -> np.ndarray:
    """``files`` as (n, C, size, size) float32 in [0, 1]: C = 1 when ``channels`` is gray, or auto and every file
    is gray; else 3. Raises InputError naming the first file that cannot be used."""
    target = {"gray": "L", "rgb": "RGB"}.get(channels)
    arrays, gray, conversions = [], [], {}
    for path in files:
        with _open(path) as im:
            tone = _tone(im, path)
            mode = target or ("L" if tone == "gray" else "RGB")
            if im.mode != mode:
                kind = f"{im.mode}{' (gray palette)' if im.mode in _PALETTE and tone == 'gray' else ''} → {mode}"
                conversions.setdefault(kind, []).append(path)
                try:
                    im = im.convert(mode)
                except ValueError as err:
                    raise InputError(f"{path} is a {im.mode} image Pillow cannot convert to {mode} ({err}); save it as RGB") from None
            arrays.append(np.asarray(im.resize((size, size), Image.Resampling.LANCZOS)))
            gray.append(mode == "L")
    for kind, paths in conversions.items():
        log.info("image folder: converted %d image(s) %s (e.g. %s)", len(paths), kind, paths[0])
    if target is None and any(gray) and not all(gray):  # auto, mixed: the set is colour
        log.info("image folder: %d gray image(s) repeated over 3 channels, since %d are colour (e.g. %s; "
                 "ingest.channels: gray makes the set gray)", sum(gray), gray.count(False), files[gray.index(False)])
        arrays = [np.repeat(a[..., None], 3, axis=-1) if g else a for a, g in zip(arrays, gray)]
    one = target != "RGB" and all(gray)
    if not arrays:
        return np.zeros((0, 1 if one else 3, size, size), np.float32)
    images = np.stack(arrays).astype(np.float32) / 255.0
    return images[:, None] if one else images.transpose(0, 3, 1, 2)


def _open(path: Path) -> Image.Image:
    """The decoded image, or InputError: unreadable, over the decompression-bomb limit, 16/32-bit or too small
    (all but the first known from the header, before decoding)."""
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with path.open("rb") as fp:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, with the file named
                im = Image.open(fp)
            if limit and im.width * im.height > limit:
                raise InputError(_too_big(path, f"{im.width}×{im.height} pixels", limit))
            if im.mode in DEEP_MODES:
                raise InputError(f"{path} is a {im.mode} (16/32-bit) image; convert the folder to 8-bit PNG/JPEG first")
            if min(im.size) < MIN_SIDE:
                raise InputError(f"{path} is {im.width}×{im.height} pixels, smaller than {MIN_SIDE}×{MIN_SIDE} (the smallest "
                                 "ingest.image_size): too little to resize into a training image; remove or replace it")
            im.load()
    except Image.DecompressionBombError as err:  # over twice the limit: Pillow refuses to open it
        pixels = re.search(r"\((\d+) pixels\)", str(err))
        raise InputError(_too_big(path, f"{int(pixels[1]):,} pixels" if pixels else str(err), limit)) from None
    except OSError as err:
        raise InputError(f"{path} is not a readable image ({err}); remove it from the image folder") from None
    return im


def _too_big(path: Path, size: str, limit: int) -> str:
    return (f"{path} is {size}, over Pillow's decompression-bomb limit of {limit:,} pixels; shrink it (qaug resizes every "
            "image to ingest.image_size, at most 256 px) or remove it from the image folder")


def _tone(im: Image.Image, path: Path) -> str:
    """"gray" or "colour" (see the module's docstring); InputError for transparent pixels."""
    if im.mode in _ALPHA or "transparency" in im.info:
        if im.convert("RGBA").getchannel("A").getextrema()[0] < 255:
            raise InputError(f"{path} has transparent pixels ({im.mode} image); what shows through them would become "
                             f"part of the training images: {_ALPHA_FIX}")
    if im.mode in _GRAY:
        return "gray"
    if im.mode in _PALETTE:
        used = np.unique(np.asarray(im.getchannel(0)))
        palette = np.asarray(im.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
        colours = palette[used[used < len(palette)]]
        return "gray" if (colours == colours[:, :1]).all() else "colour"
    return "colour"
