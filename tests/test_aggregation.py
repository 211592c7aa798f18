import pytest
import torch

from fairbench.distill.aggregation import matching_terms


@pytest.fixture
def batch():
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1])
    groups = torch.tensor([0, 0, 0, 1, 0, 1, 1, 2, 2])
    feats = torch.randn(len(labels), 6)
    return labels, groups, feats


def _mean(feats, mask):
    return feats[mask].mean(0)


def test_vanilla_is_the_pooled_class_mean(batch):
    labels, groups, feats = batch
    terms = matching_terms("vanilla", labels, groups, 2, 3)
    targets = terms.reduce(feats)
    assert targets.shape == (2, 1, 6)
    for c in range(2):
        torch.testing.assert_close(targets[c, 0], _mean(feats, labels == c))
    assert terms.active.all()


def test_fairdd_has_one_term_per_present_group(batch):
    labels, groups, feats = batch
    terms = matching_terms("fairdd", labels, groups, 2, 3)
    targets = terms.reduce(feats)
    assert targets.shape == (2, 3, 6)
    expected_active = torch.tensor([[True, True, False], [True, True, True]])
    assert torch.equal(terms.active, expected_active)
    for c in range(2):
        for g in range(3):
            if expected_active[c, g]:
                torch.testing.assert_close(targets[c, g], _mean(feats, (labels == c) & (groups == g)))


def test_cobra_is_the_uniform_mean_of_group_means(batch):
    labels, groups, feats = batch
    targets = matching_terms("cobra", labels, groups, 2, 3).reduce(feats)
    class0 = (_mean(feats, (labels == 0) & (groups == 0)) + _mean(feats, (labels == 0) & (groups == 1))) / 2
    class1 = sum(_mean(feats, (labels == 1) & (groups == g)) for g in range(3)) / 3
    torch.testing.assert_close(targets[0, 0], class0)
    torch.testing.assert_close(targets[1, 0], class1)
    # and it differs from the pooled mean whenever groups are imbalanced
    assert not torch.allclose(targets[0, 0], _mean(feats, labels == 0))


def test_fairdd_and_cobra_mse_share_their_gradient_direction(batch):
    """Σ_g ‖μ_g − s‖² = G·‖s − μ̄‖² + const, so the two losses have parallel gradients in s."""
    labels, groups, feats = batch
    syn = torch.randn(2, 6, requires_grad=True)
    fair = matching_terms("fairdd", labels, groups, 2, 3)
    cobra = matching_terms("cobra", labels, groups, 2, 3)
    fair_loss = (((fair.reduce(feats) - syn.unsqueeze(1)) ** 2).sum(-1) * fair.active).sum()
    (fair_grad,) = torch.autograd.grad(fair_loss, syn)
    cobra_loss = (((cobra.reduce(feats) - syn.unsqueeze(1)) ** 2).sum(-1) * cobra.active).sum()
    (cobra_grad,) = torch.autograd.grad(cobra_loss, syn)
    groups_present = fair.active.sum(1, keepdim=True).float()
    torch.testing.assert_close(fair_grad, groups_present * cobra_grad)


def test_targets_are_differentiable_statistics(batch):
    labels, groups, feats = batch
    feats = feats.clone().requires_grad_(True)
    matching_terms("cobra", labels, groups, 2, 3).reduce(feats).sum().backward()
    # each class's weights sum to one, so each class contributes a unit mass of gradient
    assert feats.grad[labels == 0].sum(0).allclose(torch.ones(6))
