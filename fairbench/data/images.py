"""Decoding image files into one uint8 (N, 3, size, size) array.

The face benchmarks ship as thousands of JPEG/PNG files. Each is decoded once (then cached, see
``cache.py``), center-cropped to a square and resized the way torchvision's ``CenterCrop`` and
``Resize`` treat a PIL image in the papers' code: the crop box is rounded as torchvision rounds it,
and PIL's bilinear filter antialiases when it shrinks. Pillow releases the GIL while decoding and
resizing, so a thread pool spreads the files over the cores.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from ..core.errors import FairbenchError
from ..core.progress import progress

DECODE_THREADS = min(8, os.cpu_count() or 1)


def center_box(width: int, height: int, side: int) -> tuple[int, int, int, int]:
    """The ``side``-square box in the middle of the image (outside parts read as black)."""
    left = int(round((width - side) / 2))
    top = int(round((height - side) / 2))
    return left, top, left + side, top + side


def decode_image(path: str, size: int, crop: int | None = None) -> np.ndarray:
    """(3, size, size) uint8: crop ``crop`` pixels square from the center (default: the largest
    square), then resize to ``size``."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            side = crop or min(image.size)
            if image.size != (side, side):
                image = image.crop(center_box(*image.size, side))
            if side != size:
                image = image.resize((size, size), Image.BILINEAR)
            return np.asarray(image).transpose(2, 0, 1)
    except FileNotFoundError:
        raise FairbenchError(f"{path}: image file not found") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise FairbenchError(f"{path}: cannot decode image ({e})") from None


def decode_images(paths: list[str], size: int, crop: int | None = None, desc: str = "decoding images") -> np.ndarray:
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)

    def decode_into(i: int) -> None:
        out[i] = decode_image(paths[i], size, crop)

    pool = ThreadPoolExecutor(DECODE_THREADS)
    try:
        for _ in progress(pool.map(decode_into, range(len(paths))), desc=desc, total=len(paths)):
            pass
    finally:
        pool.shutdown(cancel_futures=True)  # a bad file fails the load now, not after the rest decode
    return out
