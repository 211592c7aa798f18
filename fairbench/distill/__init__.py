"""Method ids (``base`` or ``base+variant``), their hyperparameters, and the distillers behind them.

A base is a :class:`Distiller` subclass registered with :func:`register_base`; a variant is a
function registered with :func:`register_variant`. The method ids are every base alone, and every
base with every variant whose kind the base accepts: the registries decide, so a plugin's base or
variant gets its ids without a list to edit.

A base's hyperparameters are ``registry/methods/<base>.yaml`` (defaults, then per dataset, then per
IPC) or the ``config=`` given to :func:`register_base`, over the class's ``defaults``; a variant's
adjustments per base are ``registry/variants/<variant>.yaml`` or its ``config=``.
"""

from __future__ import annotations

from ..core.errors import FairbenchError, unknown_choice
from ..core.overrides import apply_overrides, check_known
from ..core.registry import Registry, entries, source_of
from ..training.augment import TRANSFORMS
from .aggregation import VARIANTS, MatchingTerms, register_variant
from .base import DistillContext, Distiller, DistillStats, SyntheticSet
from .cafe import FeatureAlignment
from .dc import GradientMatching, GradientMatchingDSA
from .dm import DistributionMatching
from .feature_targets import DISTANCES
from .hparams import register_config
from .idc import MultiFormation
from .mtt import TrajectoryMatching
from .random_real import RandomReal

__all__ = [
    "BASES",
    "DistillContext",
    "Distiller",
    "DistillStats",
    "MatchingTerms",
    "SyntheticSet",
    "build_distiller",
    "method_hparams",
    "method_ids",
    "method_options",
    "parse_method",
    "register_base",
    "register_variant",
]

BASES: Registry[type[Distiller]] = Registry("base distiller")


def register_base(name: str, *, config=None):
    """Decorate a :class:`Distiller` subclass as base ``name``.

    ``config``: its hyperparameters, a YAML path (relative to the module's file) or a mapping shaped
    like ``registry/methods/*.yaml`` (``defaults``, ``datasets``, ``ipc``); without one, the class's
    ``defaults`` are its hyperparameters.
    """

    def decorate(cls: type[Distiller]) -> type[Distiller]:
        if not (isinstance(cls, type) and issubclass(cls, Distiller)):
            raise FairbenchError(f"register_base('{name}') decorates a fairbench.Distiller subclass, not {cls!r}")
        cls.name = name
        BASES.add(name, cls, source_of(cls))
        register_config("methods", name, config, cls)
        return cls

    return decorate


for _cls in (
    RandomReal,
    DistributionMatching,
    GradientMatching,
    GradientMatchingDSA,
    MultiFormation,
    FeatureAlignment,
    TrajectoryMatching,
):
    register_base(_cls.name)(_cls)


def method_ids() -> list[str]:
    """Every valid method id: each base, then each base with each variant it accepts."""
    ids = []
    for base in BASES.names():
        cls = BASES.get(base)
        ids.append(base)
        ids += [f"{base}+{v}" for v in VARIANTS.names() if v != "vanilla" and cls.supports(v)]
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


def method_spec(base: str) -> dict:
    """A base's registry entry, its class ``defaults`` under the entry's own."""
    spec = dict(entries("methods").get(base) or {})
    spec["defaults"] = {**BASES.get(base).defaults, **(spec.get("defaults") or {})}
    return spec


def _variant_entry(base: str, variant: str) -> dict:
    if variant == "vanilla":
        return {}
    return (entries("variants").get(variant, {}).get("bases") or {}).get(base) or {}


def method_options(method_id: str) -> dict[str, dict]:
    """Settings a method accepts that its resolved hyperparameters hold only once given.

    A registry entry's ``options`` (its base's, then its variant's per-base entry) map each name to
    ``{default: ..., choices: [...]}``. Left out, the distiller runs the default, so a setting added
    this way leaves every protocol that existed before it with its id; given (by a suite or
    ``distill.KEY``), it is recorded and enters the protocol id like any hyperparameter.
    """
    base, variant = parse_method(method_id)
    return {**(method_spec(base).get("options") or {}), **(_variant_entry(base, variant).get("options") or {})}


def method_hparams(method_id: str, dataset: str, ipc: int, overrides: dict | None = None) -> dict:
    """Resolved hyperparameters: base registry entry, the variant's adjustments, then ``overrides``.

    ``overrides`` holds keys for every method of a run; a method takes those it knows, and a
    nested mapping under a method id or base name (``{"dm+cobra": {"warmup_epochs": 2}}``) applies
    to that method alone, where an unknown key is an error. A ``method_options`` setting is in the
    result only where ``overrides`` give it.
    """
    base, variant = parse_method(method_id)
    hparams = _layered(method_spec(base), dataset, ipc)
    hparams.update(_layered(_variant_entry(base, variant), dataset, ipc))
    options = {k: v["default"] for k, v in method_options(method_id).items() if k not in hparams}
    overrides = overrides or {}
    shared = {k: v for k, v in overrides.items() if (k in hparams or k in options) and not isinstance(v, dict)}
    given = set(shared)
    hparams = apply_overrides(f"method '{method_id}'", {**options, **hparams}, shared)
    for scope in (base, method_id):
        if isinstance(overrides.get(scope), dict):
            hparams = apply_overrides(f"method '{method_id}'", hparams, overrides[scope])
            given |= set(overrides[scope])
    return {k: v for k, v in hparams.items() if k not in options or k in given}


def check_overrides(overrides: dict) -> None:
    """Every ``distill.KEY`` must be a hyperparameter of some method, so a typo fails at once.

    Keys no method of *this* run uses are fine: a suite's settings survive ``methods=[...]``.
    """
    ids = method_ids()
    scopes = set(ids) | set(BASES.names())
    known = set().union(*(set(method_hparams(m, "", 0)) | set(method_options(m)) for m in ids))
    shared = {k: v for k, v in overrides.items() if not (isinstance(v, dict) and k in scopes)}
    check_known("method", shared, known)
    for scope, own in overrides.items():
        if isinstance(own, dict) and scope in scopes:
            for method_id in (m for m in ids if scope in (m, m.partition("+")[0])):
                method_hparams(method_id, "", 0, {scope: own})


# Settings several bases share, checked wherever they appear: (test, what a valid value is).
_AT_LEAST_ONE = (
    "iterations",
    "real_batch",
    "outer_loop",
    "batch_train",
    "num_experts",
    "trajectory_epochs",
    "expert_batch",
    "syn_steps",
    "expert_epochs",
    "factor",
    "ot_iterations",
    "bary_iterations",
)
# inner_loop 0: the step's network stays as drawn (COBRA's train_idc.py never trains it)
_NOT_NEGATIVE = ("warmup_epochs", "max_start_epoch", "batch_syn", "momentum", "inner_loop")
_POSITIVE = ("lr_img", "lr_net", "warmup_lr", "expert_lr", "lr_lr", "syn_lr_init", "ot_reg")


def _check_common(method_id: str, hparams: dict) -> None:
    def fail(key, valid):
        raise FairbenchError(f"method '{method_id}': {key}={hparams[key]!r} is invalid; {valid}")

    for key in _AT_LEAST_ONE:
        if key in hparams and isinstance(hparams[key], (int, float)) and hparams[key] < 1:
            fail(key, "it must be at least 1")
    for key in _NOT_NEGATIVE:
        if key in hparams and isinstance(hparams[key], (int, float)) and hparams[key] < 0:
            fail(key, "it must not be negative")
    for key in _POSITIVE:
        if key in hparams and isinstance(hparams[key], (int, float)) and not hparams[key] > 0:
            fail(key, "it must be positive")
    if "distance" in hparams and hparams["distance"] not in DISTANCES:
        fail("distance", f"choose from: {', '.join(DISTANCES)}")
    if "dsa_strategy" in hparams:
        parts = str(hparams["dsa_strategy"]).split("_")
        if not all(p in TRANSFORMS for p in parts):
            fail("dsa_strategy", f"join transforms with '_' from: {', '.join(TRANSFORMS)}")


def _check_ipc_table(method_id: str, base: str, ipc: int, overrides: dict) -> None:
    """A base whose entry lists ``ipc_table_keys`` has settings that only make sense per IPC (DC's
    loops): an IPC missing from its ``ipc:`` table must have them given, not take the defaults."""
    spec = method_spec(base)
    required = spec.get("ipc_table_keys") or []
    table = spec.get("ipc") or {}
    if not required or ipc in table:
        return
    given = {k for k, v in overrides.items() if not isinstance(v, dict)}
    for scope in (base, method_id):
        given |= set(overrides.get(scope) or {}) if isinstance(overrides.get(scope), dict) else set()
    missing = [k for k in required if k not in given]
    if missing:
        listed = ", ".join(map(str, sorted(table)))
        give = " and ".join(f"distill.{k}" for k in missing)
        raise FairbenchError(
            f"method '{method_id}' has no settings for ipc={ipc} (its ipc table: {listed}); give {give}"
        )


def check_method_hparams(method_id: str, ipc: int, hparams: dict, overrides: dict) -> None:
    """Every value of a cell's resolved hyperparameters, before anything runs."""
    base, _ = parse_method(method_id)
    _check_ipc_table(method_id, base, ipc, overrides)
    _check_common(method_id, hparams)
    for key, option in method_options(method_id).items():
        if key in hparams and hparams[key] not in option["choices"]:
            choices = ", ".join(map(str, option["choices"]))
            raise FairbenchError(f"method '{method_id}': {key}={hparams[key]!r} is invalid; choose from: {choices}")
    BASES.get(base).check_hparams(method_id, hparams)


def build_distiller(method_id: str, hparams: dict) -> Distiller:
    base, variant = parse_method(method_id)
    return BASES.get(base)(hparams, variant)


def describe(method_id: str) -> str:
    """One line for ``fairbench list methods``: the base, then the variant if any."""
    base, variant = parse_method(method_id)
    text = entries("methods").get(base, {}).get("description") or BASES.get(base).description
    if variant != "vanilla":
        about = entries("variants").get(variant, {}).get("description") or VARIANTS.get(variant).description
        text = f"{about or variant} | on {base}"
    return text
