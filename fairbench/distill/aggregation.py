"""Group aggregation: how per-sample statistics of a real batch become the matching targets.

Every target of every variant is a weighted mean of per-sample statistics (embeddings for DM,
per-sample losses whose gradients DC matches), so a variant is fully described by three tensors:
which *term* each real sample feeds, its weight inside that term, and which terms exist.

- ``vanilla``: one term per class, weights 1/n_c — the pooled mean, where the majority group dominates.
- ``fairdd``:  one term per (class, group) present, weights 1/n_cg — each group matched with equal
               weight, the terms summed (FairDD).
- ``cobra``:   one term per class, weights 1/(G_c · n_cg) — the uniform mean of the present groups'
               means, the closed-form barycenter under squared Euclidean cost (COBRA).
- ``wbary``:   matches distributions, not means: its target is the free-support Wasserstein
               barycenter of the groups' point clouds (``barycenter.py``, ``feature_targets.py``).
               Where a wbary distiller still needs a single mean (CAFE's inner layers and its
               discrimination term) it takes COBRA's weights, the barycenter of the means.

Everything is computed with ``bincount``/``index_add_`` on the statistics' device: no Python loop
over samples, groups or classes, and no host sync.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

MEAN_AGGREGATIONS = ("vanilla", "fairdd", "cobra")   # targets are weighted means of per-sample statistics
AGGREGATIONS = MEAN_AGGREGATIONS + ("wbary",)        # wbary: feature distributions, for feature matching


@dataclass
class MatchingTerms:
    term: torch.Tensor      # (N,) the term each real sample feeds, in [0, num_classes * terms_per_class)
    weight: torch.Tensor    # (N,) the sample's weight inside its term's weighted mean
    active: torch.Tensor    # (num_classes, terms_per_class) bool: the term exists in this batch
    terms_per_class: int

    @property
    def num_classes(self) -> int:
        return self.active.shape[0]

    def reduce(self, stats: torch.Tensor) -> torch.Tensor:
        """Per-sample statistics (N, ...) → targets (num_classes, terms_per_class, ...)."""
        flat = stats.reshape(len(stats), -1)
        targets = flat.new_zeros(self.active.numel(), flat.shape[1])
        targets.index_add_(0, self.term, flat * self.weight.to(flat.dtype).unsqueeze(1))
        return targets.view(*self.active.shape, *stats.shape[1:])


def matching_terms(aggregation: str, labels: torch.Tensor, groups: torch.Tensor,
                   num_classes: int, num_groups: int) -> MatchingTerms:
    cell = labels * num_groups + groups
    cell_count = torch.bincount(cell, minlength=num_classes * num_groups).view(num_classes, num_groups)
    present = cell_count > 0
    if aggregation == "vanilla":
        class_count = cell_count.sum(1)
        return MatchingTerms(labels, 1.0 / class_count[labels], (class_count > 0).unsqueeze(1), 1)
    if aggregation == "fairdd":
        return MatchingTerms(cell, 1.0 / cell_count.flatten()[cell], present, num_groups)
    if aggregation in ("cobra", "wbary"):
        groups_present = present.sum(1)
        weight = 1.0 / (cell_count.flatten()[cell] * groups_present[labels])
        return MatchingTerms(labels, weight, (groups_present > 0).unsqueeze(1), 1)
    raise ValueError(f"unknown aggregation {aggregation!r}; choose from {AGGREGATIONS}")
