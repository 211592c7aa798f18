"""``dc`` and ``dsa``: gradient matching (Zhao et al., ICLR 2021; Zhao & Bilen, ICML 2021).

The statistic is the gradient of the classification loss with respect to the network's weights;
synthetic and real gradients are compared with DC's layer-wise distance. Both sides are computed
for all classes in one batched call (``gradients.py``). ``dsa`` is the same objective under
Differentiable Siamese Augmentation (its registry entry turns ``dsa`` on). The loop is
``bilevel.py``'s.
"""

from __future__ import annotations

from .aggregation import matching_terms
from .bilevel import BilevelMatching
from .gradients import class_gradients, layerwise_distance, real_gradient_targets


class GradientMatching(BilevelMatching):
    name = "dc"
    description = "dataset condensation: per-class gradients of the classification loss"

    def synthetic_statistics(self, net, syn, syn_labels):
        return class_gradients(net, syn, syn_labels)

    def real_target(self, net, real, labels, groups, num_classes, num_groups, syn_stats):
        terms = matching_terms(self.aggregation, labels, groups, num_classes, num_groups)
        return real_gradient_targets(net, terms, real, labels, self.equal_batches), terms.active

    def matching_loss(self, target, syn_stats):
        targets, active = target
        return layerwise_distance(targets, syn_stats, active)


class GradientMatchingDSA(GradientMatching):
    name = "dsa"
    description = "gradient matching with Differentiable Siamese Augmentation"
