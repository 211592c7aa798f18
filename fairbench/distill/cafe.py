"""``cafe``: condensing by aligning features (Wang et al., CVPR 2022).

The statistic is each block's feature map: per class, the synthetic mean features must match the
real ones at every block (squared error, summed over blocks), and a discrimination term asks the
synthetic class centres (mean final embeddings) to classify the real batch: logits are inner
products of real embeddings with the centres, the loss their cross-entropy, weighted by
``discrimination_weight``. The loop is ``bilevel.py``'s with fixed loop counts: CAFE's code stops
its loops early on loss plateaus, which needs a host sync per step.

Group aggregation: every block's target comes from ``matching_terms`` like DM's; under ``wbary``
the final embedding is matched to the groups' Wasserstein barycenter and the inner blocks to the
mean of group means (the barycenter under squared Euclidean cost). The discrimination term weights
each real sample's loss with the aggregation's weights, so under fairdd/cobra/wbary each group
of a class counts equally there too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .aggregation import matching_terms
from .bilevel import BilevelMatching
from .feature_targets import feature_target, mean_target
from .tiling import tiled


class FeatureAlignment(BilevelMatching):
    name = "cafe"
    accepts = ("mean", "distribution")
    description = "layer-wise feature alignment with a discrimination term"

    def synthetic_statistics(self, net, syn, syn_labels):
        num_classes, per_class = syn_labels.shape
        blocks = tiled(net.block_outputs, syn.flatten(0, 1))
        return [b.view(num_classes, per_class, *b.shape[1:]) for b in blocks]

    def real_target(self, net, real, labels, groups, num_classes, num_groups, syn_stats):
        with torch.no_grad():
            blocks = tiled(net.block_outputs, real)
        distance = self.hparams["distance"]
        inner = [
            mean_target(self.aggregation, b, labels, groups, num_classes, num_groups, distance) for b in blocks[:-1]
        ]
        embed = blocks[-1].flatten(1)
        final = feature_target(
            self.aggregation, embed, labels, groups, num_classes, num_groups, syn_stats[-1].flatten(2), self.hparams
        )
        weight = matching_terms(self.aggregation, labels, groups, num_classes, num_groups).weight
        return inner, final, embed, labels, weight

    def matching_loss(self, target, syn_stats):
        inner, final, embed, labels, weight = target
        align = sum(t.loss(s) for t, s in zip(inner, syn_stats)) + final.loss(syn_stats[-1].flatten(2))
        centres = syn_stats[-1].flatten(2).mean(1)
        discrimination = (F.cross_entropy(embed @ centres.T, labels, reduction="none") * weight).sum()
        return align + self.hparams["discrimination_weight"] * discrimination
