"""Choosing samples per (class, group) cell, vectorised: the balanced test splits and the skewed
train splits of the benchmarks are all "the first k of each cell in a seeded random order"."""

from __future__ import annotations

import torch


def rank_within(keys: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each sample's position among the samples with the same key, in a seeded random order."""
    order = torch.randperm(len(keys), generator=generator)
    sorted_keys, position = torch.sort(keys[order], stable=True)
    counts = torch.bincount(sorted_keys)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(keys)
    rank[order[position]] = torch.arange(len(keys)) - starts[sorted_keys]
    return rank


def counts(index: torch.Tensor, size: int) -> torch.Tensor:
    """How many times each of ``0..size-1`` occurs in ``index``: ``bincount`` with a fixed size,
    summed with ``index_add_`` so that a GPU never waits on the host (a distillation step calls it)."""
    return index.new_zeros(size).index_add_(0, index, torch.ones_like(index))


def cell_counts(labels: torch.Tensor, groups: torch.Tensor, num_classes: int, num_groups: int) -> torch.Tensor:
    """Samples per (class, group) cell, shape (num_classes, num_groups); a sample whose group is
    unknown (negative) counts in no cell (it goes to an extra bin that is dropped)."""
    size = num_classes * num_groups
    cells = torch.where(groups >= 0, labels * num_groups + groups, size)
    return counts(cells, size + 1)[:size].view(num_classes, num_groups)


def balanced_subset(
    labels: torch.Tensor, groups: torch.Tensor, num_groups: int, per_cell: int, generator: torch.Generator
) -> torch.Tensor:
    """Sorted indices of ``per_cell`` random samples from every (class, group) cell.

    A test split balanced this way weighs every group equally in accuracy, so a gap between groups
    cannot hide behind a majority.
    """
    return torch.nonzero(rank_within(labels * num_groups + groups, generator) < per_cell).flatten()
