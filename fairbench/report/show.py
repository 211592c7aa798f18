"""``fairbench show SYNSET -o grid.png``: a synthetic set as an image grid, one row per class.

Each row is labelled with its class's group make-up in the real training data (the groups with
the largest shares), which is what a fair distiller has to undo: a C-MNIST row whose real class is
90% one colour shows whether the synthetic digits kept only that colour. The dataset and its
parameters come from the set's own metadata; ``data_root=`` and ``download=`` say where its files are.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.errors import FairbenchError
from ..data import load_dataset
from ..distill.synsets import load_synset
from .plots import FORMATS, save, synset_figure

TOP_GROUPS = 3
MIN_SHARE = 0.05


def group_makeup(counts: torch.Tensor, group_names: list[str]) -> list[str]:
    """Per class, its groups of at least ``MIN_SHARE`` of the class and the rest summed, e.g.
    ``red 90% · 9 others 10%``."""
    lines = []
    for row in counts.double():
        shares = row / row.sum().clamp_min(1)
        order = torch.argsort(shares, descending=True).tolist()
        shown = [g for g in order if shares[g] >= MIN_SHARE][:TOP_GROUPS]
        rest = [g for g in order if g not in shown and shares[g] > 0]
        parts = [f"{group_names[g]} {100 * shares[g]:.0f}%" for g in shown]
        if rest:
            parts.append(f"{len(rest)} other{'s' if len(rest) > 1 else ''} {100 * float(shares[rest].sum()):.0f}%")
        lines.append(" · ".join(parts))
    return lines


def show_synset(path: str | Path, out: str | Path, data_root: str, download: bool, params: dict) -> list[Path]:
    """Draw the set at ``path`` into ``out`` (``grid.png``, or ``grid``: PNG and SVG beside it);
    ``params`` override the dataset parameters stored in it."""
    out = Path(out)
    if out.suffix not in ("", *(f".{fmt}" for fmt in FORMATS)):
        raise FairbenchError(
            f"show -o {out}: show writes {' and '.join(FORMATS).upper()} files; name the output "
            f"{out.with_suffix('.png').name} (its .svg is written beside it)"
        )
    syn, metadata = load_synset(path)
    stored = (metadata.get("key") or {}).get("dataset_params") or {}
    if not isinstance(stored, dict):
        raise FairbenchError(f"{path}: its stored dataset parameters are a {type(stored).__name__}, not a mapping")
    splits = load_dataset(metadata["dataset"], data_root, {**stored, **params}, download=download)
    train = splits.train
    if tuple(syn.images.shape[1:]) != tuple(train.image_shape) or len(syn.labels) != len(syn.images):
        raise FairbenchError(
            f"{path}: images {tuple(syn.images.shape)} with {len(syn.labels)} labels are not sets of "
            f"{metadata['dataset']}'s {tuple(train.image_shape)} images"
        )
    if len(syn.labels) and not 0 <= int(syn.labels.min()) <= int(syn.labels.max()) < train.num_classes:
        raise FairbenchError(f"{path}: labels outside {metadata['dataset']}'s classes 0..{train.num_classes - 1}")
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in (train.mean, train.std))
    images = (syn.images * std + mean).clamp(0, 1).numpy()
    figure = synset_figure(
        images, syn.labels.numpy(), train.class_names, group_makeup(train.counts(), train.group_names)
    )
    figure.suptitle(f"{metadata.get('method')} on {metadata['dataset']}, IPC {metadata.get('ipc')}", fontsize=9)
    return save(figure, out.with_suffix(""))
