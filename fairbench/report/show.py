"""``fairbench show SYNSET -o grid.png``: a synthetic set as an image grid, one row per class.

Each row is labelled with its class's group make-up in the real training data (the groups with
the largest shares), which is what a fair distiller has to undo: a C-MNIST row whose real class is
90% one colour shows whether the synthetic digits kept only that colour. The dataset and its
parameters come from the set's own metadata; ``data_root=`` and ``download=`` say where its files are.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..data import load_dataset
from ..distill.synsets import load_synset
from .plots import save, synset_figure

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
    """Draw the set at ``path`` into ``out``; ``params`` override the dataset parameters stored in it."""
    syn, metadata = load_synset(path)
    stored = (metadata.get("key") or {}).get("dataset_params") or {}
    splits = load_dataset(metadata["dataset"], data_root, {**stored, **params}, download=download)
    train = splits.train
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in (train.mean, train.std))
    images = (syn.images * std + mean).clamp(0, 1).numpy()
    figure = synset_figure(
        images, syn.labels.numpy(), train.class_names, group_makeup(train.counts(), train.group_names)
    )
    figure.suptitle(f"{metadata.get('method')} on {metadata['dataset']}, IPC {metadata.get('ipc')}", fontsize=9)
    out = Path(out)
    return save(figure, out.with_suffix("") if out.suffix in (".png", ".svg") else out)
