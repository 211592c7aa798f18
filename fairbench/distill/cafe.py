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

``objective: cobra-code`` is CAFE as COBRA's ``train_cafe.py`` computes it, on the outputs of its
CAFE ConvNet: ``[f5, f4, f3, f2, f1]`` = the flattened final features, the final pooled map (the
same values), then each block's activation *before* its pooling, last block first
(:func:`cobra_cafe_features`). Per class and output, the squared error (summed) between the mean
synthetic feature and the real target. Its vanilla mode weighs the five outputs 1 and adds the
discrimination term with a *sum* over the real batch (``discrimination_weight`` × Σ_i CE_i; its
cross-entropy on the real batch does not depend on the images and is left out). Its cobra mode
matches the uniform mean over groups of the group means, weights 1 at outputs 0, −1, −2 and 0.1
at −3, −4, each over the number of classes, with no discrimination term. COBRA's CAFE has no
fairdd mode, so ``cobra-code`` runs under ``vanilla`` and ``cobra`` only. Its image lr halves at
the iterations in ``lr_img_halvings`` (COBRA's 1,200, 1,600, 1,800; none by default).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import FairbenchError
from .aggregation import matching_terms
from .bilevel import BilevelMatching
from .feature_targets import feature_target, mean_target
from .tiling import tiled

OBJECTIVES = ("fairbench", "cobra-code")
# COBRA's train_cafe.py: weight of each output of cobra_cafe_features, by its index there
COBRA_LAYER_WEIGHTS = {
    "vanilla": {0: 1.0, -1: 1.0, -2: 1.0, -3: 1.0, -4: 1.0},
    "cobra": {0: 1.0, -1: 1.0, -2: 1.0, -3: 0.1, -4: 0.1},
}


def cobra_cafe_features(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """What COBRA's CAFE ConvNet returns beside its logits, ``[f5, f4, f3, f2, f1]``: the
    flattened final features, the final pooled map, and each block's activation before its pooling,
    last block first (for a 3-block ConvNet, five outputs)."""
    before_pool = []
    for layer in net.features:
        if isinstance(layer, (nn.AvgPool2d, nn.MaxPool2d)):
            before_pool.append(x)
        x = layer(x)
    return [x.flatten(1), x, *reversed(before_pool)]


class FeatureAlignment(BilevelMatching):
    name = "cafe"
    accepts = ("mean", "distribution")
    description = "layer-wise feature alignment with a discrimination term"

    @classmethod
    def check_hparams(cls, method_id: str, hparams: dict) -> None:
        objective = hparams["objective"]
        if objective not in OBJECTIVES:
            raise FairbenchError(
                f"method '{method_id}': objective={objective!r} is invalid; choose from: {', '.join(OBJECTIVES)}"
            )
        variant = method_id.partition("+")[2] or "vanilla"
        if objective == "cobra-code" and variant not in COBRA_LAYER_WEIGHTS:
            raise FairbenchError(
                f"method '{method_id}': objective=cobra-code is COBRA's train_cafe.py, which has only "
                f"the modes: {', '.join(COBRA_LAYER_WEIGHTS)}"
            )
        if any(not isinstance(m, int) or m < 0 for m in hparams["lr_img_halvings"]):
            raise FairbenchError(
                f"method '{method_id}': lr_img_halvings={hparams['lr_img_halvings']!r} must list iterations (integers >= 0)"
            )

    def start_iteration(self, iteration: int, optimizer: torch.optim.Optimizer) -> None:
        """The image lr halves at each of ``lr_img_halvings`` it has reached (COBRA's CAFE)."""
        halvings = sum(iteration >= m for m in self.hparams["lr_img_halvings"])
        for group in optimizer.param_groups:
            group["lr"] = self.hparams["lr_img"] * 0.5**halvings

    @property
    def cobra_code(self) -> bool:
        return self.hparams["objective"] == "cobra-code"

    def synthetic_statistics(self, net, syn, syn_labels):
        num_classes, per_class = syn_labels.shape
        if self.cobra_code:
            outputs = cobra_cafe_features(net, syn.flatten(0, 1))
        else:
            outputs = tiled(net.block_outputs, syn.flatten(0, 1))
        return [b.view(num_classes, per_class, *b.shape[1:]) for b in outputs]

    def real_target(self, net, real, labels, groups, num_classes, num_groups, syn_stats):
        if self.cobra_code:
            with torch.no_grad():
                outputs = cobra_cafe_features(net, real)
            targets = [mean_target(self.aggregation, f, labels, groups, num_classes, num_groups) for f in outputs]
            return targets, outputs[0], labels
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
        if self.cobra_code:
            return self.cobra_code_loss(target, syn_stats)
        inner, final, embed, labels, weight = target
        align = sum(t.loss(s) for t, s in zip(inner, syn_stats)) + final.loss(syn_stats[-1].flatten(2))
        centres = syn_stats[-1].flatten(2).mean(1)
        discrimination = (F.cross_entropy(embed @ centres.T, labels, reduction="none") * weight).sum()
        return align + self.hparams["discrimination_weight"] * discrimination

    def cobra_code_loss(self, target, syn_stats):
        """COBRA's train_cafe.py loss (its vanilla or cobra mode, by the variant)."""
        targets, embed, labels = target
        if len(targets) < 5:
            raise FairbenchError(f"{self.method_id}: objective=cobra-code needs a ConvNet of 3 blocks or more")
        num_classes = syn_stats[0].shape[0]
        weights = COBRA_LAYER_WEIGHTS[self.aggregation]
        align = sum(w * targets[i].loss(syn_stats[i]) for i, w in weights.items())
        if self.aggregation == "cobra":
            return align / num_classes
        centres = syn_stats[0].mean(1)
        discrimination = F.cross_entropy(embed @ centres.T, labels, reduction="sum")
        return align + self.hparams["discrimination_weight"] * discrimination
