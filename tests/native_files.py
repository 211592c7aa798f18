"""Tiny dataset files in their native formats, written by the tests themselves (no downloads)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def write_mnist(root: Path, per_class_train: int = 20, per_class_test: int = 10, folder: str = "MNIST",
                compress: bool = False, seed: int = 0) -> Path:
    """idx files under ``root/<folder>/raw`` in torchvision's layout: digits are random blobs."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    for prefix, per_class in (("train", per_class_train), ("t10k", per_class_test)):
        labels = np.repeat(np.arange(10), per_class)
        rng.shuffle(labels)
        images = rng.integers(0, 256, (len(labels), 28, 28))
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, compress)
    return raw
