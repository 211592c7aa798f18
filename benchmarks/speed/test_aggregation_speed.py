"""Group aggregation and the barycenter, batched against a per-group / per-class Python loop.

fairbench builds every group statistic with one ``index_add_`` and solves every class's barycenter
in one batched call (DESIGN.md, Speed); the loops are what the reference code does. Batching
that got slower than the loop it replaced is a regression.
"""

import pytest
import torch
from sizes import CLASSES, GROUPS, ROUNDS

from fairbench.distill.aggregation import matching_terms
from fairbench.distill.barycenter import group_barycenter

REAL_PER_CLASS, FEATURES, SUPPORT = 64, 512, 10
# batched over the per-class loop. On a GPU batching is the point (one launch per step for all
# classes); on a CPU the batched solver does the same arithmetic in bigger tensors, measured at
# 0.3-2.5x the loop on a loaded 2-core box, so there the check only catches a blow-up.
BARYCENTER_LIMIT = {"cuda": 1.0, "cpu": 4.0}
BARYCENTER = {"reg": 0.1, "iterations": 3, "sinkhorn_iterations": 20}


@pytest.fixture(scope="module")
def batch(device):
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(CLASSES).repeat_interleave(REAL_PER_CLASS)
    groups = torch.randint(GROUPS, labels.shape, generator=generator)
    embed = torch.randn(len(labels), FEATURES, generator=generator)
    return labels.to(device), groups.to(device), embed.to(device)


def test_fairdd_targets_batched_over_loop(benchmark, batch, side_by_side):
    labels, groups, embed = batch

    def batched():
        return matching_terms("fairdd", labels, groups, CLASSES, GROUPS).reduce(embed)

    def loop():
        return [
            embed[(labels == c) & (groups == g)].mean(0)
            for c in range(CLASSES)
            for g in range(GROUPS)
            if ((labels == c) & (groups == g)).any()
        ]

    ratio = side_by_side(batched, loop, repeats=15)
    benchmark.extra_info["over_loop"] = ratio
    benchmark.pedantic(batched, rounds=ROUNDS, warmup_rounds=1)
    assert ratio < 1.0, f"batched aggregation {ratio:.2f}x the per-group loop"


def test_barycenter_batched_over_loop(benchmark, batch, side_by_side, device):
    labels, groups, embed = batch
    points = embed.view(CLASSES, REAL_PER_CLASS, FEATURES)
    member = torch.nn.functional.one_hot(groups.view(CLASSES, REAL_PER_CLASS), GROUPS).transpose(1, 2).float()
    mass = member / member.sum(-1, keepdim=True).clamp_min(1)
    weight = (member.sum(-1) > 0).float()
    weight = weight / weight.sum(-1, keepdim=True)
    init = points[:, :SUPPORT].clone()

    def batched():
        return group_barycenter(points, mass, weight, init, **BARYCENTER)

    def loop():
        return [
            group_barycenter(points[c : c + 1], mass[c : c + 1], weight[c : c + 1], init[c : c + 1], **BARYCENTER)
            for c in range(CLASSES)
        ]

    ratio = side_by_side(batched, loop)
    benchmark.extra_info["over_loop"] = ratio
    benchmark.pedantic(batched, rounds=ROUNDS, warmup_rounds=1)
    limit = BARYCENTER_LIMIT[device.type]
    assert ratio < limit, f"batched barycenter {ratio:.2f}x the per-class loop on {device.type} (limit {limit})"
