"""DEO, equalized odds and demographic parity cross-checked with fairlearn, one-vs-rest per class.

fairlearn's differences are binary: per class c they are applied to ``y == c`` and ``ŷ == c``
with the group as sensitive feature. Its MetricFrame knows only the groups present in its input
and takes a group without positives at a true-positive rate of 0: it agrees with fairbench's
``undefined="zero"`` wherever every group has test samples, and differs from ``"skip"`` exactly on
the classes with an empty (group, class) cell, and from ``"zero"`` where a group is absent.
"""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equal_opportunity_difference,
    equalized_odds_difference,
    selection_rate,
)

from fairbench.evaluation.metrics import METRIC_TABLE, group_fairness

CLASSES, GROUPS = 5, 4


def _fairlearn(y, p, g) -> dict[str, list[float]]:
    """Per class, fairlearn's three differences in percent."""
    per_class: dict[str, list[float]] = {"deo": [], "eo": [], "dp": []}
    for c in range(CLASSES):
        yc, pc = y == c, p == c
        per_class["deo"].append(100 * equal_opportunity_difference(yc, pc, sensitive_features=g))
        per_class["eo"].append(100 * equalized_odds_difference(yc, pc, sensitive_features=g))
        per_class["dp"].append(100 * demographic_parity_difference(yc, pc, sensitive_features=g))
    return per_class


def _ours(y, p, g, undefined="zero") -> dict:
    return group_fairness(y, p, g, CLASSES, GROUPS, undefined)


def _data(seed: int, n: int = 1500):
    """Labels with a spurious group (80% aligned), as in colored MNIST."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    g = np.where(rng.random(n) < 0.8, y % GROUPS, rng.integers(0, GROUPS, n))
    return y, g, rng


def _assert_agree(ours: dict, theirs: dict[str, list[float]]) -> None:
    for name in ("deo", "eo", "dp"):
        assert ours[f"{name}_max"] == pytest.approx(max(theirs[name]), abs=1e-9), name
        assert ours[f"{name}_mean"] == pytest.approx(np.mean(theirs[name]), abs=1e-9), name


@pytest.mark.parametrize("seed", [0, 1])
def test_random_predictions_agree_with_fairlearn(seed):
    y, g, rng = _data(seed)
    p = rng.integers(0, CLASSES, len(y))
    ours, theirs = _ours(y, p, g), _fairlearn(y, p, g)
    _assert_agree(ours, theirs)
    assert _ours(y, p, g, "skip")["eo_mean"] == pytest.approx(ours["eo_mean"])  # no empty cell: conventions agree
    assert 0 < ours["dp_mean"] < 20  # random predictions are nearly parity-fair


def test_predicting_the_group_is_maximally_unfair_for_both():
    """An adversarial model predicts the group instead of the class (colour instead of digit)."""
    y, g, _ = _data(2)
    p = g.copy()
    ours, theirs = _ours(y, p, g), _fairlearn(y, p, g)
    _assert_agree(ours, theirs)
    assert ours["dp_max"] == 100.0 and ours["eo_max"] == 100.0  # group c always, every other never predicts c
    frame = MetricFrame(metrics=selection_rate, y_true=y == 0, y_pred=p == 0, sensitive_features=g)
    assert frame.difference() * 100 == pytest.approx(ours["dp_max"])


def test_fpr_gap_enters_equalized_odds_where_tpr_gaps_vanish():
    """Group 0 gets class 0 for everything: class 0 has perfect recall in every group (no DEO gap)
    but a false-positive rate of 1 in group 0 and 0 elsewhere, a gap only equalized odds sees."""
    y, g, _ = _data(3)
    p = np.where(g == 0, 0, y)
    p = np.where(y == 0, 0, p)
    ours, theirs = _ours(y, p, g), _fairlearn(y, p, g)
    _assert_agree(ours, theirs)
    assert theirs["deo"][0] == 0.0 and theirs["eo"][0] == 100.0
    assert ours["eo_mean"] - ours["deo_mean"] == pytest.approx(100 / CLASSES)


def test_empty_cell_is_where_skip_and_fairlearn_differ():
    """An empty (group, class) cell: fairlearn counts its TPR as 0, as the reference's ``zero``
    does; ``skip`` leaves the cell out, so that class's DEO and EO differ from fairlearn's."""
    y, g, rng = _data(4)
    keep = ~((g == 1) & (y == 2))
    y, g = y[keep], g[keep]
    p = np.where(rng.random(len(y)) < 0.7, y, rng.integers(0, CLASSES, len(y)))
    theirs = _fairlearn(y, p, g)
    _assert_agree(_ours(y, p, g, "zero"), theirs)
    skip = _ours(y, p, g, "skip")
    assert skip["deo_max"] < max(theirs["deo"]) - 50  # the empty cell's class dominates only under zero
    assert skip["dp_max"] == pytest.approx(max(theirs["dp"]))  # selection rates have no empty cell here


def test_absent_group_is_where_zero_and_fairlearn_differ():
    """A group with no test sample at all: fairlearn never sees it; ``zero`` counts its rates as 0."""
    y, g, rng = _data(5)
    g = np.where(g == 3, 2, g)  # group 3 absent from the test split
    p = np.where(rng.random(len(y)) < 0.7, y, rng.integers(0, CLASSES, len(y)))
    theirs = _fairlearn(y, p, g)
    _assert_agree(_ours(y, p, g, "skip"), theirs)
    assert _ours(y, p, g, "zero")["dp_max"] > max(theirs["dp"]) + 5


def test_metric_table_says_direction_and_minimum_effect():
    for name in ("eo_max", "eo_mean", "dp_max", "dp_mean"):
        assert not METRIC_TABLE[name].higher_is_better
    assert METRIC_TABLE["eo_max"].min_effect == 2 * METRIC_TABLE["eo_mean"].min_effect
    assert METRIC_TABLE["dp_max"].min_effect == 2 * METRIC_TABLE["dp_mean"].min_effect
