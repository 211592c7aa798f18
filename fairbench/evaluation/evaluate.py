"""Evaluators: train a network from scratch on a synthetic set, test it on the real test split.

An evaluator entry (``registry/evaluators/<name>.yaml``) names an architecture, its constructor
arguments (``model``) and its training hyperparameters (``train``). Run-level ``eval.KEY`` settings
change ``train`` of every evaluator; ``models.<name>.KEY`` changes one evaluator's ``model``, and
also the network a distiller builds when its ``net`` names that evaluator. ``timm:<model>`` names
any timm architecture; ``registry/evaluators/timm.yaml`` holds the settings they share.

The ``num_eval`` runs of a cell train together as one vectorised :class:`~fairbench.training.ensemble.Ensemble`
where that is possible and pays, and one after the other otherwise; either way run k depends only
on its seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain

import torch
from torch import nn

from ..core.errors import FairbenchError, first_line, unknown_choice
from ..core.overrides import apply_overrides
from ..core.registry import add_entry, entries, entry, source_of
from ..data import GroupDataset
from ..distill import SyntheticSet
from ..models import MODEL_BUILDERS, build_model, check_timm_name
from ..training.augment import DSA
from ..training.ensemble import Ensemble, vectorisation_blocker
from ..training.rng import TrainingRNG
from ..training.train import SCHEDULES, fit, predict, train_classifier
from .metrics import METRIC_DEFAULTS, UNDEFINED, group_fairness

TIMM_PREFIX = "timm:"


def register_evaluator(name: str, *, model: dict | None = None, train: dict | None = None, description: str = ""):
    """Decorate an architecture builder ``fn(in_channels, num_classes, image_size, **model) -> nn.Module``
    as evaluator ``name``. ``model`` holds its settings with defaults (``models.NAME.KEY=VALUE``);
    ``train`` its training settings, the ConvNet evaluator's protocol where not given (``eval.KEY``).
    The module must have ``embed`` only if a distiller's ``net`` names it."""

    def decorate(fn):
        MODEL_BUILDERS.add(name, fn, source_of(fn))
        protocol = dict(entry("evaluators", "convnet")["train"])
        about = description or (fn.__doc__ or "").strip().split("\n")[0]
        add_entry(
            "evaluators",
            name,
            {"description": about, "arch": name, "model": dict(model or {}), "train": {**protocol, **(train or {})}},
            source_of(fn),
        )
        return fn

    return decorate


def evaluator_names() -> list[str]:
    """The fixed evaluators, and ``timm:<model>`` standing for every timm architecture."""
    return sorted(name for name in entries("evaluators") if name != "timm") + [f"{TIMM_PREFIX}<model>"]


def check_evaluator(name: str, what: str = "evaluator") -> None:
    """A clear error for a name that is neither a registry entry nor ``timm:`` + a timm model."""
    if not isinstance(name, str):
        raise unknown_choice(what, name, evaluator_names())
    if name.startswith(TIMM_PREFIX):
        check_timm_name(name[len(TIMM_PREFIX) :])
    elif name == "timm" or name not in entries("evaluators"):
        raise unknown_choice(what, name, evaluator_names())


def evaluator_spec(
    name: str, train_overrides: dict | None = None, model_overrides: dict | None = None, metrics: dict | None = None
) -> dict:
    """The resolved evaluator: architecture, model settings, training settings (``schedule``
    included) and the metric conventions (run key ``metrics.*``; defaults from
    :data:`~fairbench.evaluation.metrics.METRIC_DEFAULTS`). Everything that decides a result is in here,
    so it is in every record and in the cell id."""
    check_evaluator(name)
    is_timm = name.startswith(TIMM_PREFIX)
    spec = entry("evaluators", "timm" if is_timm else name)
    model = apply_overrides(f"evaluator '{name}' (models.{name})", spec.get("model") or {}, model_overrides or {})
    if is_timm:
        model["name"] = name[len(TIMM_PREFIX) :]
    train = apply_overrides("evaluator training (eval)", spec.get("train") or {}, train_overrides or {})
    if train.get("schedule", "reference") not in SCHEDULES:
        raise unknown_choice("eval.schedule", train["schedule"], SCHEDULES)
    conventions = apply_overrides("metrics", METRIC_DEFAULTS, metrics)
    if conventions["undefined"] not in UNDEFINED:
        raise unknown_choice("metrics.undefined", conventions["undefined"], UNDEFINED)
    return {"name": name, "arch": spec["arch"], "model": model, "train": train, "metrics": conventions}


def make_model(spec: dict, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    channels, size, _ = image_shape
    return build_model(spec["arch"], channels, num_classes, size, **spec["model"])


def _forward_blank(spec: dict, image_shape: tuple[int, int, int], num_classes: int, device: str) -> None:
    with torch.device(device), torch.no_grad():
        make_model(spec, image_shape, num_classes).train()(torch.zeros(2, *image_shape))


def check_fits(spec: dict, image_shape: tuple[int, int, int], num_classes: int) -> None:
    """Refuse, before anything trains, an evaluator that cannot take the dataset's images.

    One forward pass of two blank images through a freshly built network on the meta device, which
    checks every shape without allocating or initialising weights (a large timm model costs seconds
    to initialise on a CPU); on the CPU instead where an operation has no meta implementation.
    """
    shape = "x".join(map(str, image_shape))
    try:
        with torch.random.fork_rng(devices=[]):
            try:
                _forward_blank(spec, image_shape, num_classes, "meta")
            except RuntimeError as error:
                if "meta" not in str(error).lower():
                    raise
                _forward_blank(spec, image_shape, num_classes, "cpu")
    except (RuntimeError, ValueError, TypeError, AssertionError, ArithmeticError) as error:  # width=0 divides by 0
        reason = first_line(error)
        hint = (
            f"; a larger models.{spec['name']}.min_feature_size feeds it larger inputs"
            if spec["arch"] == "timm"
            else ""
        )
        raise FairbenchError(f"evaluator '{spec['name']}' cannot take {shape} images: {reason}{hint}") from None


@dataclass
class Evaluation:
    """The metrics of each evaluation run, and how the runs were trained."""

    runs: list[dict[str, float]]
    path: str  # "ensemble" or "sequential"
    reason: str | None = None  # why not the ensemble, when sequential


def seeded_members(
    spec: dict, image_shape: tuple[int, int, int], num_classes: int, seeds: list[int], device
) -> Iterator[tuple[nn.Module, TrainingRNG]]:
    """Each run's freshly initialised model and its own random streams, built only when asked for,
    so that a run trained alone sees the global generators exactly as if no other run existed."""
    for seed in seeds:
        torch.manual_seed(seed)
        model = make_model(spec, image_shape, num_classes)
        yield model.to(device), TrainingRNG.continuing_global(seed, device)


def _why_sequential(ensemble, model: nn.Module, sample: torch.Tensor, num_runs: int) -> str | None:
    if num_runs == 1:
        return "a single run"
    if ensemble is False:
        return "ensemble=false"
    if ensemble == "auto" and sample.device.type == "cpu":
        return (
            "ensemble=auto: sequential on the CPU, where ConvNet ensembles measured slower "
            "(benchmarks/ensemble_speed.py)"
        )
    return vectorisation_blocker(model, sample)


def evaluate_synthetic(
    syn: SyntheticSet,
    test: GroupDataset,
    spec: dict,
    seeds: list[int],
    device,
    progress=lambda it, **_: it,
    ensemble="auto",
) -> Evaluation:
    """One metrics dict per evaluation seed, each from a model trained from scratch.

    ``ensemble``: True trains the runs as one vectorised ensemble when the model allows it, False
    one after the other, ``"auto"`` as an ensemble on accelerators only.
    """
    train = dict(spec["train"])
    augment = DSA() if train.pop("dsa") else None
    images, labels = syn.images.to(device), syn.labels.to(device)
    members = seeded_members(spec, test.image_shape, test.num_classes, seeds, device)
    first = next(members)
    reason = _why_sequential(ensemble, first[0], images[:2], len(seeds))
    if reason is None:
        models, rngs = zip(first, *members)
        learner = Ensemble(list(models))
        fit(learner, images, labels, rngs, augment=augment, progress=progress, **train)
        predictions = list(predict(learner, test, device))
    else:
        predictions = []
        for model, rng in chain([first], members):
            train_classifier(model, images, labels, augment=augment, rng=rng, progress=progress, **train)
            predictions.append(predict(model, test, device))
    undefined = spec.get("metrics", METRIC_DEFAULTS)["undefined"]
    runs = [
        group_fairness(test.labels, p, test.groups, test.num_classes, test.num_groups, undefined) for p in predictions
    ]
    return Evaluation(runs, "sequential" if reason else "ensemble", reason)
