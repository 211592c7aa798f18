import numpy as np
import ot
import torch

from fairbench.distill.aggregation import matching_terms
from fairbench.distill.barycenter import group_barycenter, sinkhorn_plans, transport_cost
from fairbench.distill.feature_targets import barycenter_target

SHARP = {"reg": 1e-3, "iterations": 10, "sinkhorn_iterations": 300}


def two_groups(points_a, points_b):
    """One problem whose two groups are the given clouds, with equal group weights."""
    m = len(points_a)
    points = torch.cat([points_a, points_b]).unsqueeze(0)
    mass = torch.zeros(1, 2, 2 * m)
    mass[0, 0, :m] = 1 / m
    mass[0, 1, m:] = 1 / m
    return points, mass


def matched_distance(x, y):
    """Exact W2² between two uniform clouds of the same size (POT's network simplex)."""
    weights = np.full(len(x), 1 / len(x))
    return ot.emd2(weights, weights, ot.dist(x.double().numpy(), y.double().numpy()))


def test_translated_copies_meet_at_the_midpoint_cloud():
    torch.manual_seed(0)
    cloud = 2 * torch.randn(8, 3)
    shift = torch.tensor([4.0, -2.0, 1.0])
    points, mass = two_groups(cloud, cloud + shift)
    bary = group_barycenter(points, mass, torch.tensor([[0.5, 0.5]]), torch.randn(1, 8, 3), **SHARP)
    assert matched_distance(bary[0], cloud + shift / 2) < 1e-3
    # and it agrees with POT's exact free-support barycenter
    exact = ot.lp.free_support_barycenter(
        [cloud.numpy(), (cloud + shift).numpy()],
        [np.full(8, 1 / 8)] * 2,
        np.random.default_rng(0).normal(size=(8, 3)),
        weights=np.array([0.5, 0.5]),
    )
    assert matched_distance(bary[0], torch.from_numpy(exact).float()) < 1e-3


def test_unequal_group_sizes_still_weigh_groups_equally():
    """A 2-point group and a 6-point group: the barycenter sits halfway, not at the majority."""
    majority = torch.zeros(6, 2)
    minority = torch.tensor([[10.0, 0.0], [10.0, 0.0]])
    points = torch.cat([majority, minority]).unsqueeze(0)
    mass = torch.zeros(1, 2, 8)
    mass[0, 0, :6] = 1 / 6
    mass[0, 1, 6:] = 1 / 2
    bary = group_barycenter(points, mass, torch.tensor([[0.5, 0.5]]), torch.randn(1, 3, 2), **SHARP)
    torch.testing.assert_close(bary[0], torch.tensor([[5.0, 0.0]]).expand(3, 2), atol=1e-3, rtol=0)


def test_absent_group_is_ignored_and_classes_are_independent():
    torch.manual_seed(1)
    cloud = torch.randn(4, 2)
    points, mass = two_groups(cloud, cloud + 3)
    mass_absent = mass.clone()
    mass_absent[0, 1] = 0
    batch_points = torch.cat([points, points])
    batch_mass = torch.cat([mass, mass_absent])
    weight = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    bary = group_barycenter(batch_points, batch_mass, weight, torch.randn(2, 4, 2), **SHARP)
    assert torch.isfinite(bary).all()
    assert matched_distance(bary[0], cloud + 1.5) < 1e-3
    assert matched_distance(bary[1], cloud) < 1e-3


def test_heavy_regularisation_collapses_to_the_mean_of_group_means():
    torch.manual_seed(2)
    points, mass = two_groups(torch.randn(5, 3), torch.randn(5, 3) + 2)
    bary = group_barycenter(
        points, mass, torch.tensor([[0.5, 0.5]]), torch.randn(1, 4, 3), reg=1e4, iterations=3, sinkhorn_iterations=20
    )
    mean_of_means = (points[0, :5].mean(0) + points[0, 5:].mean(0)) / 2
    torch.testing.assert_close(bary[0], mean_of_means.expand(4, 3), atol=1e-3, rtol=0)


def test_sinkhorn_plans_have_the_asked_marginals_and_respect_padding():
    torch.manual_seed(3)
    cost = torch.rand(2, 4, 5)
    log_a = torch.full((2, 4), -np.log(4))
    b = torch.tensor([[0.25, 0.25, 0.5, 0.0, 0.0], [0.2] * 5])
    plan = sinkhorn_plans(cost, log_a, b.log(), reg=0.1, iterations=200)
    torch.testing.assert_close(plan.sum(2), torch.full((2, 4), 0.25), atol=2e-3, rtol=0)
    torch.testing.assert_close(plan.sum(1), b, atol=1e-4, rtol=0)


def test_sinkhorn_plans_follow_the_textbook_log_domain_iteration():
    """The solver folds the marginals into the kernel to save a launch per update: the same
    iterations as f = log a - lse(K + g), g = log b - lse(K + f), within float rounding."""
    torch.manual_seed(5)
    cost = torch.rand(3, 6, 7, dtype=torch.float64) * 4
    log_a = torch.full((3, 6), -np.log(6), dtype=torch.float64)
    b = torch.rand(3, 7, dtype=torch.float64) * (torch.rand(3, 7) < 0.7)  # with padding
    log_b = (b / b.sum(1, keepdim=True)).log()
    for iterations in (1, 2, 25):
        kernel = -cost / (0.05 * cost.flatten(1).mean(1).view(-1, 1, 1))
        f, g = torch.zeros_like(log_a), torch.zeros_like(log_b)
        for _ in range(iterations):
            f = log_a - torch.logsumexp(kernel + g.unsqueeze(1), dim=2)
            g = log_b - torch.logsumexp(kernel + f.unsqueeze(2), dim=1)
        expected = torch.exp(kernel + f.unsqueeze(2) + g.unsqueeze(1))
        plan = sinkhorn_plans(cost, log_a, log_b, reg=0.05, iterations=iterations)
        torch.testing.assert_close(plan, expected, rtol=1e-12, atol=1e-15)
        assert (plan[log_b.isinf().unsqueeze(1).expand_as(plan)] == 0).all()


def test_transport_cost_is_zero_on_itself_and_pulls_points_together():
    torch.manual_seed(4)
    y = torch.randn(1, 6, 3)
    assert transport_cost(y, y, reg=1e-3, iterations=300).item() < 1e-3
    x = (y + 1).requires_grad_(True)
    transport_cost(x, y, reg=1e-3, iterations=300).sum().backward()
    # each point is pulled back towards its partner: the gradient points along +1
    assert (x.grad > 0).all()


def test_barycenter_target_builds_group_clouds_from_a_class_major_batch():
    """Class 0: group 0 at the origin, group 1 at 4 (one sample): barycenter at 2, not near 0."""
    embed = torch.tensor([[0.0], [0.0], [0.0], [4.0], [1.0], [1.0], [1.0], [1.0]])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    groups = torch.tensor([0, 0, 0, 1, 0, 0, 0, 0])
    target = barycenter_target(
        embed, labels, groups, 2, 2, torch.zeros(2, 2, 1), {"ot_reg": 1e-3, "ot_iterations": 300, "bary_iterations": 5}
    )
    torch.testing.assert_close(target.support, torch.tensor([[[2.0], [2.0]], [[1.0], [1.0]]]), atol=1e-3, rtol=0)
    # the pooled mean the vanilla target would match sits at 1, the majority's side
    assert matching_terms("vanilla", labels, groups, 2, 2).reduce(embed)[0, 0].item() == 1.0
