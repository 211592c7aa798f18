"""The dataset card of ``fairbench data NAME``: what a benchmark's splits hold, cell by cell.

The bias a benchmark measures lives in its (class, group) counts, so the card prints them for each
split, as a table or as JSON (``counts[class][group]``) for scripts. Where the distiller sees other
groups than the true ones (``group_noise``, ``group_known``), the train split's counts are the
distiller's, ``true_counts`` the builder's, and ``unknown`` the samples per class with no group;
the table shows them side by side (``seen / true``).
"""

from __future__ import annotations

import json

from tabulate import tabulate

from ..core.registry import entry
from .dataset import DatasetSplits


def card(splits: DatasetSplits) -> dict:
    train = splits.train
    about = {
        "name": splits.name,
        "image_shape": list(train.image_shape),
        "classes": train.class_names,
        "groups": train.group_names,
        "splits": {
            split: {"n": len(data), "counts": data.counts().tolist()}
            for split, data in (("train", splits.train), ("test", splits.test))
        },
    }
    if splits.distiller_groups:
        seen = about["splits"]["train"]
        seen["true_counts"] = train.true_counts().tolist()
        seen["unknown"] = [
            n - sum(row) for n, row in zip(train.labels.bincount(minlength=train.num_classes).tolist(), seen["counts"])
        ]
        about["distiller_groups"] = splits.distiller_groups
    return about


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
    if "distiller_groups" in about:
        lines.append(
            "the distiller sees other groups than the true ones: "
            + " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in about["distiller_groups"].items()
            )
        )
    for split, summary in about["splits"].items():
        if "true_counts" in summary:  # the distiller's counts beside the true ones
            rows = [
                [name, *(f"{a} / {b}" for a, b in zip(seen, true)), unknown, sum(true)]
                for name, seen, true, unknown in zip(
                    about["classes"], summary["counts"], summary["true_counts"], summary["unknown"]
                )
            ]
            table = tabulate(rows, headers=["class \\ group (seen / true)", *about["groups"], "unknown", "total"])
        else:
            rows = [[name, *row, sum(row)] for name, row in zip(about["classes"], summary["counts"])]
            table = tabulate(rows, headers=["class \\ group", *about["groups"], "total"])
        lines += ["", f"{split}: {summary['n']} samples, per (class, group) cell", table]
    return "\n".join(lines)
