import numpy as np
import pytest
import torch

from fairbench.metrics import group_fairness


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


def test_empty_cell_is_left_out_not_counted_as_zero():
    # group 1 has no sample of class 1: class 1's gap uses group 0 alone (gap 0), not 1 - 0.
    y = torch.tensor([0, 1, 0])
    p = torch.tensor([0, 1, 1])
    g = torch.tensor([0, 0, 1])
    m = group_fairness(y, p, g, 2, 2)
    assert m["deo_max"] == pytest.approx(100.0)   # class 0: recall 1 in g0, 0 in g1
    assert m["deo_mean"] == pytest.approx(50.0)   # (100 + 0) / 2, class 1 has one cell
    # precision class 1: g0 1/1, g1 0/1 → 100; class 0: g0 1/1, g1 undefined → 0
    assert m["suff_max"] == pytest.approx(100.0)
    assert m["suff_mean"] == pytest.approx(50.0)
    assert m["worst_group_acc"] == pytest.approx(0.0)


def test_class_never_predicted_leaves_precision_undefined():
    y = np.array([0, 1, 0, 1])
    p = np.array([0, 0, 0, 0])
    g = np.array([0, 0, 1, 1])
    m = group_fairness(y, p, g, 2, 2)
    assert m["acc"] == pytest.approx(50.0)
    assert m["deo_max"] == pytest.approx(0.0)   # both groups: recall 1 for class 0, 0 for class 1
    assert m["suff_max"] == pytest.approx(0.0)  # only class 0 defined: 1/2 in both groups


def test_perfect_predictions_have_no_gap():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    g = rng.integers(0, 3, 200)
    m = group_fairness(y, y, g, 5, 3)
    assert m == {"acc": 100.0, "deo_max": 0.0, "deo_mean": 0.0, "suff_max": 0.0, "suff_mean": 0.0,
                 "worst_group_acc": 100.0}


def test_length_mismatch_is_refused():
    with pytest.raises(ValueError):
        group_fairness([0, 1], [0], [0, 1], 2, 2)
