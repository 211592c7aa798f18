"""Reader for the idx format of MNIST and Fashion-MNIST (plain or gzip), with no torchvision gate."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..core.errors import FairbenchError
from .files import missing

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def find_idx(folder: Path, stem: str, how_to_get: str) -> Path:
    """``folder/stem`` or ``folder/stem.gz``; a missing file names both and where to get it."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise missing(folder / f"{stem}[.gz]", how_to_get)


def read_idx(path: Path) -> np.ndarray:
    """The array of an idx file of unsigned bytes (MNIST's images and labels): any other element
    type would be cast to pixels silently, so it is refused, as are empty or negative dimensions."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise FairbenchError(f"{path}: cannot read idx file ({type(e).__name__}: {e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise FairbenchError(f"{path}: not an idx file (bad magic number)")
    if raw[2] != 0x08:
        raise FairbenchError(
            f"{path}: an idx file of {np.dtype(_DTYPES[raw[2]]).name} values; MNIST's idx files hold unsigned bytes"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise FairbenchError(f"{path}: truncated or corrupt idx file (a header of {ndim} dimensions)")
    dims = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">i4"))
    if any(d < 1 for d in dims):
        raise FairbenchError(f"{path}: corrupt idx file (dimensions {dims}; each must be at least 1)")
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise FairbenchError(f"{path}: truncated or corrupt idx file ({len(raw)} bytes, expected {expected})")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
