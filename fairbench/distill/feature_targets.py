"""Targets for feature matching (DM, CAFE): what the synthetic embeddings of each class must match.

Built once per step from the real batch's embeddings, then asked for a loss against the synthetic
embeddings. Two kinds share that interface:

- :class:`MeanTarget` (every mean variant: vanilla, fairdd, cobra, a plugin's): the variant's
  weighted means (``matching_terms``) and a distance between each term and the synthetic mean,
  summed over the terms present.
- :class:`BarycenterTarget` (``wbary``, the built-in distribution variant, registered here): per
  class, the free-support 2-Wasserstein barycenter, equal group weights, of the groups' embedding
  clouds, with as many support points as the class has synthetic images; the loss is the entropic
  transport cost from the synthetic embeddings to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .aggregation import VARIANTS, MatchingTerms, cobra, matching_terms, register_variant
from .barycenter import Solver, group_barycenter, sinkhorn_plans, transport_cost
from .compiled import compiled_sinkhorn

DISTANCES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mse": lambda diff: diff.pow(2).flatten(2).sum(-1),
    "l1": lambda diff: diff.abs().flatten(2).sum(-1),
}


@dataclass
class MeanTarget:
    targets: torch.Tensor  # (C, T, ...) one target per term
    active: torch.Tensor  # (C, T) the term exists in this batch
    distance: Callable[[torch.Tensor], torch.Tensor]

    def loss(self, syn: torch.Tensor) -> torch.Tensor:
        """``syn`` (C, m, ...): the class's synthetic statistics, matched through their mean."""
        syn_mean = syn.mean(1).unsqueeze(1)
        return (self.distance(self.targets - syn_mean) * self.active).sum()


@dataclass
class BarycenterTarget:
    support: torch.Tensor  # (C, K, d) the barycenter's support points
    reg: float
    iterations: int
    solver: Solver = sinkhorn_plans

    def loss(self, syn: torch.Tensor) -> torch.Tensor:
        cost = transport_cost(
            syn.flatten(2), self.support, reg=self.reg, iterations=self.iterations, solver=self.solver
        )
        return cost.sum()


def mean_target(
    aggregation: str,
    stats: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    num_classes: int,
    num_groups: int,
    distance: str = "mse",
) -> MeanTarget:
    terms = matching_terms(aggregation, labels, groups, num_classes, num_groups)
    return MeanTarget(terms.reduce(stats), terms.active, DISTANCES[distance])


def barycenter_target(
    embed: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    num_classes: int,
    num_groups: int,
    init: torch.Tensor,
    hparams: dict,
) -> BarycenterTarget:
    """``embed`` (N, d) of a class-major batch with the same count per class (``ClassSampler``).

    The groups' clouds are not gathered: each group is the class's whole batch with mass only on
    its own samples, so one cost matrix per class serves all its groups. The barycenter starts
    from ``init`` (C, K, d), the synthetic embeddings, which also fixes its size K. With
    ``distill.compile`` the Sinkhorn solver is compiled.
    """
    per_class = len(embed) // num_classes
    terms = matching_terms("fairdd", labels, groups, num_classes, num_groups)
    position = torch.arange(len(embed), device=embed.device) % per_class
    mass = embed.new_zeros(num_classes, num_groups, per_class)
    mass[labels, groups, position] = terms.weight.to(embed.dtype)
    present = terms.active.to(embed.dtype)
    weight = present / present.sum(1, keepdim=True)
    solver = compiled_sinkhorn(embed.device) if hparams.get("compile", False) else sinkhorn_plans
    support = group_barycenter(
        embed.view(num_classes, per_class, -1),
        mass,
        weight,
        init.flatten(2),
        reg=hparams["ot_reg"],
        iterations=hparams["bary_iterations"],
        sinkhorn_iterations=hparams["ot_iterations"],
        solver=solver,
    )
    return BarycenterTarget(support, hparams["ot_reg"], hparams["ot_iterations"], solver)


def feature_target(
    variant: str,
    embed: torch.Tensor,
    labels: torch.Tensor,
    groups: torch.Tensor,
    num_classes: int,
    num_groups: int,
    syn_embed: torch.Tensor,
    hparams: dict,
):
    """The step's target for the final embedding: the variant's own for a distribution variant,
    its weighted means otherwise."""
    build = VARIANTS.get(variant).feature_target
    if build is not None:
        return build(embed, labels, groups, num_classes, num_groups, syn_embed.detach(), hparams)
    return mean_target(variant, embed, labels, groups, num_classes, num_groups, hparams["distance"])


@register_variant("wbary", kind="distribution", feature_target=barycenter_target)
def wbary(labels, groups, num_classes, num_groups) -> MatchingTerms:
    """Where a base still needs one mean (CAFE's inner layers and discrimination term): COBRA's
    weights, the barycenter of the group means under squared Euclidean cost."""
    return cobra(labels, groups, num_classes, num_groups)
