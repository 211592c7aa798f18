"""Datasets with group labels: the registry entries in ``registry/datasets`` and their builders.

A dataset entry names a builder (``builder:``), its fixed arguments (``fixed:``), the parameters a
user may set (``params:``, with ``dataset.KEY=VALUE``) and their valid ranges (``ranges:``, interval
notation such as ``'(0, 1]'`` or ``'[1, inf)'``), checked before anything runs. A plugin registers
a dataset in code with :func:`register_dataset`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from ..core.errors import DataNotFoundError, FairbenchError, os_reason
from ..core.overrides import apply_overrides
from ..core.registry import add_entry, entries, entry, source_of
from . import bffhq, celeba, cifar, digits, group_labels, utkface  # noqa: F401  (register their builders)
from .builders import DATASET_BUILDERS
from .dataset import DatasetSplits, GroupDataset
from .download import fetch

__all__ = [
    "DatasetSplits",
    "GroupDataset",
    "dataset_names",
    "dataset_params",
    "dataset_settings",
    "load_dataset",
    "register_dataset",
]

_INTERVAL = re.compile(r"^\s*([\[(])\s*(-?inf|[-+\d.eE]+)\s*,\s*(-?inf|[-+\d.eE]+)\s*([\])])\s*$")


def register_dataset(name: str, *, params: dict | None = None, ranges: dict | None = None, description: str = ""):
    """Decorate a builder ``fn(root: Path, **params) -> DatasetSplits`` as dataset ``name``.

    ``params`` are its user-settable parameters with their defaults (``dataset.KEY=VALUE``),
    ``ranges`` their valid intervals (``{"rho": "(0, 1]"}``); ``root`` is the run's ``data_root``.
    """

    def decorate(fn):
        DATASET_BUILDERS.add(name, fn, source_of(fn))
        add_entry(
            "datasets",
            name,
            {
                "description": description or (fn.__doc__ or "").strip().split("\n")[0],
                "builder": name,
                "params": dict(params or {}),
                "ranges": dict(ranges or {}),
            },
            source_of(fn),
        )
        return fn

    return decorate


def dataset_names() -> list[str]:
    return sorted(entries("datasets"))


def _check_range(name: str, key: str, value, interval: str) -> None:
    match = _INTERVAL.match(str(interval))
    if not match:
        raise FairbenchError(f"dataset '{name}': range {interval!r} of {key} is not an interval like '(0, 1]'")
    left, low, high, right = match.groups()
    low, high = float(low), float(high)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        return
    inside = (value > low or (left == "[" and value == low)) and (value < high or (right == "]" and value == high))
    if not inside:
        raise FairbenchError(f"dataset '{name}': {key} must lie in {interval}, got {value}")


def _optional(spec: dict) -> dict:
    """Parameters left out of the resolved ones at their default (so protocols that do not use
    them keep their ids): every dataset's group-label keys and the entry's ``optional:`` ones."""
    return {**group_labels.DEFAULTS, **(spec.get("optional") or {})}


def dataset_settings(name: str) -> set[str]:
    """Every ``dataset.KEY`` a dataset takes: its ``params``, its ``optional`` ones, the group-label keys."""
    spec = entry("datasets", name)
    return set(spec.get("params") or {}) | set(_optional(spec))


def dataset_params(name: str, overrides: dict | None = None) -> dict:
    """The user-settable parameters of a dataset entry with ``overrides`` applied and checked; an
    optional parameter (:func:`_optional`) appears only when it differs from its default."""
    spec = entry("datasets", name)
    own, optional = spec.get("params") or {}, _optional(spec)
    merged = apply_overrides(f"dataset '{name}'", {**own, **optional}, overrides)
    group_labels.check_policy(merged)
    params = {k: v for k, v in merged.items() if k in own or v != optional[k]}
    # settings that change nothing are left out too, so equal sets share one protocol
    if not group_labels.active(params):
        params = {k: v for k, v in params.items() if k not in group_labels.DEFAULTS}
    elif params.get("group_known", 1.0) == 1:
        params.pop("group_unknown", None)
    for key, interval in {**group_labels.RANGES, **(spec.get("ranges") or {})}.items():
        if key in merged:
            _check_range(name, key, merged[key], interval)
    return params


def load_dataset(
    name: str, data_root: str | Path, overrides: dict | None = None, download: bool = False
) -> DatasetSplits:
    """The dataset's splits, read from its native files under ``data_root``.

    With ``download``, files that are missing are fetched first where the entry names a
    ``download`` source; files already there are used as they are.
    """
    spec = entry("datasets", name)
    params = dataset_params(name, overrides)
    build = DATASET_BUILDERS.get(spec["builder"])
    root = Path(data_root).expanduser().absolute()
    # the group-label keys act on the built split, not inside the builder
    built = {k: v for k, v in params.items() if k not in group_labels.DEFAULTS}
    try:
        try:
            splits = build(root, **(spec.get("fixed") or {}), **built)
        except DataNotFoundError:
            if not (download and spec.get("download")):
                raise
            fetch(spec["download"], root)
            splits = build(root, **(spec.get("fixed") or {}), **built)
    except OSError as error:  # a folder or file this user may not read (EACCES), an I/O error
        raise FairbenchError(
            f"dataset '{name}': cannot read {error.filename or root}: {os_reason(error)}; data_root={data_root} "
            "must be a folder this user can read"
        ) from None
    splits.name = name
    splits.params = params
    splits.train, splits.distiller_groups = group_labels.distiller_view(splits.train, params)
    for split in ("train", "test"):
        if len(getattr(splits, split)) == 0:
            settings = ", ".join(f"{k}={v}" for k, v in params.items())
            raise FairbenchError(
                f"dataset '{name}': the {split} split of {splits.source} is empty with {settings}; "
                "more source images or other settings are needed"
            )
    return splits
