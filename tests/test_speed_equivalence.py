"""The speed work changes no result: the ConvNet with its channels-last pooling against the same
network with PyTorch's plain ``nn.AvgPool2d``, bit for bit, through a forward, a backward, a
vectorised ensemble and whole DM distillations (dm, dm+fairdd, dm+cobra with its warm start)."""

import copy

import pytest
import torch
from torch import nn

from fairbench.distill import DistillContext, build_distiller, method_hparams
from fairbench.models import build_model
from fairbench.models.layers import AvgPool2x2
from fairbench.run.bench import synthetic_dataset
from fairbench.training.ensemble import Ensemble


def plain_pooling(net: nn.Module) -> nn.Module:
    """``net`` with every AvgPool2x2 replaced by the nn.AvgPool2d it stands for."""
    old = copy.deepcopy(net)
    for i, layer in enumerate(old.features):
        if isinstance(layer, AvgPool2x2):
            old.features[i] = nn.AvgPool2d(2)
    return old


def test_convnet_pools_with_its_own_layer():
    net = build_model("convnet", 3, 10, 32, width=8)
    assert sum(isinstance(m, AvgPool2x2) for m in net.modules()) == 3


def test_forward_and_backward_are_bit_for_bit():
    torch.manual_seed(0)
    net = build_model("convnet", 3, 10, 32, width=16)
    old = plain_pooling(net)
    x = torch.randn(5, 3, 32, 32)
    x_new, x_old = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_new, out_old = net.embed(x_new), old.embed(x_old)
    assert torch.equal(out_new, out_old)
    (out_new**2).sum().backward()
    (out_old**2).sum().backward()
    assert torch.equal(x_new.grad, x_old.grad)
    for p_new, p_old in zip(net.features.parameters(), old.features.parameters()):
        assert torch.equal(p_new.grad, p_old.grad)


def test_vectorised_ensemble_is_bit_for_bit():
    torch.manual_seed(1)
    nets = [build_model("convnet", 3, 10, 28, width=8) for _ in range(2)]
    x, y = torch.randn(2, 4, 3, 28, 28), torch.randint(10, (2, 4))
    new, old = Ensemble(nets), Ensemble([plain_pooling(n) for n in nets])
    loss_new, loss_old = new.loss(x, y), old.loss(x, y)
    assert torch.equal(loss_new, loss_old)
    loss_new.backward()
    loss_old.backward()
    for p_new, p_old in zip(new.parameters(), old.parameters()):
        assert torch.equal(p_new.grad, p_old.grad)


@pytest.mark.parametrize("method", ["dm", "dm+fairdd", "dm+cobra"])
def test_distilled_set_is_bit_for_bit(method):
    torch.manual_seed(2)
    train = synthetic_dataset(3, 2, 24, 16, torch.device("cpu"))
    hp = {**method_hparams(method, "", 2), "iterations": 2, "real_batch": 20, "warmup_epochs": 2}

    def distilled(make_net):
        torch.manual_seed(3)
        distiller = build_distiller(method, hp)
        return distiller.distill(train, 2, DistillContext(device=torch.device("cpu"), make_net=make_net)).images

    new = distilled(lambda: build_model("convnet", 3, 3, 16, width=8))
    old = distilled(lambda: plain_pooling(build_model("convnet", 3, 3, 16, width=8)))
    assert torch.equal(new, old)
