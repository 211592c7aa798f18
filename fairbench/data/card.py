"""The dataset card of ``fairbench data NAME``: what a benchmark's splits hold, cell by cell.

The bias a benchmark measures lives in its (class, group) counts, so the card prints them for each
split, as a table or as JSON (``counts[class][group]``) for scripts.
"""

from __future__ import annotations

import json

from tabulate import tabulate

from ..errors import FairbenchError
from ..registry import entry
from .dataset import DatasetSplits

RUN_KEYS = {"data_root": "data", "download": False, "plugins": [], "include_path": []}


def parse_settings(args: list[str]) -> tuple[str, bool, dict]:
    """``key=value`` arguments → (data_root, download, dataset parameters), parsed like a run's
    overrides; ``plugins=`` and ``include_path=`` are activated, so a plugin's dataset has a card."""
    from ..config import activate_plugins, merge_settings, parse_overrides

    suite, dotlist = parse_overrides(args)
    if suite != "quickstart":
        raise FairbenchError("data takes no suite=; give the dataset's parameters, e.g. rho=0.95")
    settings = merge_settings(RUN_KEYS, dotlist=dotlist)
    activate_plugins(settings)
    if not isinstance(settings["download"], bool):
        raise FairbenchError(f"download must be true or false, got {settings['download']!r}")
    params = {k: v for k, v in settings.items() if k not in RUN_KEYS}
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
