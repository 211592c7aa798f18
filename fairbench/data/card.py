"""The dataset card of ``fairbench data NAME``: what a benchmark's splits hold, cell by cell.

The bias a benchmark measures lives in its (class, group) counts, so the card prints them for each
split, as a table or as JSON (``counts[class][group]``) for scripts.
"""

from __future__ import annotations

import json

import yaml
from tabulate import tabulate

from ..errors import FairbenchError
from ..registry import entry
from .dataset import DatasetSplits

RUN_KEYS = ("data_root", "download")


def parse_settings(args: list[str], data_root: str) -> tuple[str, bool, dict]:
    """``key=value`` arguments → (data_root, download, dataset parameters); values are YAML."""
    settings = {"data_root": data_root, "download": False}
    params = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise FairbenchError(f"malformed setting '{arg}'; write key=value, e.g. data_root=~/data or rho=0.95")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        (settings if key in RUN_KEYS else params)[key] = parsed
    if not isinstance(settings["download"], bool):
        raise FairbenchError(f"download must be true or false, got {settings['download']!r}")
    return str(settings["data_root"]), settings["download"], params


def card(splits: DatasetSplits) -> dict:
    train = splits.train
    return {
        "name": splits.name,
        "image_shape": list(train.image_shape),
        "classes": train.class_names,
        "groups": train.group_names,
        "splits": {split: {"n": len(data), "counts": data.counts().tolist()}
                   for split, data in (("train", splits.train), ("test", splits.test))},
    }


def card_json(splits: DatasetSplits) -> str:
    return json.dumps(card(splits))


def card_text(splits: DatasetSplits) -> str:
    about = card(splits)
    lines = [
        f"{splits.name}: {entry('datasets', splits.name).get('description', '')}",
        f"source: {splits.source}",
        f"parameters: {' '.join(f'{k}={v}' for k, v in splits.params.items()) or 'none'}",
        f"image shape: {' x '.join(str(d) for d in about['image_shape'])}",
        f"classes: {', '.join(about['classes'])}",
        f"groups: {', '.join(about['groups'])}",
    ]
    for split, summary in about["splits"].items():
        rows = [[name, *row, sum(row)] for name, row in zip(about["classes"], summary["counts"])]
        table = tabulate(rows, headers=["class \\ group", *about["groups"], "total"])
        lines += ["", f"{split}: {summary['n']} samples, per (class, group) cell", table]
    return "\n".join(lines)
