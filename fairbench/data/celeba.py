"""CelebA from its official files: ``list_attr_celeba.txt``, ``list_eval_partition.txt`` and the
aligned JPEGs in ``img_align_celeba/``.

Any two of the 40 attributes make a benchmark: ``target`` is the class, ``group`` the sensitive
attribute (FairDD: Attractive / Male). Training uses the official train partition as it is; the
test split is the official test partition subsampled so that every (class, group) cell has the
size of the smallest, the FairDD protocol. The validation partition is not used.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core.errors import FairbenchError, unknown_choice
from .builders import dataset_builder
from .cache import cached_images
from .cells import balanced_subset, cell_counts
from .dataset import DatasetSplits, GroupDataset
from .files import require_dir, require_file
from .images import decode_images

FOLDER = "celeba"
ATTRIBUTES = "list_attr_celeba.txt"
PARTITION = "list_eval_partition.txt"
IMAGES = "img_align_celeba"
TRAIN, TEST = 0, 2
HOW_TO_GET = (
    f"get img_align_celeba.zip (Align&Cropped Images), Anno/{ATTRIBUTES} and Eval/{PARTITION} "
    "from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html and put them in <data_root>/celeba/ "
    f"with the JPEGs unzipped into {IMAGES}/ (torchvision.datasets.CelebA(data_root, download=True) "
    "makes the same layout)"
)


def _read_table(path: Path, skip: int, names: list[str]) -> pd.DataFrame:
    try:
        return pd.read_csv(
            path,
            sep=r"\s+",
            skiprows=skip,
            header=None,
            names=names,
            index_col=0,
            dtype={name: str if name == "file" else "Int64" for name in names},
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise FairbenchError(f"{path}: malformed ({str(e).splitlines()[0]})") from None


def read_attributes(path: Path) -> tuple[list[str], pd.DataFrame]:
    """The attribute names and a (file → 40 values in {-1, 1}) table; a row count that differs
    from the count on the first line means the file was cut short."""
    with open(path) as f:
        first, header = f.readline(), f.readline()
    try:
        expected = int(first)
    except ValueError:
        raise FairbenchError(f"{path}: the first line must be the number of images, got {first.strip()!r}") from None
    names = header.split()
    table = _read_table(path, 2, ["file", *names])
    if len(table) != expected or table.isna().any().any():
        raise FairbenchError(
            f"{path}: truncated or malformed: {expected} images announced, "
            f"{len(table.dropna())} complete rows of {len(names)} attributes found"
        )
    if not table.isin([-1, 1]).all().all():
        raise FairbenchError(f"{path}: attribute values must be -1 or 1")
    return names, table


def read_partition(path: Path, files: pd.Index) -> np.ndarray:
    """The partition (0 train, 1 validation, 2 test) of each file, in the order of ``files``."""
    table = _read_table(path, 0, ["file", "partition"])
    partition = table["partition"].reindex(files)
    if partition.isna().any():
        unlisted = partition.index[partition.isna()]
        raise FairbenchError(
            f"{path}: truncated or malformed: no partition for {len(unlisted)} images "
            f"listed in {ATTRIBUTES} (first: {unlisted[0]})"
        )
    return partition.to_numpy(dtype=np.int64)


def _attribute_column(names: list[str], role: str, name: str) -> int:
    if name not in names:
        raise unknown_choice(f"CelebA {role} attribute", name, names)
    return names.index(name)


@dataset_builder("celeba")
def celeba(
    root: Path, target: str, group: str, image_size: int, crop: int, seed: int, mean: list[float], std: list[float]
) -> DatasetSplits:
    if image_size < 1:
        raise FairbenchError(f"image_size must be a positive integer, got {image_size}")
    folder = root / FOLDER
    names, attributes = read_attributes(require_file(folder / ATTRIBUTES, HOW_TO_GET))
    columns = [_attribute_column(names, "target", target), _attribute_column(names, "group", group)]
    if target == group:
        raise FairbenchError(f"target and group are both '{target}'; choose two different attributes")
    partition = read_partition(require_file(folder / PARTITION, HOW_TO_GET), attributes.index)
    image_dir = require_dir(folder / IMAGES, HOW_TO_GET)

    # Decode every train and test image whatever the attributes, so that one cache entry serves
    # every (target, group) choice; train images first, so the train split is a view, not a copy.
    order = np.concatenate([np.flatnonzero(partition == TRAIN), np.flatnonzero(partition == TEST)])
    n_train = int((partition == TRAIN).sum())
    files = [os.path.join(image_dir, name) for name in attributes.index[order]]
    images = torch.from_numpy(
        cached_images(
            "celeba",
            {"size": image_size, "crop": crop},
            files,
            lambda: decode_images(files, image_size, crop, desc="decoding CelebA"),
            HOW_TO_GET,
        )
    )
    values = torch.from_numpy(attributes.iloc[order, columns].to_numpy(dtype=np.int64) > 0).long()
    labels, groups = values[:, 0], values[:, 1]

    test = torch.arange(n_train, len(order))
    counts = cell_counts(labels[test], groups[test], 2, 2)
    if counts.min() == 0:
        raise FairbenchError(
            f"the CelebA test partition has no image in some ({target}, {group}) cell "
            f"(counts {counts.tolist()}); a balanced test split is impossible"
        )
    keep = balanced_subset(labels[test], groups[test], 2, int(counts.min()), torch.Generator().manual_seed(seed))
    test = test[keep]

    def split(index):
        return GroupDataset(
            images=images[index],
            labels=labels[index],
            groups=groups[index],
            class_names=[f"not {target}", target],
            group_names=[f"not {group}", group],
            mean=tuple(mean),
            std=tuple(std),
        )

    return DatasetSplits(name="", train=split(slice(0, n_train)), test=split(test), source=str(folder))
