"""Datasets with group labels: the registry entries in ``registry/datasets`` and their builders."""

from __future__ import annotations

from pathlib import Path

from ..overrides import apply_overrides
from ..registry import entries, entry
from . import digits  # noqa: F401  (registers its builder)
from .builders import DATASET_BUILDERS
from .dataset import DatasetSplits, GroupDataset

__all__ = ["DatasetSplits", "GroupDataset", "dataset_names", "dataset_params", "load_dataset"]


def dataset_names() -> list[str]:
    return sorted(entries("datasets"))


def dataset_params(name: str, overrides: dict | None = None) -> dict:
    """The user-settable parameters of a dataset entry with ``overrides`` applied and checked."""
    return apply_overrides(f"dataset '{name}'", entry("datasets", name).get("params") or {}, overrides)


def load_dataset(name: str, data_root: str | Path, overrides: dict | None = None) -> DatasetSplits:
    spec = entry("datasets", name)
    params = dataset_params(name, overrides)
    build = DATASET_BUILDERS.get(spec["builder"])
    splits = build(Path(data_root).expanduser(), **(spec.get("fixed") or {}), **params)
    splits.name = name
    splits.params = params
    return splits
