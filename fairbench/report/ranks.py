"""Ranks that claim only what the runs support: tiers, 95% intervals, spread across seeds.

A table's rows are ranked per headline metric (:data:`HEADLINE`) in tiers. The best row by mean
(the metric's direction from the metric table) opens the first tier; every other row is tested
against it with a one-sided Welch t-test over evaluation runs ("the leader is better"), and the
p-values are Holm-corrected over those comparisons. The rows the corrected test does not separate
from the leader share its tier, and so does every row whose mean lies between theirs (a tier is
never holed); the best of the rest opens the next tier, and so on. A row's rank
is one more than the number of rows in better tiers (1, 1, 3, ...), so a rank says how many rows
are shown better, not a position the runs cannot support. Bold in the rendered tables marks the
first tier.

Each mean gets the half-width of its 95% Student-t interval. Over the evaluation runs of one
synthetic set that is the evaluation noise; where a row pools several distillation seeds, the
interval is over the seeds' means (seeds - 1 degrees of freedom), the unit that was replicated,
and the spread across seeds (``seed_std``, std of the seeds' means) is reported apart from the
spread of evaluation runs on one set (``eval_std``, the seeds' mean within-set std), as DomainBed
reports standard errors over trials.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats

from ..evaluation.metrics import HIGHER_IS_BETTER

HEADLINE = ("acc", "deo_mean", "worst_group_acc")
ALPHA = 0.05
TEST = (
    f"ranks: one-sided Welch t-tests over evaluation runs against each tier's best row, "
    f"Holm-corrected, α = {ALPHA}; rows not separated from the best share its rank"
)
INTERVAL = "± is the half-width of the 95% t-interval of the mean (over seeds' means where a row has several seeds)"


def better_p(a: list[float], b: list[float], higher_is_better: bool) -> float | None:
    """One-sided Welch p-value of "``a`` is better than ``b``"; None with a single run on a side.

    Two constant samples have no variance to test: the p-value is then 0 if ``a`` is better, else 1.
    """
    if len(a) < 2 or len(b) < 2:
        return None
    sign = 1.0 if higher_is_better else -1.0  # bigger signed value = better
    x, y = sign * np.asarray(a, float), sign * np.asarray(b, float)
    if x.std() == 0 and y.std() == 0:
        return 0.0 if x.mean() > y.mean() else 1.0
    with warnings.catch_warnings():  # nearly equal samples: scipy warns of precision loss, p is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(x, y, equal_var=False, alternative="greater").pvalue)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order."""
    order = np.argsort(pvalues)
    adjusted, running = [0.0] * len(pvalues), 0.0
    for step, index in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - step) * pvalues[index]))
        adjusted[index] = running
    return adjusted


def tier_ranks(runs: list[list[float]], higher_is_better: bool, alpha: float = ALPHA) -> list[int | None]:
    """Each row's rank (module docstring) from its runs; None for a row without finite runs.

    A row with a single run cannot be tested: it is separated from the leader only when its mean
    is worse (a leader with one run, likewise, separates itself from nothing it ties).
    """
    sign = 1.0 if higher_is_better else -1.0
    means = [sign * float(np.mean(r)) if len(r) and all(math.isfinite(v) for v in r) else None for r in runs]
    ranks: list[int | None] = [None] * len(runs)
    left = [i for i, m in enumerate(means) if m is not None]
    placed = 0
    while left:
        leader = max(left, key=lambda i: means[i])
        others = [i for i in left if i != leader]
        raw = [better_p(runs[leader], runs[i], higher_is_better) for i in others]
        tested = [p for p in raw if p is not None]
        adjusted = iter(holm(tested)) if tested else iter(())
        kept = [leader]
        for i, p in zip(others, raw):
            separated = (next(adjusted) < alpha) if p is not None else means[i] < means[leader]
            if not separated:
                kept.append(i)
        # a tier never skips a row between its members: a row whose mean is better than a row the
        # test kept in the tier stays too (a noisy row can escape separation that a steadier,
        # better row does not; ranking the better row lower would claim more than the runs show)
        floor = min(means[i] for i in kept)
        tier = [i for i in left if means[i] >= floor]
        for i in tier:
            ranks[i] = placed + 1
        placed += len(tier)
        left = [i for i in others if i not in tier]
    return ranks


def ci95(values: list[float]) -> float:
    """Half-width of the 95% Student-t interval of the mean of ``values``; NaN below two values."""
    values = [v for v in values if math.isfinite(v)]
    if len(values) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))


def seed_columns(metric: str, by_seed: list[list[float]]) -> dict[str, float]:
    """``{metric}_ci95``, ``{metric}_seed_std``, ``{metric}_eval_std`` of a row whose runs are
    grouped by distillation seed (module docstring)."""
    by_seed = [runs for runs in by_seed if runs]
    pooled = [v for runs in by_seed for v in runs]
    means = [float(np.mean(runs)) for runs in by_seed]
    several = len(by_seed) > 1
    within = [float(np.std(runs, ddof=1)) for runs in by_seed if len(runs) > 1]
    return {
        f"{metric}_ci95": ci95(means if several else pooled),
        f"{metric}_seed_std": float(np.std(means, ddof=1)) if several else float("nan"),
        f"{metric}_eval_std": float(np.mean(within)) if within else float("nan"),
    }


def rank_columns(runs: list[dict[str, list[float]]], metrics=HEADLINE) -> dict[str, list[int | None]]:
    """``{metric}_rank`` for the rows of one table, from each row's ``{metric: runs}``; a metric a
    row lacks (a record older than it) leaves that row unranked."""
    return {
        f"{metric}_rank": tier_ranks([row.get(metric, []) for row in runs], HIGHER_IS_BETTER[metric])
        for metric in metrics
    }
