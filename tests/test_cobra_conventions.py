"""COBRA's own conventions, each checked against a formula written from its public code.

- DC/IDC ``fairdd``: COBRA's ``train_dc.py`` adds, per class, ``match_loss(gw_syn, gw_g) / G_c``
  over the G_c groups present; FairDD's ``main_DC.py`` adds ``match_loss(gw_syn, gw_g)``.
  fairbench's ``group_reduce`` option chooses between the two.
- CAFE ``cobra``: COBRA's ``train_cafe.py`` matches, per class, the uniform mean over groups of the
  group-mean features at its network's five outputs with weights (1, 0.1, 0.1, 1, 1), each over C.
"""

import pytest
import torch
import torch.nn.functional as F

from fairbench.distill import build_distiller, method_hparams
from fairbench.models import build_model

C, G = 2, 3
# every class has all three groups, in unequal numbers
LABELS = torch.tensor([0] * 6 + [1] * 6)
GROUPS = torch.tensor([0, 0, 0, 1, 1, 2, 0, 1, 1, 1, 2, 2])


@pytest.fixture
def batch():
    torch.manual_seed(0)
    net = build_model("convnet", 3, C, 8, width=4, depth=2)
    real = torch.randn(len(LABELS), 3, 8, 8)
    syn = torch.randn(C, 2, 3, 8, 8, requires_grad=True)
    syn_labels = torch.tensor([[0, 0], [1, 1]])
    return net, real, syn, syn_labels


def distiller(method, **options):
    d = build_distiller(method, method_hparams(method, "", 10, options))
    d.equal_batches = True  # set by distill() from the sampler; these batches are class-major
    return d


def fairbench_loss(d, net, real, syn, syn_labels):
    stats = d.synthetic_statistics(net, syn, syn_labels)
    return d.matching_loss(d.real_target(net, real, LABELS, GROUPS, C, G, stats), stats)


def cobra_dc_fairdd_loss(net, real, syn, syn_labels):
    """COBRA's train_dc.py fairdd mode, from its formula: per class, the mean over the groups
    present of DC's distance between the synthetic gradient and the group's real gradient."""
    weights = [p for p in net.parameters() if p.dim() > 1]  # match_loss gives 1-D tensors 0

    def grad(x, y):
        return torch.autograd.grad(F.cross_entropy(net(x), y), weights, create_graph=True)

    def match(gs, gr):
        return sum(
            (
                1 - (a.flatten(1) * b.flatten(1)).sum(1) / (a.flatten(1).norm(dim=1) * b.flatten(1).norm(dim=1) + 1e-6)
            ).sum()
            for a, b in zip(gs, gr)
        )

    loss = 0.0
    for c in range(C):
        gw_syn = grad(syn[c], syn_labels[c])
        present = GROUPS[LABELS == c].unique()
        for g in present:
            mask = (LABELS == c) & (GROUPS == g)
            loss = loss + match(gw_syn, [t.detach() for t in grad(real[mask], LABELS[mask])]) / len(present)
    return loss


@pytest.mark.parametrize("base", ["dc", "idc"])
def test_group_reduce_mean_is_cobras_fairdd_and_sum_is_g_times_it(batch, base):
    net, real, syn, syn_labels = batch
    if base == "idc":  # IDC matches on the decoded images: the same loss, on what decode() gives
        idc = distiller("idc+fairdd", factor=2)
        stored = syn.flatten(0, 1)
        decoded = idc.decode(stored)
        syn_in = decoded.view(C, -1, *decoded.shape[1:])
        labels_in = idc.decode_labels(syn_labels.flatten()).view(C, -1)
    else:
        stored, syn_in, labels_in = syn, syn, syn_labels
    expected = cobra_dc_fairdd_loss(net, real, syn_in, labels_in)
    (expected_grad,) = torch.autograd.grad(expected, stored, retain_graph=True)
    mean = fairbench_loss(distiller(f"{base}+fairdd", group_reduce="mean"), net, real, syn_in, labels_in)
    (mean_grad,) = torch.autograd.grad(mean, stored, retain_graph=True)
    torch.testing.assert_close(mean, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mean_grad, expected_grad, rtol=1e-4, atol=1e-7)
    for summed in (distiller(f"{base}+fairdd", group_reduce="sum"), distiller(f"{base}+fairdd")):
        loss = fairbench_loss(summed, net, real, syn_in, labels_in)
        (grad,) = torch.autograd.grad(loss, stored, retain_graph=True)
        torch.testing.assert_close(loss, G * expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad, G * expected_grad, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(mean_grad, G * expected_grad)  # the two conventions do differ
