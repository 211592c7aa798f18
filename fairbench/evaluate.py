"""Evaluators: train a network from scratch on a synthetic set, test it on the real test split.

An evaluator entry (``registry/evaluators/<name>.yaml``) names an architecture, its constructor
arguments (``model``) and its training hyperparameters (``train``). Run-level ``eval.KEY`` settings
change ``train`` of every evaluator; ``models.<name>.KEY`` changes one evaluator's ``model``, and
also the network a distiller builds when its ``net`` names that evaluator.
"""

from __future__ import annotations

import torch
from torch import nn

from .augment import DSA
from .data import GroupDataset
from .distill import SyntheticSet
from .metrics import group_fairness
from .models import build_model
from .overrides import apply_overrides
from .registry import entries, entry
from .train import predict, train_classifier


def evaluator_names() -> list[str]:
    return sorted(entries("evaluators"))


def evaluator_spec(name: str, train_overrides: dict | None = None, model_overrides: dict | None = None) -> dict:
    spec = entry("evaluators", name)
    return {
        "name": name,
        "arch": spec["arch"],
        "model": apply_overrides(f"evaluator '{name}' (models.{name})", spec.get("model") or {}, model_overrides or {}),
        "train": apply_overrides("evaluator training (eval)", spec.get("train") or {}, train_overrides or {}),
    }


def make_model(spec: dict, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    channels, size, _ = image_shape
    return build_model(spec["arch"], channels, num_classes, size, **spec["model"])


def evaluate_synthetic(syn: SyntheticSet, test: GroupDataset, spec: dict, seeds: list[int], device,
                       progress=lambda it, **_: it) -> list[dict[str, float]]:
    """One metrics dict per evaluation seed, each from a model trained from scratch."""
    train = dict(spec["train"])
    augment = DSA() if train.pop("dsa") else None
    images, labels = syn.images.to(device), syn.labels.to(device)
    results = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = make_model(spec, test.image_shape, test.num_classes).to(device)
        train_classifier(model, images, labels, augment=augment, progress=progress, **train)
        predictions = predict(model, test, device)
        results.append(group_fairness(test.labels, predictions, test.groups, test.num_classes, test.num_groups))
    return results
