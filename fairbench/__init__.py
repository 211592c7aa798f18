"""fairbench: benchmark suite and leaderboard harness for fair dataset distillation.

The extension API (see ``docs/plugins.md``) and the names a script needs (``run_cell``, the metric
table, the papers' reported numbers) are importable from here. They load on first use, so
``import fairbench`` stays cheap for the command line; type checkers read the same names from the
``TYPE_CHECKING`` block below.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from .core.version import __version__

_PUBLIC = {
    "register_variant": "fairbench.distill.aggregation",
    "MatchingTerms": "fairbench.distill.aggregation",
    "matching_terms": "fairbench.distill.aggregation",
    "ClassSampler": "fairbench.distill.sampling",
    "register_base": "fairbench.distill",
    "Distiller": "fairbench.distill.base",
    "DistillContext": "fairbench.distill.base",
    "SyntheticSet": "fairbench.distill.base",
    "method_provenance": "fairbench.distill.provenance",
    "register_dataset": "fairbench.data",
    "GroupDataset": "fairbench.data",
    "DatasetSplits": "fairbench.data",
    "register_evaluator": "fairbench.evaluation.evaluate",
    "group_fairness": "fairbench.evaluation.metrics",
    "METRICS": "fairbench.evaluation.metrics",
    "METRIC_TABLE": "fairbench.evaluation.metrics",
    "HIGHER_IS_BETTER": "fairbench.evaluation.metrics",
    "reported_rows": "fairbench.report.reported",
    "run_cell": "fairbench.run.cell",
    "FairbenchError": "fairbench.core.errors",
}

if TYPE_CHECKING:
    from .core.errors import FairbenchError
    from .data import DatasetSplits, GroupDataset, register_dataset
    from .distill import register_base
    from .distill.aggregation import MatchingTerms, matching_terms, register_variant
    from .distill.base import DistillContext, Distiller, SyntheticSet
    from .distill.provenance import method_provenance
    from .distill.sampling import ClassSampler
    from .evaluation.evaluate import register_evaluator
    from .evaluation.metrics import HIGHER_IS_BETTER, METRIC_TABLE, METRICS, group_fairness
    from .report.reported import reported_rows
    from .run.cell import run_cell

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'fairbench' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
