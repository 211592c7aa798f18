import numpy as np
import pytest
import torch

from fairbench.evaluation.metrics import group_fairness


def test_hand_computed_two_groups():
    # class 0: group 0 recall 2/2, group 1 recall 1/2  → gap 50
    # class 1: group 0 recall 1/2, group 1 recall 2/2  → gap 50
    y = [0, 0, 1, 1, 0, 0, 1, 1]
    p = [0, 0, 1, 0, 0, 1, 1, 1]
    g = [0, 0, 0, 0, 1, 1, 1, 1]
    m = group_fairness(np.array(y), np.array(p), np.array(g), 2, 2)
    assert m["acc"] == pytest.approx(75.0)
    assert m["deo_max"] == pytest.approx(50.0)
    assert m["deo_mean"] == pytest.approx(50.0)
    # precision: g0 class0 2/3, class1 1/1; g1 class0 1/1, class1 2/3 → gaps 1/3 each
    assert m["suff_max"] == pytest.approx(100 / 3)
    assert m["suff_mean"] == pytest.approx(100 / 3)
    assert m["worst_group_acc"] == pytest.approx(75.0)


def test_group_accuracies_are_the_bars_behind_the_worst_group():
    # group 0: 3 of 4 right, group 1: 1 of 2, group 2: no test sample (None, left out of the worst)
    y = [0, 1, 0, 1, 0, 1]
    p = [0, 1, 0, 0, 1, 1]
    g = [0, 0, 0, 0, 1, 1]
    m = group_fairness(y, p, g, 2, 3)
    assert m["group_acc"] == [pytest.approx(75.0), pytest.approx(50.0), None]
    assert m["worst_group_acc"] == pytest.approx(50.0)


def test_skip_leaves_an_empty_cell_out():
    # group 1 has no sample of class 1: class 1's gap uses group 0 alone (gap 0), not 1 - 0.
    y = torch.tensor([0, 1, 0])
    p = torch.tensor([0, 1, 1])
    g = torch.tensor([0, 0, 1])
    m = group_fairness(y, p, g, 2, 2, undefined="skip")
    assert m["deo_max"] == pytest.approx(100.0)  # class 0: recall 1 in g0, 0 in g1
    assert m["deo_mean"] == pytest.approx(50.0)  # (100 + 0) / 2, class 1 has one cell
    # precision class 1: g0 1/1, g1 0/1 → 100; class 0: g0 1/1, g1 undefined → 0
    assert m["suff_max"] == pytest.approx(100.0)
    assert m["suff_mean"] == pytest.approx(50.0)
    assert m["worst_group_acc"] == pytest.approx(0.0)


def test_skip_leaves_a_class_never_predicted_out():
    y = np.array([0, 1, 0, 1])
    p = np.array([0, 0, 0, 0])
    g = np.array([0, 0, 1, 1])
    m = group_fairness(y, p, g, 2, 2, undefined="skip")
    assert m["acc"] == pytest.approx(50.0)
    assert m["deo_max"] == pytest.approx(0.0)  # both groups: recall 1 for class 0, 0 for class 1
    assert m["suff_max"] == pytest.approx(0.0)  # only class 0 defined: 1/2 in both groups


def test_zero_is_the_default_and_counts_an_empty_cell_as_zero():
    # The reference convention: group 1's empty class-1 cell has recall 0, so class 1's gap is
    # 1 - 0; its class-0 cell has no predictions, so its precision is 0 too.
    y = torch.tensor([0, 1, 0])
    p = torch.tensor([0, 1, 1])
    g = torch.tensor([0, 0, 1])
    m = group_fairness(y, p, g, 2, 2)
    assert m == group_fairness(y, p, g, 2, 2, undefined="zero")
    assert m["deo_max"] == pytest.approx(100.0)
    assert m["deo_mean"] == pytest.approx(100.0)  # (100 + 100) / 2
    assert m["suff_max"] == pytest.approx(100.0)
    assert m["suff_mean"] == pytest.approx(100.0)  # class 0: g0 1/1, g1 no predictions → 0


def test_zero_gives_a_colour_predictor_a_sufficiency_gap():
    # Ten classes, ten colours; the model predicts the colour. Every (colour g, class c) cell with
    # predictions has c == g, so precision (1/10 there) is defined only on the diagonal: "skip"
    # sees no gap, the reference counts the off-diagonal cells as 0: a gap of 10 in every class.
    y = torch.arange(10).repeat_interleave(10)
    g = torch.arange(10).repeat(10)
    m_zero = group_fairness(y, g, g, 10, 10)
    m_skip = group_fairness(y, g, g, 10, 10, undefined="skip")
    assert m_skip["suff_max"] == pytest.approx(0.0)
    assert m_zero["suff_max"] == pytest.approx(10.0)
    assert m_zero["suff_mean"] == pytest.approx(10.0)


def test_zero_turns_one_empty_test_cell_into_a_full_gap():
    # A 98%-accurate model on 10 classes x 2 groups, where group 1 has no test sample of class 3:
    # the reference convention gives class 3 a gap of its recall in group 0 (100), skip does not.
    y = torch.arange(10).repeat(10)
    g = torch.arange(100) % 2
    keep = ~((y == 3) & (g == 1))
    y, g = y[keep], g[keep]
    p = y.clone()
    p[:2] = (p[:2] + 1) % 10  # two mistakes
    zero = group_fairness(y, p, g, 10, 2)
    skip = group_fairness(y, p, g, 10, 2, undefined="skip")
    assert zero["acc"] > 97
    assert zero["deo_max"] == pytest.approx(100.0)
    assert skip["deo_max"] < 50


def test_unknown_convention_is_refused():
    with pytest.raises(ValueError, match="zero, skip"):
        group_fairness([0, 1], [0, 1], [0, 1], 2, 2, undefined="ignore")


def test_perfect_predictions_have_no_gap():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    g = rng.integers(0, 3, 200)
    m = group_fairness(y, y, g, 5, 3)
    # demographic parity is not a gap of errors: a perfect model inherits the groups' base rates
    base_rates = np.array([[np.mean(y[g == k] == c) for k in range(3)] for c in range(5)])
    parity = 100 * (base_rates.max(1) - base_rates.min(1))
    assert m.pop("dp_max") == pytest.approx(parity.max()) and m.pop("dp_mean") == pytest.approx(parity.mean())
    assert m == {
        "acc": 100.0,
        "deo_max": 0.0,
        "deo_mean": 0.0,
        "suff_max": 0.0,
        "suff_mean": 0.0,
        "eo_max": 0.0,
        "eo_mean": 0.0,
        "worst_group_acc": 100.0,
        "group_acc": [100.0, 100.0, 100.0],
    }


def test_length_mismatch_is_refused():
    with pytest.raises(ValueError):
        group_fairness([0, 1], [0], [0, 1], 2, 2)
