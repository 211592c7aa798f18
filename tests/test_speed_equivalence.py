"""The speed work changes no result: training with the multi-tensor (foreach) SGD step gives the
same network and the same dm+cobra synthetic set, bit for bit, as the per-parameter loop; the
ConvNet's slice-sum pooling gives the same DM sets, bit for bit, as ``avg_pool2d``; a compiled
step (``distill.compile``, fused kernels) gives the eager step's set within float rounding."""

import functools

import pytest
import torch
import torch.nn.functional as F
from conftest import needs_compiler
from torch import nn

from fairbench.distill import DistillContext, build_distiller, method_hparams
from fairbench.distill import dm as dm_module
from fairbench.distill.compiled import compiled_embedding
from fairbench.models import build_model
from fairbench.models.layers import AvgPool2x2
from fairbench.run.bench import synthetic_dataset
from fairbench.training import train as train_module
from fairbench.training.train import train_classifier


def per_parameter_sgd(monkeypatch):
    """Make every SGD built from now on take the per-parameter loop (PyTorch's CPU default)."""
    monkeypatch.setattr(torch.optim, "SGD", functools.partial(torch.optim.SGD, foreach=False))


def test_evaluator_training_is_bit_for_bit(monkeypatch):
    torch.manual_seed(0)
    images, labels = torch.randn(12, 3, 16, 16), torch.arange(3).repeat(4)

    def trained():
        torch.manual_seed(1)
        net = build_model("convnet", 3, 3, 16, width=8)
        settings = dict(epochs=3, lr=0.01, momentum=0.9, weight_decay=5e-4, batch_size=5)
        return train_classifier(net, images, labels, **settings).state_dict()

    new = trained()
    per_parameter_sgd(monkeypatch)
    old = trained()
    assert all(torch.equal(new[k], old[k]) for k in new)


def test_cobra_warm_start_is_bit_for_bit(monkeypatch):
    torch.manual_seed(2)
    train = synthetic_dataset(3, 2, 24, 16, torch.device("cpu"))
    hp = {**method_hparams("dm+cobra", "", 2), "iterations": 2, "real_batch": 20, "warmup_epochs": 2}

    def distilled():
        torch.manual_seed(3)
        ctx = DistillContext(device=torch.device("cpu"), make_net=lambda: build_model("convnet", 3, 3, 16, width=8))
        return build_distiller("dm+cobra", hp).distill(train, 2, ctx).images

    new = distilled()
    per_parameter_sgd(monkeypatch)
    assert torch.equal(new, distilled())


@pytest.mark.parametrize("shape", [(16, 128, 32, 32), (5, 7, 16, 16), (3, 4, 7, 9), (2, 3, 3, 2)])
def test_slice_sum_pooling_is_avg_pool2d_bit_for_bit(monkeypatch, shape):
    monkeypatch.setattr(AvgPool2x2, "SLICE_SUMS_FROM", 0)  # every shape through the slice sums
    torch.manual_seed(4)
    x = torch.randn(shape) * 10
    with torch.no_grad():
        assert torch.equal(AvgPool2x2()(x), F.avg_pool2d(x, 2))


@pytest.mark.parametrize("method", ["dm", "dm+fairdd"])
def test_dm_sets_are_bit_for_bit_with_either_pooling(monkeypatch, method):
    """A real batch of 3 x 40 images: tiled in 16s, every tile through the slice sums."""
    train = synthetic_dataset(3, 2, 48, 16, torch.device("cpu"))
    hp = {**method_hparams(method, "", 2), "iterations": 3, "real_batch": 40}
    monkeypatch.setattr(AvgPool2x2, "SLICE_SUMS_FROM", 0)  # this test's small tiles take them too

    def distilled():
        torch.manual_seed(5)
        ctx = DistillContext(device=torch.device("cpu"), make_net=lambda: build_model("convnet", 3, 3, 16, width=8))
        return build_distiller(method, hp).distill(train, 2, ctx).images

    new = distilled()
    monkeypatch.setattr(AvgPool2x2, "forward", nn.AvgPool2d.forward)
    assert torch.equal(new, distilled())


@needs_compiler
@pytest.mark.parametrize("method", ["dm", "dm+fairdd", "dm+wbary", "dm+cobra"])
def test_a_compiled_step_agrees_with_the_eager_step_within_float_rounding(method):
    """One step, a real batch of 3 x 20 (tiles of 16 and 4): fused norm, ReLU and pooling (for
    wbary the Sinkhorn loops, for cobra the warm start's training) add in another order, so the
    sets differ by float rounding, far less than the step moved them."""
    train = synthetic_dataset(3, 2, 24, 16, torch.device("cpu"))
    nets = []

    def make_net():
        nets.append(build_model("convnet", 3, 3, 16, width=8))
        return nets[-1]

    def distilled(iterations, compile):
        hp = {**method_hparams(method, "", 2), "iterations": iterations, "real_batch": 20, "compile": compile}
        torch.manual_seed(6)
        ctx = DistillContext(device=torch.device("cpu"), make_net=make_net)
        return build_distiller(method, hp).distill(train, 2, ctx).images

    start, eager, compiled = distilled(0, False), distilled(1, False), distilled(1, True)
    assert (eager - start).abs().max() > 1e-2  # the step moved the images
    assert not torch.equal(compiled, start)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert torch.equal(distilled(1, True), compiled)  # a second cell's fresh networks: no new graph
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs
    # no step's network was taken for a static input: on a GPU its fresh address would make the
    # CUDA graphs re-record every step
    assert not any(hasattr(t, "_dynamo_static_input_type") for net in nets for t in net.parameters())


@needs_compiler
def test_dsa_inside_the_graph_agrees_with_the_eager_step_and_keeps_its_shapes(monkeypatch):
    """Where graphs are replayed (a GPU; forced here on the CPU), DSA runs inside the compiled
    embedding in fixed shapes: the step agrees with the eager one within float rounding, and
    later steps, whose draws choose other transforms for other counts of samples, compile no new
    graph (a CUDA graph would re-record for each)."""
    monkeypatch.setattr(dm_module, "captures_graphs", lambda device: True)
    # the sizes of benchmarks/op_counts.py's 10-class setting: tests/test_op_counts.py's compiled
    # count then finds these graphs compiled
    train = synthetic_dataset(10, 2, 8, 16, torch.device("cpu"))

    def distilled(iterations, compile):
        hp = {**method_hparams("dm+fairdd", "", 2), "iterations": iterations, "real_batch": 4, "compile": compile}
        torch.manual_seed(7)
        ctx = DistillContext(device=torch.device("cpu"), make_net=lambda: build_model("convnet", 3, 10, 16, width=8))
        return build_distiller("dm+fairdd", hp).distill(train, 2, ctx).images

    start, eager, compiled = distilled(0, False), distilled(1, False), distilled(1, True)
    assert (eager - start).abs().max() > 1e-2
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    distilled(6, True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs


@needs_compiler
def test_the_compiled_embedding_follows_the_architecture_it_is_given():
    """A suite over several datasets changes the architecture between cells: each network is
    embedded by its own architecture's graph, also when an earlier architecture comes back."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16)
    for width in (8, 4, 8):
        net = build_model("convnet", 3, 3, 16, width=width).requires_grad_(False)
        torch.testing.assert_close(compiled_embedding(net, x.device)(x), net.embed(x), rtol=1e-5, atol=1e-6)


@needs_compiler
def test_compiled_training_gradients_reach_the_parameters_and_accumulate():
    """The compiled loss takes plain tensors for the parameters; their gradients land on the
    parameters as eager autograd's would, adding up over two backward passes."""
    torch.manual_seed(0)
    x, y = torch.randn(6, 3, 16, 16), torch.arange(3).repeat(2)
    net = build_model("convnet", 3, 3, 16, width=8)
    F.cross_entropy(net(x), y).backward()
    eager = [p.grad.clone() for p in net.parameters()]
    net.zero_grad(set_to_none=True)
    loss = train_module._CompiledSingle(net, x.device).loss
    for passes in (1, 2):
        loss(x.unsqueeze(0), y.unsqueeze(0)).backward()
        for p, g in zip(net.parameters(), eager):
            torch.testing.assert_close(p.grad, passes * g, rtol=1e-5, atol=1e-6)
