"""fairbench: benchmark suite and leaderboard harness for fair dataset distillation.

The extension API (see ``docs/plugins.md``) is importable from here; its names load on first use,
so ``import fairbench`` stays cheap for the command line.
"""

from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {
    "register_variant": "fairbench.distill.aggregation",
    "MatchingTerms": "fairbench.distill.aggregation",
    "matching_terms": "fairbench.distill.aggregation",
    "ClassSampler": "fairbench.distill.sampling",
    "register_base": "fairbench.distill",
    "Distiller": "fairbench.distill.base",
    "DistillContext": "fairbench.distill.base",
    "SyntheticSet": "fairbench.distill.base",
    "register_dataset": "fairbench.data",
    "GroupDataset": "fairbench.data",
    "DatasetSplits": "fairbench.data",
    "register_evaluator": "fairbench.evaluate",
    "method_provenance": "fairbench.plugins",
    "FairbenchError": "fairbench.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'fairbench' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
