"""Training a classifier from scratch on a (synthetic) set, and predicting with it.

One loop serves the evaluation protocol (train an evaluator on the distilled set, alone or as one
member of a vectorised ensemble) and COBRA's warm-start of the embedding network, so none of them
can drift from the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..core.device import pinned, to_device
from ..data import GroupDataset
from .augment import DSA
from .compiled import PerArchitecture
from .rng import TrainingRNG


class Learner(Protocol):
    """What :func:`fit` trains: one model, or an ensemble of models stepped together."""

    def parameters(self) -> Iterable[torch.Tensor]: ...

    def train(self) -> object: ...

    def loss(self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The sum over members of each member's mean (``weight``-ed) loss on its batch; ``x`` is
        (members, batch, ...)."""


def mean_cross_entropy(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    if weight is None:
        return F.cross_entropy(logits, y)
    return (F.cross_entropy(logits, y, reduction="none") * weight).mean()


class _Single:
    def __init__(self, model: nn.Module):
        self.model = model

    def parameters(self):
        return self.model.parameters()

    def train(self):
        return self.model.train()

    def loss(self, x, y, weight=None):
        return mean_cross_entropy(self.model(x[0]), y[0], None if weight is None else weight[0])


def _cross_entropy_of(template, state, x, y, weight):
    return mean_cross_entropy(functional_call(template, state, (x,)), y, weight)


_COMPILED_LOSS = PerArchitecture(_cross_entropy_of)


class _CompiledSingle(_Single):
    """One model whose forward, loss and their backward run compiled (a distiller's
    ``distill.compile``): one graph each way for every network of the architecture."""

    def __init__(self, model: nn.Module, device: torch.device):
        super().__init__(model)
        self.model.train()  # the mode fit trains in, which the compiled copy keeps
        self.compiled_loss = _COMPILED_LOSS.bind(model, device)

    def loss(self, x, y, weight=None):
        return self.compiled_loss(x[0], y[0], None if weight is None else weight[0])


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Consecutive batches of an epoch; a last batch of one sample joins the one before, since
    batch norm cannot normalise a single sample whose feature map is 1x1."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return [slice(start, stop) for start, stop in zip(starts, starts[1:] + [n])]


SCHEDULES = ("reference", "multistep", "constant")


def _epoch_rates(epochs: int, lr: float, schedule: str) -> list[float]:
    """The learning rate of each epoch; a change of rate starts a new optimizer (momentum reset).

    ``reference`` (the DC/DM/FairDD/COBRA evaluation code): ``epochs + 1`` epochs, lr × 0.1 after
    epoch ``epochs // 2 + 1`` (0-based), by building a new SGD, so the momentum buffers start over.
    ``multistep``: fairbench's earlier schedule, ``epochs`` epochs with the same decay point but
    momentum kept through it (as ``MultiStepLR`` would). ``constant``: ``epochs`` epochs at ``lr``,
    as the inner loops of DC-style distillers, MTT's experts and COBRA's warm start train.
    """
    if schedule == "reference":
        return [lr if ep <= epochs // 2 + 1 else lr * 0.1 for ep in range(epochs + 1)]
    if schedule == "multistep":
        return [lr if ep <= epochs // 2 else lr * 0.1 for ep in range(epochs)]
    if schedule == "constant":
        return [lr] * epochs
    raise ValueError(f"unknown schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")


def fit(
    learner: Learner,
    images: torch.Tensor,
    labels: torch.Tensor,
    rngs: Sequence[TrainingRNG | None],
    *,
    epochs: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    batch_size: int,
    augment: DSA | None = None,
    progress: Callable = lambda it, **_: it,
    schedule: str = "reference",
    sample_weight: torch.Tensor | None = None,
    on_epoch: Callable[[], None] | None = None,
    batch_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> None:
    """SGD with a fresh shuffle each epoch, its learning rate following ``schedule`` (see
    :func:`_epoch_rates`; ``reference`` is the evaluation protocol of the papers' code).

    Member k shuffles and augments with ``rngs[k]`` (None: the global generators). SGD's update is
    elementwise, so one optimizer over an ensemble's stacked parameters steps each member exactly
    as its own optimizer would. ``sample_weight`` (mean 1) reweights each sample's loss (MTT's
    group-balanced experts); ``on_epoch`` runs after every epoch (experts snapshot there);
    ``batch_transform`` maps each batch before training on it (experts normalise uint8 images one
    batch at a time, not the whole split at once).
    """
    rates = _epoch_rates(epochs, lr, schedule)
    keeps_momentum = schedule == "multistep"
    optimizer = None
    learner.train()
    n = len(images)
    for ep in progress(range(len(rates)), desc=f"train evaluator{'s' if len(rngs) > 1 else ''}"):
        if optimizer is None or (rates[ep] != rates[ep - 1] and not keeps_momentum):
            # foreach: one multi-tensor update for all parameters (one launch on a GPU, not one per
            # parameter), the same elementwise arithmetic as the per-parameter loop, bit for bit
            optimizer = torch.optim.SGD(
                learner.parameters(), lr=rates[ep], momentum=momentum, weight_decay=weight_decay, foreach=True
            )
        for group in optimizer.param_groups:
            group["lr"] = rates[ep]
        shuffles = [
            torch.randperm(n, device=images.device, generator=None if rng is None else rng.device) for rng in rngs
        ]
        orders = torch.stack(shuffles) if len(shuffles) > 1 else shuffles[0].unsqueeze(0)  # one member: no copy
        for batch in batch_slices(n, batch_size):
            index = orders[:, batch]
            x = images[index]
            if batch_transform is not None:
                x = batch_transform(x)
            if augment is not None:
                x = augment.per_member(x, rngs)
            weight = None if sample_weight is None else sample_weight[index]
            loss = learner.loss(x, labels[index], weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if on_epoch is not None:
            on_epoch()


def train_classifier(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    batch_size: int,
    augment: DSA | None = None,
    rng: TrainingRNG | None = None,
    progress: Callable = lambda it, **_: it,
    compile: bool = False,
    **options,
) -> nn.Module:
    """One model trained by :func:`fit`; ``options`` are its ``schedule``, ``sample_weight``,
    ``on_epoch``, ``batch_transform``. ``compile``: the forward, loss and backward through
    ``torch.compile`` (within float rounding of eager; see :mod:`fairbench.training.compiled`)."""
    fit(
        _CompiledSingle(model, images.device) if compile else _Single(model),
        images,
        labels,
        [rng],
        epochs=epochs,
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        batch_size=batch_size,
        augment=augment,
        progress=progress,
        **options,
    )
    return model


@torch.no_grad()
def predict(
    model: Callable[[torch.Tensor], torch.Tensor], data: GroupDataset, device, batch_size: int = 1024
) -> torch.Tensor:
    """Predicted classes on ``data``, on the CPU; an ensemble gives one row per member."""
    model.eval()
    predictions = []
    images = pinned(data.images, device)  # once: each batch then reaches a GPU without blocking
    for start in range(0, len(data), batch_size):
        x = data.normalize(to_device(images[start : start + batch_size], device))
        predictions.append(model(x).argmax(-1))
    return torch.cat(predictions, dim=-1).cpu()
