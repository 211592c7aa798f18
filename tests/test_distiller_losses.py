"""Each base's matching loss against a direct formula on a tiny network, under each aggregation."""

import pytest
import torch
import torch.nn.functional as F

from fairbench.distill import build_distiller, method_hparams
from fairbench.distill.aggregation import matching_terms
from fairbench.distill.gradients import class_gradients, layerwise_distance, real_gradient_targets
from fairbench.distill.mtt import trajectory_loss, unflatten, unroll
from fairbench.models import build_model

C, G = 2, 2


@pytest.fixture
def batch():
    torch.manual_seed(0)
    net = build_model("convnet", 3, C, 8, width=4, depth=2)
    real = torch.randn(8, 3, 8, 8)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    groups = torch.tensor([0, 0, 0, 1, 1, 1, 0, 1])  # class 0: 3 + 1, class 1: 1 + 3
    syn = torch.randn(C, 2, 3, 8, 8, requires_grad=True)
    syn_labels = torch.tensor([[0, 0], [1, 1]])
    return net, real, labels, groups, syn, syn_labels


def weight_grads(net, x, y, w):
    """Gradient of Σ w_i CE_i with respect to the weight tensors, by plain autograd."""
    loss = (F.cross_entropy(net(x), y, reduction="none") * w).sum()
    params = [p for p in net.parameters() if p.dim() > 1]
    return torch.autograd.grad(loss, params, create_graph=True)


def dc_distance(a, b):
    total = 0.0
    for ga, gb in zip(a, b):
        ra, rb = ga.reshape(len(ga), -1), gb.reshape(len(gb), -1)
        total = total + (1 - F.cosine_similarity(ra, rb, dim=1, eps=1e-12)).sum()
    return total


def group_mask(labels, groups, c, g=None):
    return (labels == c) & (groups == g) if g is not None else labels == c


@pytest.mark.parametrize("aggregation", ["vanilla", "fairdd", "cobra"])
def test_dc_loss_matches_the_direct_formula(batch, aggregation):
    net, real, labels, groups, syn, syn_labels = batch
    terms = matching_terms(aggregation, labels, groups, C, G)
    loss = layerwise_distance(
        real_gradient_targets(net, terms, real, labels), class_gradients(net, syn, syn_labels), terms.active
    )
    expected = 0.0
    for c in range(C):
        syn_grad = weight_grads(net, syn[c], syn_labels[c], torch.full((2,), 0.5))
        if aggregation == "vanilla":  # pooled class gradient
            mask = group_mask(labels, groups, c)
            targets = [weight_grads(net, real[mask], labels[mask], torch.full((int(mask.sum()),), 1 / mask.sum()))]
        else:
            per_group = []
            for g in range(G):
                mask = group_mask(labels, groups, c, g)
                per_group.append(
                    weight_grads(net, real[mask], labels[mask], torch.full((int(mask.sum()),), 1 / mask.sum()))
                )
            # FairDD: one term per group, summed; COBRA: one term, the layer-wise mean of group gradients
            targets = per_group if aggregation == "fairdd" else [[(a + b) / 2 for a, b in zip(*per_group)]]
        expected = expected + sum(dc_distance(t, syn_grad) for t in targets)
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-5)
    # and the loss reaches the synthetic images
    loss.backward()
    assert syn.grad is not None and syn.grad.abs().sum() > 0


def test_cobra_gradient_target_is_the_mean_of_group_gradients_not_the_pooled_one(batch):
    net, real, labels, groups, *_ = batch
    cobra = real_gradient_targets(net, matching_terms("cobra", labels, groups, C, G), real, labels)
    fairdd = real_gradient_targets(net, matching_terms("fairdd", labels, groups, C, G), real, labels)
    vanilla = real_gradient_targets(net, matching_terms("vanilla", labels, groups, C, G), real, labels)
    for name in cobra:
        torch.testing.assert_close(cobra[name][:, 0], fairdd[name].mean(1), rtol=1e-4, atol=1e-6)
        assert not torch.allclose(cobra[name], vanilla[name], atol=1e-6)


@pytest.mark.parametrize("aggregation", ["vanilla", "fairdd", "cobra", "wbary"])
def test_cafe_loss_matches_the_direct_formula(batch, aggregation):
    net, real, labels, groups, syn, syn_labels = batch
    hparams = {
        **method_hparams(f"cafe+{aggregation}" if aggregation != "vanilla" else "cafe", "", 10),
        "ot_reg": 1e-3,
        "ot_iterations": 200,
        "bary_iterations": 5,
    }
    cafe = build_distiller("cafe" if aggregation == "vanilla" else f"cafe+{aggregation}", hparams)
    stats = cafe.synthetic_statistics(net, syn, syn_labels)
    loss = cafe.matching_loss(cafe.real_target(net, real, labels, groups, C, G, stats), stats)

    real_blocks = [b.detach() for b in net.block_outputs(real)]
    syn_blocks = net.block_outputs(syn.flatten(0, 1))
    weights = matching_terms(aggregation, labels, groups, C, G).weight
    expected = 0.0
    for depth, (rb, sb) in enumerate(zip(real_blocks, syn_blocks)):
        last = depth == len(real_blocks) - 1
        for c in range(C):
            syn_mean = sb[2 * c : 2 * c + 2].mean(0)
            if aggregation == "wbary" and last:
                continue  # checked below: the final block is matched to the barycenter
            if aggregation == "fairdd":
                for g in range(G):
                    mask = group_mask(labels, groups, c, g)
                    expected = expected + (rb[mask].mean(0) - syn_mean).pow(2).sum()
            elif aggregation == "vanilla":
                expected = expected + (rb[labels == c].mean(0) - syn_mean).pow(2).sum()
            else:
                target = sum(rb[group_mask(labels, groups, c, g)].mean(0) for g in range(G)) / G
                expected = expected + (target - syn_mean).pow(2).sum()
    embed = real_blocks[-1].flatten(1)
    centres = syn_blocks[-1].flatten(1).view(C, 2, -1).mean(1)
    discrimination = (F.cross_entropy(embed @ centres.T, labels, reduction="none") * weights).sum()
    expected = expected + hparams["discrimination_weight"] * discrimination
    if aggregation == "wbary":
        loss = loss - cafe.real_target(net, real, labels, groups, C, G, stats)[1].loss(
            syn_blocks[-1].flatten(1).view(C, 2, -1)
        )
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("aggregation", ["vanilla", "fairdd", "cobra"])
def test_dm_mean_target_loss_matches_the_direct_formula(batch, aggregation):
    from fairbench.distill.feature_targets import feature_target

    net, real, labels, groups, syn, _ = batch
    embed, syn_embed = net.embed(real).detach(), net.embed(syn.flatten(0, 1)).view(C, 2, -1)
    target = feature_target(aggregation, embed, labels, groups, C, G, syn_embed, {"distance": "mse"})
    expected = 0.0
    for c in range(C):
        s = syn_embed[c].mean(0)
        means = [embed[group_mask(labels, groups, c, g)].mean(0) for g in range(G)]
        if aggregation == "vanilla":
            expected = expected + (embed[labels == c].mean(0) - s).pow(2).sum()
        elif aggregation == "fairdd":
            expected = expected + sum((m - s).pow(2).sum() for m in means)
        else:
            expected = expected + (sum(means) / G - s).pow(2).sum()
    torch.testing.assert_close(target.loss(syn_embed), expected, rtol=1e-5, atol=1e-5)


def test_mtt_unroll_is_plain_sgd_and_the_loss_is_zero_on_the_target():
    torch.manual_seed(0)
    net = build_model("convnet", 3, C, 8, width=4, depth=2)
    images = torch.randn(4, 3, 8, 8, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    lr = torch.tensor(0.05, requires_grad=True)
    start = torch.nn.utils.parameters_to_vector(net.parameters()).detach()
    end = unroll(net, start, images, labels, lr, steps=3, batch=0)
    # the same three steps by hand on a copy of the network
    manual = build_model("convnet", 3, C, 8, width=4, depth=2)
    torch.nn.utils.vector_to_parameters(start.clone(), manual.parameters())
    optimizer = torch.optim.SGD(manual.parameters(), lr=0.05)
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(manual(images.detach()), labels).backward()
        optimizer.step()
    torch.testing.assert_close(
        end.detach(), torch.nn.utils.parameters_to_vector(manual.parameters()).detach(), rtol=1e-4, atol=1e-6
    )
    # a student that lands on the expert's target costs nothing; one that stays put costs 1
    target = end.detach()
    loss = trajectory_loss(end, start, target)
    assert loss.item() == pytest.approx(0.0, abs=1e-10)
    assert trajectory_loss(start, start, target).item() == pytest.approx(1.0)
    # elsewhere, the loss reaches the images and the learnable learning rate
    trajectory_loss(end, start, target + 0.01).backward()
    assert images.grad.abs().sum() > 0 and lr.grad is not None and lr.grad != 0
    assert set(unflatten(net, start)) == {name for name, _ in net.named_parameters()}


def test_idc_mosaics_decode_into_factor_squared_images_of_their_class():
    from fairbench.data import GroupDataset
    from fairbench.distill.sampling import ClassSampler

    torch.manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    train = GroupDataset(
        images, torch.arange(2).repeat_interleave(8), torch.zeros(16), ["a", "b"], ["g"], (0.5,) * 3, (0.5,) * 3
    )
    idc = build_distiller("idc", method_hparams("idc", "", 2))
    stored, labels = idc.initial_images(train, 2, ClassSampler(train.labels, 2))
    assert stored.shape == (4, 3, 8, 8) and labels.tolist() == [0, 0, 1, 1]
    decoded = idc.decode(stored)
    assert decoded.shape == (16, 3, 8, 8) and idc.decode_labels(labels).tolist() == [0] * 8 + [1] * 8
    # the top-left tile of the first mosaic is the first real image of class 0, downsampled
    tile = stored[0, :, :4, :4]
    originals = train.normalize(train.images[:8])
    smalls = F.interpolate(originals, size=(4, 4), mode="bilinear", align_corners=False, antialias=True)
    assert min((smalls[i] - tile).abs().max().item() for i in range(8)) < 1e-5


@pytest.mark.parametrize("aggregation", ["vanilla", "cobra"])
def test_dc_targets_with_unequal_class_counts_are_each_class_mean_gradient(batch, aggregation):
    """Up to real_batch per class gives classes different counts: the per-sample path must give
    each class the mean gradient of its own images, as the reference's per-class loop does."""
    net, real, labels, groups, _, _ = batch
    keep = torch.tensor([0, 1, 2, 3, 4, 5])  # class 0: 4 images, class 1: 2
    real, labels, groups = real[keep], labels[keep], groups[keep]
    terms = matching_terms(aggregation, labels, groups, C, G)
    targets = real_gradient_targets(net, terms, real, labels, equal_counts=False)
    params = [name for name, p in net.named_parameters() if p.dim() > 1]
    for c in range(C):
        if aggregation == "vanilla":
            mask = labels == c
            expected = weight_grads(net, real[mask], labels[mask], torch.full((int(mask.sum()),), 1 / mask.sum()))
        else:
            per_group = []
            for g in groups[labels == c].unique().tolist():
                mask = group_mask(labels, groups, c, g)
                per_group.append(
                    weight_grads(net, real[mask], labels[mask], torch.full((int(mask.sum()),), 1 / mask.sum()))
                )
            expected = [sum(gs) / len(gs) for gs in zip(*per_group)]
        for name, grad in zip(params, expected):
            torch.testing.assert_close(targets[name][c, 0], grad.detach(), rtol=1e-4, atol=1e-6)
