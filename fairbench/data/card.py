"""The dataset card of ``fairbench data NAME``: what a benchmark's splits hold, cell by cell.

The bias a benchmark measures lives in its (class, group) counts, so the card prints them for each
split, as a table or as JSON (``counts[class][group]``) for scripts.
"""

from __future__ import annotations

import json

from tabulate import tabulate

from ..core.registry import entry
from .dataset import DatasetSplits


def card(splits: DatasetSplits) -> dict:
    train = splits.train
    return {
        "name": splits.name,
        "image_shape": list(train.image_shape),
        "classes": train.class_names,
        "groups": train.group_names,
        "splits": {
            split: {"n": len(data), "counts": data.counts().tolist()}
            for split, data in (("train", splits.train), ("test", splits.test))
        },
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
