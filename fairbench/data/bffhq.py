"""BFFHQ (biased FFHQ) from its release folders of PNGs.

The target is age (young / old) and the group gender, both read from the file name's last two
fields ``_<target>_<group>.png``; the release's bias-aligned images are young women (``_0_0``) and
old men (``_1_1``). Training uses the ``0.5pct`` split (``align/`` + ``conflict/``: 0.5% of the
images go against the bias), testing the ``test/`` folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..core.errors import FairbenchError
from .builders import dataset_builder
from .cache import cached_images
from .dataset import DatasetSplits, GroupDataset
from .files import missing, require_dir
from .images import decode_images

FOLDER = "bffhq"
TRAIN_SPLIT = "0.5pct"
NAME = re.compile(r"_(\d+)_(\d+)\.png$")
CLASSES = ["young", "old"]
GROUPS = ["female", "male"]
HOW_TO_GET = (
    "BFFHQ is distributed by the authors of 'Learning Debiased Representation via Disentangled "
    "Feature Augmentation' (see https://github.com/kakaoenterprise/Learning-Debiased-Disentangled); "
    "unpack it so that <data_root>/bffhq/0.5pct/{align,conflict}/<label>/*.png and "
    "<data_root>/bffhq/test/*.png exist"
)


def list_pngs(folder: Path, pattern: str) -> list[str]:
    files = sorted(str(p) for p in require_dir(folder, HOW_TO_GET).glob(pattern))
    if not files:
        raise missing(folder / pattern, HOW_TO_GET)
    return files


def parse_names(files: list[str]) -> np.ndarray:
    """(target, group) per file; a name that does not end ``_<0|1>_<0|1>.png`` is an error, since
    a stray or renamed file would silently change the bias ratio."""
    rows = []
    for path in files:
        match = NAME.search(path)
        if not match or not {match[1], match[2]} <= {"0", "1"}:
            raise FairbenchError(f"{path}: a BFFHQ file name must end _<target>_<group>.png with 0 or 1 in both")
        rows.append((int(match[1]), int(match[2])))
    return np.array(rows, dtype=np.int64)


@dataset_builder("bffhq")
def bffhq(root: Path, image_size: int, mean: list[float], std: list[float]) -> DatasetSplits:
    if image_size < 1:
        raise FairbenchError(f"image_size must be a positive integer, got {image_size}")
    folder = root / FOLDER
    train_dir = folder / TRAIN_SPLIT
    train = list_pngs(train_dir / "align", "*/*.png") + list_pngs(train_dir / "conflict", "*/*.png")
    test = list_pngs(folder / "test", "*.png")
    files = train + test
    rows = torch.from_numpy(parse_names(files))
    images = torch.from_numpy(
        cached_images(
            "bffhq",
            {"size": image_size},
            files,
            lambda: decode_images(files, image_size, desc="decoding BFFHQ"),
            HOW_TO_GET,
        )
    )

    def split(index):
        return GroupDataset(
            images=images[index],
            labels=rows[index, 0],
            groups=rows[index, 1],
            class_names=CLASSES,
            group_names=GROUPS,
            mean=tuple(mean),
            std=tuple(std),
        )

    return DatasetSplits(
        name="", train=split(slice(0, len(train))), test=split(slice(len(train), None)), source=str(folder)
    )
