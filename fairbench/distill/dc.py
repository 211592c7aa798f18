"""``dc`` and ``dsa``: gradient matching (Zhao et al., ICLR 2021; Zhao & Bilen, ICML 2021).

The statistic is the gradient of the classification loss with respect to the network's weights;
synthetic and real gradients are compared with DC's layer-wise distance. Both sides are computed
for all classes in one batched call (``gradients.py``). ``dsa`` is the same objective under
Differentiable Siamese Augmentation (its registry entry turns ``dsa`` on). The loop is
``bilevel.py``'s.

With several terms per class (fairdd), the class's term distances are summed, as FairDD's
``main_DC.py`` does; ``group_reduce: mean`` (a fairdd option, ``registry/variants/fairdd.yaml``)
averages them over the terms present instead, as COBRA's ``train_dc.py`` and ``train_idc.py`` do:
with G groups present that divides the image gradient by G.
"""

from __future__ import annotations

import torch

from .aggregation import matching_terms
from .bilevel import BilevelMatching
from .gradients import class_gradients, layerwise_distance, real_gradient_targets


def term_weights(active: torch.Tensor, group_reduce: str) -> torch.Tensor:
    """(C, T) weight of each term's distance: 1 where present (``sum``), or 1/(terms present in its
    class) (``mean``)."""
    weight = active.to(torch.get_default_dtype())
    if group_reduce == "mean":
        weight = weight / weight.sum(1, keepdim=True).clamp(min=1)
    return weight


class GradientMatching(BilevelMatching):
    name = "dc"
    description = "dataset condensation: per-class gradients of the classification loss"

    def synthetic_statistics(self, net, syn, syn_labels):
        return class_gradients(net, syn, syn_labels)

    def real_target(self, net, real, labels, groups, num_classes, num_groups, syn_stats):
        terms = matching_terms(self.aggregation, labels, groups, num_classes, num_groups)
        weight = term_weights(terms.active, self.hparams.get("group_reduce", "sum"))
        return real_gradient_targets(net, terms, real, labels, self.equal_batches), weight

    def matching_loss(self, target, syn_stats):
        targets, weight = target
        return layerwise_distance(targets, syn_stats, weight)


class GradientMatchingDSA(GradientMatching):
    name = "dsa"
    description = "gradient matching with Differentiable Siamese Augmentation"
