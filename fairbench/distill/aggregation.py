"""Group aggregation: how per-sample statistics of a real batch become the matching targets.

Every target of every mean variant is a weighted mean of per-sample statistics (embeddings for DM,
per-sample losses whose gradients DC matches), so a variant is fully described by three tensors:
which *term* each real sample feeds, its weight inside that term, and which terms exist. A variant
is a function ``(labels, groups, num_classes, num_groups) -> MatchingTerms`` registered with
:func:`register_variant`; the built-in ones below register exactly as a plugin's would.

- ``vanilla``: one term per class, weights 1/n_c — the pooled mean, where the majority group dominates.
- ``fairdd``:  one term per (class, group) present, weights 1/n_cg — each group matched with equal
               weight, the terms summed (FairDD).
- ``cobra``:   one term per class, weights 1/(G_c · n_cg) — the uniform mean of the present groups'
               means, the closed-form barycenter under squared Euclidean cost (COBRA).
- ``wbary`` (``feature_targets.py``) is a *distribution* variant: its feature target is the
               groups' Wasserstein barycenter; its terms (COBRA's) serve where a base still needs
               one mean.

Kinds: a ``mean`` variant combines with every base whose statistic is a weighted mean (dm, dc,
dsa, idc, cafe, and mtt through its balanced experts); a ``distribution`` variant also brings a
feature target and combines with the feature-matching bases (dm, cafe). A base declares the kinds
it accepts (``Distiller.accepts``).

Unknown groups: a group id of :data:`UNKNOWN_GROUP` (-1) means the sample's group is not known
(``dataset.group_known``). It feeds no group term: its weight is 0 in ``fairdd`` and ``cobra``
(their terms are all group terms), while ``vanilla``, whose term pools a class, still uses it. A
class whose batch holds no known group has no active term in that step. A plugin's variant must
do the same (``fairbench.testing.check_method`` checks it): an unknown sample's term index still
lies in its class's range, and its weight is 0 in every term built from groups.

Everything is computed with ``index_add_`` on the statistics' device: no Python loop over samples,
groups or classes, and no host sync (``torch.bincount`` would sync twice per call on CUDA: it
reads the largest index to size its output).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.errors import FairbenchError
from ..core.registry import Registry, source_of
from ..data.cells import cell_counts, counts
from .hparams import register_config

VARIANT_KINDS = ("mean", "distribution")
UNKNOWN_GROUP = -1  # a sample whose group is not known: it feeds no group term


@dataclass
class MatchingTerms:
    """A variant's answer for one real batch of N samples.

    ``term[i]`` is the term sample i feeds (a term of its own class: in
    ``[label·T, (label+1)·T)`` with T = ``terms_per_class``), ``weight[i] >= 0`` its weight inside
    that term's weighted mean (the weights of each active term sum to one), and ``active[c, t]``
    says term t of class c exists in this batch (has samples).
    """

    term: torch.Tensor  # (N,) the term each real sample feeds, in [0, num_classes * terms_per_class)
    weight: torch.Tensor  # (N,) the sample's weight inside its term's weighted mean
    active: torch.Tensor  # (num_classes, terms_per_class) bool: the term exists in this batch
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


TermsFunction = Callable[[torch.Tensor, torch.Tensor, int, int], MatchingTerms]


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str
    terms: TermsFunction
    feature_target: Callable | None = None  # distribution variants: (embed, labels, groups, C, G, init, hparams)
    description: str = ""


VARIANTS: Registry[Variant] = Registry("variant")


def register_variant(
    name: str,
    kind: str = "mean",
    *,
    feature_target: Callable | None = None,
    config: str | dict | None = None,
    description: str | None = None,
):
    """Decorate ``fn(labels, groups, num_classes, num_groups) -> MatchingTerms`` as variant ``name``.

    ``kind="distribution"`` also needs ``feature_target``: it builds the step's target from the
    real embeddings (see ``feature_targets.barycenter_target``). ``config`` is the variant's
    per-base hyperparameter adjustments, a YAML path or a mapping shaped like
    ``registry/variants/*.yaml`` (``bases: {dm: {defaults: {...}, ipc: {...}}}``).
    """
    if kind not in VARIANT_KINDS:
        raise FairbenchError(f"variant '{name}': unknown kind '{kind}'; choose from: {', '.join(VARIANT_KINDS)}")
    if kind == "distribution" and feature_target is None:
        raise FairbenchError(f"variant '{name}': a distribution variant needs feature_target=")

    def decorate(fn: TermsFunction) -> TermsFunction:
        text = description if description is not None else (fn.__doc__ or "").strip().split("\n")[0]
        VARIANTS.add(name, Variant(name, kind, fn, feature_target, text), source_of(fn))
        register_config("variants", name, config, fn)
        return fn

    return decorate


def matching_terms(
    variant: str, labels: torch.Tensor, groups: torch.Tensor, num_classes: int, num_groups: int
) -> MatchingTerms:
    """The registered variant's terms for one real batch."""
    return VARIANTS.get(variant).terms(labels, groups, num_classes, num_groups)


def _cell_counts(labels, groups, num_classes, num_groups):
    """Each sample's (class, group) cell (an unknown group: its class's first cell), whether its
    group is known, and the counts of known samples per cell."""
    known = groups >= 0
    cell = labels * num_groups + groups.clamp(min=0)
    return cell, known, cell_counts(labels, groups, num_classes, num_groups)


@register_variant("vanilla")
def vanilla(labels, groups, num_classes, num_groups) -> MatchingTerms:
    """pooled over the real batch: population-weighted, the majority group dominates"""
    class_count = counts(labels, num_classes)
    return MatchingTerms(labels, 1.0 / class_count[labels], (class_count > 0).unsqueeze(1), 1)


@register_variant("fairdd")
def fairdd(labels, groups, num_classes, num_groups) -> MatchingTerms:
    """FairDD (NeurIPS 2025) - one matching term per group present, equal weights, summed"""
    cell, known, cell_count = _cell_counts(labels, groups, num_classes, num_groups)
    weight = torch.where(known, 1.0 / cell_count.flatten()[cell].clamp(min=1), 0.0)
    return MatchingTerms(cell, weight, cell_count > 0, num_groups)


@register_variant("cobra")
def cobra(labels, groups, num_classes, num_groups) -> MatchingTerms:
    """COBRA (ICML 2026) - match the uniform mean over groups of the group statistics"""
    cell, known, cell_count = _cell_counts(labels, groups, num_classes, num_groups)
    groups_present = (cell_count > 0).sum(1)
    weight = torch.where(known, 1.0 / (cell_count.flatten()[cell] * groups_present[labels]).clamp(min=1), 0.0)
    return MatchingTerms(labels, weight, (groups_present > 0).unsqueeze(1), 1)
