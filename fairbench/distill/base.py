"""What every base distiller is given and returns."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import torch
from torch import nn

from ..data import GroupDataset
from .aggregation import AGGREGATIONS


@dataclass
class SyntheticSet:
    """Normalised float images, ``ipc`` per class in class-major order, and their labels."""

    images: torch.Tensor
    labels: torch.Tensor
    extras: dict = field(default_factory=dict)

    def cpu(self) -> "SyntheticSet":
        return SyntheticSet(self.images.detach().cpu(), self.labels.cpu(), self.extras)


@dataclass
class DistillContext:
    device: torch.device
    make_net: Callable[[], nn.Module]          # a freshly initialised network of the method's arch
    progress: Callable = lambda it, **_: it     # wraps the iteration loop with a progress display


@dataclass
class DistillStats:
    iterations: int = 0
    wall_s: float = 0.0

    @property
    def iter_ms(self) -> float:
        return 1000 * self.wall_s / self.iterations if self.iterations else 0.0


class Distiller(ABC):
    """A matching objective; the group aggregation it matches under is chosen per instance."""

    name: ClassVar[str]
    aggregations: ClassVar[tuple[str, ...]] = AGGREGATIONS
    description: ClassVar[str] = ""

    def __init__(self, hparams: dict, aggregation: str = "vanilla"):
        if aggregation not in self.aggregations:
            raise ValueError(f"{self.name} does not support {aggregation}")
        self.hparams = hparams
        self.aggregation = aggregation
        self.stats = DistillStats()

    @abstractmethod
    def distill(self, train: GroupDataset, ipc: int, ctx: DistillContext) -> SyntheticSet:
        """Build ``ipc`` images per class from ``train`` (already on ``ctx.device``)."""


def synchronize(device: torch.device) -> None:
    """Wait for queued device work so wall-clock timings measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Wall seconds of a block, synchronised with the device at both ends."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds = 0.0

    def __enter__(self):
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        synchronize(self.device)
        self.seconds += time.perf_counter() - self._start
