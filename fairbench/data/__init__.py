"""Datasets with group labels: the registry entries in ``registry/datasets`` and their builders."""

from __future__ import annotations

from pathlib import Path

from ..errors import DataNotFoundError, FairbenchError
from ..overrides import apply_overrides
from ..registry import entries, entry
from . import bffhq, celeba, cifar, digits, utkface  # noqa: F401  (register their builders)
from .builders import DATASET_BUILDERS
from .dataset import DatasetSplits, GroupDataset
from .download import fetch

__all__ = ["DatasetSplits", "GroupDataset", "dataset_names", "dataset_params", "load_dataset"]


def dataset_names() -> list[str]:
    return sorted(entries("datasets"))


def dataset_params(name: str, overrides: dict | None = None) -> dict:
    """The user-settable parameters of a dataset entry with ``overrides`` applied and checked."""
    return apply_overrides(f"dataset '{name}'", entry("datasets", name).get("params") or {}, overrides)


def load_dataset(name: str, data_root: str | Path, overrides: dict | None = None,
                 download: bool = False) -> DatasetSplits:
    """The dataset's splits, read from its native files under ``data_root``.

    With ``download``, files that are missing are fetched first where the entry names a
    ``download`` source; files already there are used as they are.
    """
    spec = entry("datasets", name)
    params = dataset_params(name, overrides)
    build = DATASET_BUILDERS.get(spec["builder"])
    root = Path(data_root).expanduser().absolute()
    try:
        splits = build(root, **(spec.get("fixed") or {}), **params)
    except DataNotFoundError:
        if not (download and spec.get("download")):
            raise
        fetch(spec["download"], root)
        splits = build(root, **(spec.get("fixed") or {}), **params)
    splits.name = name
    splits.params = params
    for split in ("train", "test"):
        if len(getattr(splits, split)) == 0:
            settings = ", ".join(f"{k}={v}" for k, v in params.items())
            raise FairbenchError(f"dataset '{name}': the {split} split of {splits.source} is empty with {settings}; "
                                 "more source images or other settings are needed")
    return splits
