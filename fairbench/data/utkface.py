"""UTKFace from its image files, whose names carry the labels: ``age_gender_race_datetime.jpg``.

The target is an age bin (<20, 20-39, >=40); the group is race (White, Black, Asian, Indian) or
gender. Images of race 4 ("Others") are dropped, as in FairDD, whichever group is chosen, so both
choices see the same images. The test split takes ``test_per_cell`` random images from every
(age bin, group) cell (fewer, equally many, if a cell is smaller); the rest is the train split.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import torch

from ..core.errors import FairbenchError, unknown_choice
from .builders import dataset_builder
from .cache import cached_images
from .cells import balanced_subset, cell_counts
from .dataset import DatasetSplits, GroupDataset
from .files import require_dir
from .images import decode_images

log = logging.getLogger(__name__)

FOLDER = "UTKFace"
NAME = re.compile(r"^(\d+)_([01])_([0-4])_\d")
AGE_BINS = ["0-19", "20-39", "40+"]
AGE_EDGES = [20, 40]
GROUPS = {"race": ["White", "Black", "Asian", "Indian"], "gender": ["male", "female"]}
OTHERS = 4
HOW_TO_GET = (
    "get UTKFace.tar.gz (the Aligned&Cropped Faces) from https://susanqq.github.io/UTKFace/ "
    "and unpack it so that the images lie in <data_root>/UTKFace/"
)


def parse_names(names: list[str]) -> tuple[list[str], np.ndarray]:
    """The names that parse and their (age, gender, race) rows; the others are skipped with one
    warning that counts them (the public release has a few malformed names)."""
    kept, rows, skipped = [], [], []
    for name in names:
        match = NAME.match(name)
        if match:
            kept.append(name)
            rows.append([int(v) for v in match.groups()])
        else:
            skipped.append(name)
    if skipped:
        log.warning(
            "fairbench: UTKFace: skipped %d files whose names are not age_gender_race_datetime.jpg (e.g. %s)",
            len(skipped),
            ", ".join(skipped[:3]),
        )
    return kept, np.array(rows, dtype=np.int64).reshape(-1, 3)


@dataset_builder("utkface")
def utkface(
    root: Path, group: str, image_size: int, test_per_cell: int, seed: int, mean: list[float], std: list[float]
) -> DatasetSplits:
    if group not in GROUPS:
        raise unknown_choice("UTKFace group", group, GROUPS)
    if image_size < 1 or test_per_cell < 1:
        raise FairbenchError(f"image_size and test_per_cell must be positive, got {image_size} and {test_per_cell}")
    folder = require_dir(root / FOLDER, HOW_TO_GET)
    names, rows = parse_names(sorted(e.name for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")))
    keep = rows[:, 2] != OTHERS
    files, rows = [os.path.join(folder, n) for n, k in zip(names, keep) if k], rows[keep]
    if not files:
        raise FairbenchError(f"{folder}: no image named age_gender_race_datetime.jpg of races 0-3")
    images = torch.from_numpy(
        cached_images(
            "utkface",
            {"size": image_size},
            files,
            lambda: decode_images(files, image_size, desc="decoding UTKFace"),
            HOW_TO_GET,
        )
    )
    labels = torch.from_numpy(np.digitize(rows[:, 0], AGE_EDGES))
    groups = torch.from_numpy(rows[:, 2] if group == "race" else rows[:, 1])
    group_names = GROUPS[group]

    counts = cell_counts(labels, groups, len(AGE_BINS), len(group_names))
    per_cell = min(test_per_cell, int(counts.min()))
    if per_cell == 0:
        raise FairbenchError(
            f"{folder}: some (age bin, {group}) cell has no image (counts {counts.tolist()}); "
            "a balanced test split is impossible"
        )
    test = balanced_subset(labels, groups, len(group_names), per_cell, torch.Generator().manual_seed(seed))
    is_train = torch.ones(len(labels), dtype=torch.bool)
    is_train[test] = False

    def split(index):
        return GroupDataset(
            images=images[index],
            labels=labels[index],
            groups=groups[index],
            class_names=AGE_BINS,
            group_names=group_names,
            mean=tuple(mean),
            std=tuple(std),
        )

    return DatasetSplits(name="", train=split(torch.nonzero(is_train).flatten()), test=split(test), source=str(folder))
