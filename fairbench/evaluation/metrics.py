"""Group-fairness metrics of FairDD and COBRA, and the standard ones of fair ML, in percent.

Cells are (group g, class c). Recall r_gc = P(ŷ = c | y = c, g) is defined where the cell has test
samples; precision p_gc = P(y = c | ŷ = c, g) where group g has predictions of c. A class's gap is
max_g − min_g over the groups. The standard metrics are one-vs-rest per class (class c against the
rest, as fairlearn's binary ones are applied to ``y == c``):

- equalized odds (``eo_*``): per class, the larger of the true-positive-rate gap (the recall gap,
  DEO's) and the false-positive-rate gap, f_gc = P(ŷ = c | y ≠ c, g), defined where group g has
  samples of other classes;
- demographic parity (``dp_*``): per class, the gap in selection rate s_gc = P(ŷ = c | g),
  defined where group g has test samples.

What an undefined cell counts for is the ``undefined`` convention:

- ``"zero"`` (the default, the reference code's): an undefined cell counts as 0 and every class
  has a gap over all groups. A model that predicts colour instead of digit then gets the maximal
  sufficiency gap, and a test split with an empty cell gives that class a gap of its best recall.
- ``"skip"``: undefined cells are left out, and classes with no defined cell too (for
  equalized odds: a class's gap is that of the rates it has defined cells of).

fairlearn only knows the groups present in its input and, for a group without positives, takes a
true-positive rate of 0 with a warning; so it agrees with ``"zero"`` wherever every group has test
samples, and with ``"skip"`` wherever every cell has (``tests/test_fairness_metrics.py``).

Records written before the standard metrics lack ``eo_*`` and ``dp_*``: every reader treats a
metric missing from a record as absent (:func:`has_metric`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Metric:
    """What every consumer of a metric must agree on. ``higher_is_better``: tables mark the best
    value and ``fairbench regress`` knows which direction is a regression (accuracy falling, a gap
    rising). ``min_effect``: the smallest worsening, in points, that a regress verdict or a verify
    tolerance treats as real (docs/regress.md says how each was measured)."""

    higher_is_better: bool
    min_effect: float
    description: str


# The one metric table: extremes (a max over classes, the worst group) move about twice as much
# between machines as means over classes, so their minimum effect is twice as large.
METRIC_TABLE: dict[str, Metric] = {
    "acc": Metric(True, 10.0, "overall test accuracy"),
    "deo_max": Metric(False, 20.0, "largest per-class recall gap between groups (DEO_M)"),
    "deo_mean": Metric(False, 10.0, "mean per-class recall gap between groups (DEO_A)"),
    "suff_max": Metric(False, 20.0, "largest per-class precision gap between groups"),
    "suff_mean": Metric(False, 10.0, "mean per-class precision gap between groups"),
    "worst_group_acc": Metric(True, 20.0, "accuracy of the weakest group"),
    "eo_max": Metric(False, 20.0, "largest per-class equalized-odds gap (max of TPR and FPR gaps)"),
    "eo_mean": Metric(False, 10.0, "mean per-class equalized-odds gap (max of TPR and FPR gaps)"),
    "dp_max": Metric(False, 20.0, "largest per-class demographic-parity gap (selection rate)"),
    "dp_mean": Metric(False, 10.0, "mean per-class demographic-parity gap (selection rate)"),
}
METRICS = tuple(METRIC_TABLE)
HIGHER_IS_BETTER = {name: m.higher_is_better for name, m in METRIC_TABLE.items()}
MIN_EFFECT = {name: m.min_effect for name, m in METRIC_TABLE.items()}
UNDEFINED = ("zero", "skip")
METRIC_DEFAULTS = {"undefined": "zero"}  # the run key ``metrics.undefined``


def has_metric(source: dict, metric: str) -> bool:
    """Whether a record, claim or measurement (anything with ``metrics``) holds ``metric``; older
    ones lack the metrics added since."""
    return metric in source.get("metrics", {})


def summarize_runs(runs: list[dict]) -> dict:
    """``{metric: {mean, std, runs}}`` over evaluation runs (each a ``{metric: value}``): the one
    shape records, claims and verifications store. ``std`` is NumPy's (ddof 0), as it always was.
    A metric some run lacks is left out."""
    return {
        m: {
            "mean": float(np.mean([r[m] for r in runs])),
            "std": float(np.std([r[m] for r in runs])),
            "runs": [r[m] for r in runs],
        }
        for m in METRICS
        if all(m in r for r in runs)
    }


def _class_gaps(rates: torch.Tensor) -> torch.Tensor:
    """(G, C) rates with NaN for undefined cells → per-class max − min over defined cells, NaN for
    a class with none."""
    defined = ~rates.isnan()
    high = rates.masked_fill(~defined, -torch.inf).amax(0)
    low = rates.masked_fill(~defined, torch.inf).amin(0)
    return torch.where(defined.any(0), high - low, torch.nan)


def _gaps(rates: torch.Tensor) -> torch.Tensor:
    """The defined classes' gaps (:func:`_class_gaps`)."""
    gaps = _class_gaps(rates)
    return gaps[~gaps.isnan()]


def _odds_gaps(tpr: torch.Tensor, fpr: torch.Tensor) -> torch.Tensor:
    """Per class, the larger of its TPR and FPR gaps (either alone where the other is undefined)."""
    both = torch.stack([_class_gaps(tpr), _class_gaps(fpr)])
    gaps = both.nan_to_num(-torch.inf).amax(0)
    return gaps[~both.isnan().all(0)]


def _summary(values: torch.Tensor) -> tuple[float, float]:
    if values.numel() == 0:
        return float("nan"), float("nan")
    return 100 * float(values.max()), 100 * float(values.mean())


def group_fairness(
    y_true, y_pred, groups, num_classes: int, num_groups: int, undefined: str = "zero"
) -> dict[str, float]:
    """``acc``, ``deo_max``, ``deo_mean``, ``suff_max``, ``suff_mean``, ``worst_group_acc``, ``eo_max``,
    ``eo_mean``, ``dp_max``, ``dp_mean`` (percent), with undefined cells counted by the ``undefined`` convention (``"zero"`` or ``"skip"``), and
    ``group_acc``: each group's accuracy, the bars behind ``worst_group_acc`` (a list, so not one
    of :data:`METRICS`, which are the scalars tables and verdicts compare)."""
    if undefined not in UNDEFINED:
        raise ValueError(f"unknown undefined-cell convention {undefined!r}; choose from {', '.join(UNDEFINED)}")
    y, p, g = (
        torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a).long().flatten().cpu()
        for a in (y_true, y_pred, groups)
    )
    if not (len(y) == len(p) == len(g)) or len(y) == 0:
        raise ValueError("y_true, y_pred and groups must be non-empty and of equal length")
    cells = num_groups * num_classes
    correct = (p == y).double()
    hits = torch.bincount(g * num_classes + y, weights=correct, minlength=cells).view(num_groups, num_classes)
    support = torch.bincount(g * num_classes + y, minlength=cells).view(num_groups, num_classes)
    predicted = torch.bincount(g * num_classes + p, minlength=cells).view(num_groups, num_classes)
    group_size = support.sum(1, keepdim=True)
    recall = hits / support.double()  # 0/0 → NaN marks an empty cell
    precision = hits / predicted.double()
    false_positive = (predicted - hits) / (group_size - support).double()
    selection = predicted / group_size.double()
    rates = [recall, precision, false_positive, selection]
    if undefined == "zero":
        rates = [rate.nan_to_num(0.0) for rate in rates]
    recall, precision, false_positive, selection = rates
    deo_max, deo_mean = _summary(_gaps(recall))
    suff_max, suff_mean = _summary(_gaps(precision))
    eo_max, eo_mean = _summary(_odds_gaps(recall, false_positive))
    dp_max, dp_mean = _summary(_gaps(selection))
    group_size = group_size.flatten()
    # per group, in the test split's group order; None for a group with no test samples
    group_acc = [a if n else None for a, n in zip((hits.sum(1) / group_size * 100).tolist(), group_size.tolist())]
    return {
        "acc": 100 * float(correct.mean()),
        "group_acc": group_acc,
        "deo_max": deo_max,
        "deo_mean": deo_mean,
        "suff_max": suff_max,
        "suff_mean": suff_mean,
        "worst_group_acc": min(a for a in group_acc if a is not None),
        "eo_max": eo_max,
        "eo_mean": eo_mean,
        "dp_max": dp_max,
        "dp_mean": dp_mean,
    }


def group_acc_runs(runs: list[dict], group_names: list[str]) -> dict:
    """Per-group accuracies of evaluation runs as records and entries store them: the group names
    of the test split and, per run, each group's accuracy (None where the group has no sample)."""
    return {"groups": list(group_names), "runs": [list(run["group_acc"]) for run in runs]}


def group_acc_summary(runs: list[list[float | None]]) -> tuple[list[float], list[float]]:
    """Each group's mean and standard deviation over ``runs`` (NaN for a group never measured)."""
    columns = np.array([[np.nan if v is None else v for v in run] for run in runs], dtype=float)
    measured = ~np.isnan(columns).all(0)
    mean, std = np.full(columns.shape[1], np.nan), np.full(columns.shape[1], np.nan)
    mean[measured] = np.nanmean(columns[:, measured], 0)
    std[measured] = np.nanstd(columns[:, measured], 0)
    return mean.tolist(), std.tolist()
