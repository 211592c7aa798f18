"""Method ids (``base`` or ``base+variant``), their hyperparameters, and the distillers behind them.

A base distiller is a class registered here; its hyperparameters live in
``registry/methods/<base>.yaml`` (defaults, then per dataset, then per IPC), and a variant's
adjustments per base in ``registry/variants/<variant>.yaml``.
"""

from __future__ import annotations

from ..errors import unknown_choice
from ..overrides import apply_overrides, check_known
from ..registry import Registry, entries, entry
from .base import DistillContext, Distiller, DistillStats, SyntheticSet
from .cafe import FeatureAlignment
from .dc import GradientMatching, GradientMatchingDSA
from .dm import DistributionMatching
from .idc import MultiFormation
from .mtt import TrajectoryMatching
from .random_real import RandomReal

__all__ = ["DistillContext", "Distiller", "DistillStats", "SyntheticSet", "build_distiller",
           "method_hparams", "method_ids", "parse_method"]

BASES: Registry = Registry("base distiller")
for _cls in (RandomReal, DistributionMatching, GradientMatching, GradientMatchingDSA, MultiFormation,
             FeatureAlignment, TrajectoryMatching):
    BASES.register(_cls.name)(_cls)


def method_ids() -> list[str]:
    """Every valid method id: each base, then each base with each variant it supports."""
    ids = []
    for base in BASES.names():
        for aggregation in BASES.get(base).aggregations:
            ids.append(base if aggregation == "vanilla" else f"{base}+{aggregation}")
    return ids


def parse_method(method_id: str) -> tuple[str, str]:
    """``"dm+cobra"`` → ``("dm", "cobra")``; ``"dm"`` → ``("dm", "vanilla")``."""
    if not isinstance(method_id, str) or method_id not in method_ids():
        raise unknown_choice("method", method_id, method_ids())
    base, _, variant = method_id.partition("+")
    return base, variant or "vanilla"


def _layered(spec: dict, dataset: str, ipc: int) -> dict:
    hparams = dict(spec.get("defaults") or {})
    hparams.update((spec.get("datasets") or {}).get(dataset) or {})
    hparams.update((spec.get("ipc") or {}).get(ipc) or {})
    return hparams


def method_hparams(method_id: str, dataset: str, ipc: int, overrides: dict | None = None) -> dict:
    """Resolved hyperparameters: base registry entry, the variant's adjustments, then ``overrides``.

    ``overrides`` holds keys for every method of a run; a method takes those it knows, and a
    nested mapping under a method id or base name (``{"dm+cobra": {"warmup_epochs": 2}}``) applies
    to that method alone, where an unknown key is an error.
    """
    base, variant = parse_method(method_id)
    hparams = _layered(entry("methods", base), dataset, ipc)
    if variant != "vanilla":
        per_base = (entry("variants", variant).get("bases") or {}).get(base) or {}
        hparams.update(_layered(per_base, dataset, ipc))
    overrides = overrides or {}
    shared = {k: v for k, v in overrides.items() if k in hparams and not isinstance(v, dict)}
    hparams = apply_overrides(f"method '{method_id}'", hparams, shared)
    for scope in (base, method_id):
        if isinstance(overrides.get(scope), dict):
            hparams = apply_overrides(f"method '{method_id}'", hparams, overrides[scope])
    return hparams


def check_overrides(overrides: dict) -> None:
    """Every ``distill.KEY`` must be a hyperparameter of some method, so a typo fails at once.

    Keys no method of *this* run uses are fine: a suite's settings survive ``methods=[...]``.
    """
    ids = method_ids()
    scopes = set(ids) | set(BASES.names())
    known = set().union(*(method_hparams(m, "", 0) for m in ids))
    shared = {k: v for k, v in overrides.items() if not (isinstance(v, dict) and k in scopes)}
    check_known("method", shared, known)
    for scope, own in overrides.items():
        if isinstance(own, dict) and scope in scopes:
            for method_id in (m for m in ids if scope in (m, m.partition("+")[0])):
                method_hparams(method_id, "", 0, {scope: own})


def build_distiller(method_id: str, hparams: dict) -> Distiller:
    base, variant = parse_method(method_id)
    return BASES.get(base)(hparams, variant)


def describe(method_id: str) -> str:
    """One line for ``fairbench list methods``: the base, then the variant if any."""
    base, variant = parse_method(method_id)
    text = entries("methods").get(base, {}).get("description") or BASES.get(base).description
    if variant != "vanilla":
        text = f"{entry('variants', variant).get('description', variant)} | on {base}"
    return text

