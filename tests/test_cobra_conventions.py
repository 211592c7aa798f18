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


def test_group_reduce_mean_is_cobras_fairdd_and_sum_is_g_times_it(batch):
    """idc+fairdd and dsa+fairdd take the same option through dc's real_target and matching_loss."""
    net, real, syn, syn_labels = batch
    expected = cobra_dc_fairdd_loss(net, real, syn, syn_labels)
    (expected_grad,) = torch.autograd.grad(expected, syn, retain_graph=True)
    mean = fairbench_loss(distiller("dc+fairdd", group_reduce="mean"), net, real, syn, syn_labels)
    (mean_grad,) = torch.autograd.grad(mean, syn, retain_graph=True)
    torch.testing.assert_close(mean, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mean_grad, expected_grad, rtol=1e-4, atol=1e-7)
    for summed in (distiller("dc+fairdd", group_reduce="sum"), distiller("dc+fairdd")):
        loss = fairbench_loss(summed, net, real, syn, syn_labels)
        (grad,) = torch.autograd.grad(loss, syn, retain_graph=True)
        torch.testing.assert_close(loss, G * expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad, G * expected_grad, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(mean_grad, G * expected_grad)  # the two conventions do differ


def cobra_cafe_outputs(net, x):
    """COBRA's cafe/networks.py ConvNet.forward on fairbench's 3-block ConvNet (its layer list is
    the same: conv, norm, relu, pool per block): [f5, f4, f3, f2, f1]."""
    f1 = net.features[:-9](x)
    f2 = net.features[-9:-5](f1)
    f3 = net.features[-5:-1](f2)
    f4 = net.features[-1:](f3)
    return [f4.flatten(1), f4, f3, f2, f1]


def cobra_cafe_terms(net, real, syn):
    """Per output of COBRA's network, Σ_c ‖uniform mean over groups of the group means − mean
    synthetic feature‖², as train_cafe.py's cobra mode computes it before weighting."""
    terms = [0.0] * 5
    for c in range(C):
        real_out = cobra_cafe_outputs(net, real[LABELS == c])
        syn_out = cobra_cafe_outputs(net, syn[c])
        present = GROUPS[LABELS == c].unique()
        for i in range(5):
            groups_c = GROUPS[LABELS == c]
            barycenter = sum(real_out[i][groups_c == g].mean(0) for g in present) / len(present)
            terms[i] = terms[i] + (barycenter - syn_out[i].mean(0)).pow(2).sum()
    return terms


@pytest.fixture
def deep_batch():
    torch.manual_seed(1)
    # float64: the small outputs' terms are ~1e-4 of the loss; the variants' weights are float32
    # (relative error ~1e-8), so float32 throughout would hide the weights of those outputs
    net = build_model("convnet", 3, C, 8, width=4, depth=3).double()
    real = torch.randn(len(LABELS), 3, 8, 8, dtype=torch.float64)
    syn = torch.randn(C, 2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    return net, real, syn, torch.tensor([[0, 0], [1, 1]])


def test_cobra_cafe_objective_terms_and_layer_weights(deep_batch):
    net, real, syn, syn_labels = deep_batch
    terms = cobra_cafe_terms(net, real, syn)
    # [f5, f4, f3, f2, f1]: outputs 0, -1, -2 (f5, f1, f2) weigh 1; -3, -4 (f3, f4) weigh 0.1
    expected = (terms[0] + terms[4] + terms[3] + 0.1 * terms[2] + 0.1 * terms[1]) / C
    cobra = distiller("cafe+cobra", objective="cobra-code")
    loss = fairbench_loss(cobra, net, real, syn, syn_labels)
    torch.testing.assert_close(loss, expected, rtol=1e-7, atol=0)
    (grad,) = torch.autograd.grad(loss, syn, retain_graph=True)
    (expected_grad,) = torch.autograd.grad(expected, syn, retain_graph=True)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-6, atol=1e-7 * float(expected_grad.abs().max()))
    # no discrimination term: its weight does not enter
    no_disc = distiller("cafe+cobra", objective="cobra-code", discrimination_weight=5.0)
    torch.testing.assert_close(fairbench_loss(no_disc, net, real, syn, syn_labels), expected, rtol=1e-7, atol=0)
    # each output's weight is pinned: swapping any one output's weight (1 <-> 0.1) breaks the match
    for i, w in enumerate([1.0, 0.1, 0.1, 1.0, 1.0]):
        swapped = expected + ((1.1 - w) - w) * terms[i] / C
        assert not torch.allclose(loss, swapped, rtol=1e-7, atol=0)
    # fairbench's generic cafe+cobra (the default) is another objective
    generic = fairbench_loss(distiller("cafe+cobra"), net, real, syn, syn_labels)
    assert not torch.allclose(generic, expected)


def test_cobra_cafe_vanilla_mode_weighs_five_outputs_and_sums_the_discrimination(deep_batch):
    net, real, syn, syn_labels = deep_batch
    pooled = [0.0] * 5
    for c in range(C):
        real_out, syn_out = cobra_cafe_outputs(net, real[LABELS == c]), cobra_cafe_outputs(net, syn[c])
        for i in range(5):
            pooled[i] = pooled[i] + (real_out[i].mean(0) - syn_out[i].mean(0)).pow(2).sum()
    centres = torch.stack([cobra_cafe_outputs(net, syn[c])[0].mean(0) for c in range(C)])
    logits = cobra_cafe_outputs(net, real)[0] @ centres.T
    expected = sum(pooled) + 0.01 * F.cross_entropy(logits, LABELS, reduction="sum")
    loss = fairbench_loss(distiller("cafe", objective="cobra-code"), net, real, syn, syn_labels)
    torch.testing.assert_close(loss, expected, rtol=1e-7, atol=0)


def test_cobra_cafe_image_lr_halves_at_its_milestones():
    cafe = distiller("cafe+cobra", objective="cobra-code", lr_img_halvings=[1200, 1600, 1800])
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    rates = []
    for iteration in (0, 1199, 1200, 1600, 1800, 2000):
        cafe.start_iteration(iteration, optimizer)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.025, 0.0125, 0.0125])


def test_cobra_idc_starts_from_whole_real_images_and_decodes_with_align_corners():
    from fairbench.distill.sampling import ClassSampler
    from fairbench.testing import tiny_splits

    train, _ = tiny_splits()
    idc = build_distiller("idc", method_hparams("idc", "", 2, {"init": "whole", "align_corners": True}))
    torch.manual_seed(0)
    stored, labels = idc.initial_images(train, 2, ClassSampler(train.labels, train.num_classes))
    assert stored.shape == (2 * train.num_classes, *train.image_shape)
    real = train.normalize(train.images)
    assert all(any(torch.equal(s, r) for r in real[train.labels == y]) for s, y in zip(stored, labels))
    assert idc.real_images_per_class(10) == 10  # the mosaic init takes factor² = 4 times more
    tiles = stored[:1, :, : train.image_shape[1] // 2, : train.image_shape[2] // 2]
    upsampled = F.interpolate(tiles, size=train.image_shape[1:], mode="bilinear", align_corners=True)
    torch.testing.assert_close(idc.decode(stored[:1])[:1], upsampled)


@pytest.mark.parametrize(
    "method,overrides",
    [
        ("idc+fairdd", {"init": "whole", "align_corners": True, "inner_loop": 0, "group_reduce": "mean", "dsa": False}),
        ("cafe+cobra", {"objective": "cobra-code", "lr_img_halvings": [1], "iterations": 2, "dsa": False}),
    ],
)
def test_cobra_suite_settings_pass_check_method(method, overrides):
    from fairbench.testing import check_method

    report = check_method(method, overrides=overrides)
    assert report.ok, str(report)


def test_dry_runs_show_each_papers_group_reduce_and_list_names_the_new_suites(capsys):
    from fairbench.cli import main

    def run(*args):
        assert main(list(args)) in (0, None)
        return capsys.readouterr().out.splitlines()

    for suite, reduce in (("cobra-dc-cmnist", "mean"), ("fairdd-dc-cmnist", "sum")):
        lines = run("run", f"suite={suite}", "--dry-run")
        cells = {a.split()[2]: b for a, b in zip(lines, lines[1:]) if " x convnet: protocol " in a}
        assert set(cells) == {"dc", "dc+fairdd"} | ({"dc+cobra"} if suite.startswith("cobra") else set())
        for method, protocol in cells.items():
            assert ("group_reduce: " + reduce in protocol) == (method == "dc+fairdd"), (suite, method)
        departures = [line for line in lines if "group_reduce=" in line]  # sum is the registry's
        assert departures == (["  distill dc+fairdd.group_reduce=mean (registry: sum)"] if reduce == "mean" else [])
    listed = run("list", "suites")
    datasets = ["cmnist", "cmnist-bg", "cfmnist", "cfmnist-bg", "cifar10s", "utkface", "bffhq"]
    for base, script in (("idc", "scripts/run_idc.sh"), ("cafe", "scripts/run_cafe.sh")):
        for dataset in datasets:
            row = next(line for line in listed if line.startswith(f"cobra-{base}-{dataset} "))
            assert script in row, row


def test_group_reduce_is_an_option_recorded_only_where_given(capsys):
    from fairbench.cli import main

    assert "group_reduce" not in method_hparams("dc+fairdd", "", 10)  # protocol ids from before stay
    assert method_hparams("dc+fairdd", "", 10, {"group_reduce": "mean"})["group_reduce"] == "mean"
    assert "group_reduce" not in method_hparams("dc+cobra", "", 10, {"group_reduce": "mean"})
    assert main(["run", "methods=[dc+fairdd]", "distill.group_reduce=avg", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fairbench: error: method 'dc+fairdd': group_reduce='avg' is invalid; choose from: sum, mean"]
