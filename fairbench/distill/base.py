"""What every base distiller is given and returns, and how its iterations are timed and watched.

:class:`Distiller` is the public base class of the extension API: a subclass registered with
``fairbench.register_base(name)`` is a base (a matching objective); it declares the variant kinds
it accepts (``accepts``), may give hyperparameter defaults (``defaults``), may check its settings
(``check_hparams``) and its data (``check_data``) before anything runs, and may implement a
preparation step (``prepare``, what MTT's expert trajectories are) that ``fairbench prepare`` runs.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from ..core.errors import DistillationDiverged, FairbenchError
from ..data import GroupDataset
from ..training.augment import DSA
from .aggregation import VARIANTS


@dataclass
class SyntheticSet:
    """Normalised float images, ``ipc`` per class in class-major order, and their labels."""

    images: torch.Tensor
    labels: torch.Tensor
    extras: dict = field(default_factory=dict)

    def cpu(self) -> SyntheticSet:
        return SyntheticSet(self.images.detach().cpu(), self.labels.cpu(), self.extras)


@dataclass
class DistillContext:
    device: torch.device
    make_net: Callable[[], nn.Module] | None  # a fresh network of the method's arch; None: it trains none
    progress: Callable = lambda it, **_: it  # wraps the iteration loop with a progress display
    experts_dir: Path = Path("experts")  # where MTT's expert trajectories are cached
    provenance: dict = field(default_factory=dict)  # dataset, its params and the net spec: keys caches

    def fresh_net(self) -> nn.Module:
        """A newly initialised network built on the device itself: distillers draw one per step,
        and building it on the host would cost a blocking host-to-device copy every time."""
        if self.make_net is None:
            raise FairbenchError("this method names no network (hparams 'net'), so it cannot draw one")
        with torch.device(self.device):
            return self.make_net()


@dataclass
class DistillStats:
    """Iterations run, their wall time, and the part of it spent building the real-side target.

    The first ``warmup_iterations`` of each loop (handle creation, lazy kernel loading, allocator
    growth, clock ramp-up: a fresh Ray task pays them all) are left out of ``iter_ms`` and
    ``target_ms``; ``distill_s`` is the whole loop's wall time, warm-up included.
    """

    iterations: int = 0
    wall_s: float = 0.0
    target_s: float = 0.0
    warmup_iterations: int = 0
    timed_s: float = 0.0

    @property
    def timed_iterations(self) -> int:
        return self.iterations - self.warmup_iterations

    @property
    def iter_ms(self) -> float:
        return 1000 * self.timed_s / self.timed_iterations if self.timed_iterations else 0.0

    @property
    def target_ms(self) -> float:
        return 1000 * self.target_s / self.timed_iterations if self.timed_iterations else 0.0

    def as_record(self) -> dict:
        return {
            "iterations": self.iterations,
            "distill_s": self.wall_s,
            "iter_ms": self.iter_ms,
            "target_ms": self.target_ms,
            "warmup_iterations": self.warmup_iterations,
        }


class Distiller(ABC):
    """A matching objective; the variant (group aggregation) it matches under is chosen per instance.

    Subclasses set ``accepts``: the variant kinds (``"mean"``, ``"distribution"``) whose targets
    their statistic can take; every base also runs as itself, under ``vanilla``. A base that takes
    no variant (``random``) sets ``accepts = ()``.
    """

    name: ClassVar[str]
    accepts: ClassVar[tuple[str, ...]] = ("mean",)
    defaults: ClassVar[dict] = {}  # hyperparameters when no registry entry gives them
    description: ClassVar[str] = ""

    def __init__(self, hparams: dict, aggregation: str = "vanilla"):
        if not self.supports(aggregation):
            raise FairbenchError(
                f"base '{self.name}' does not take variant '{aggregation}' "
                f"(it accepts variant kinds: {', '.join(self.accepts) or 'none'})"
            )
        self.hparams = hparams
        self.aggregation = aggregation
        self.stats = DistillStats()

    @classmethod
    def supports(cls, variant: str) -> bool:
        return variant == "vanilla" or VARIANTS.get(variant).kind in cls.accepts

    @classmethod
    def check_hparams(cls, method_id: str, hparams: dict) -> None:
        """Raise a :class:`FairbenchError` for settings this base cannot run with; called when the
        plan is made, so ``--dry-run`` refuses them. The common keys are checked by the caller."""

    def real_images_per_class(self, ipc: int) -> int:
        """Real images of each class the synthetic set starts from (IDC's mosaics take more)."""
        return ipc

    def check_data(self, train: GroupDataset, ipc: int) -> None:
        """Raise a :class:`FairbenchError` if this dataset cannot give ``ipc`` images per class;
        called once the data is loaded, before any distillation (and by ``--dry-run``)."""
        need = self.real_images_per_class(ipc)
        smallest = int(torch.bincount(train.labels.cpu(), minlength=train.num_classes).min())
        if need > smallest:
            raise FairbenchError(
                f"ipc={ipc} is impossible for {self.method_id}: it starts from {need} real images "
                f"per class and the smallest class has only {smallest} training images"
            )

    def check_memory(self, ipc: int, image_shape, num_classes: int, make_net, memory: int) -> None:
        """Raise a :class:`FairbenchError` naming the setting that would fit, when a step of this
        cell needs more than ``memory`` bytes of device memory; called before any compute. Bases
        whose steps hold a few batches' activations need no check."""

    def prepare(
        self, train: GroupDataset, ctx: DistillContext, *, stand_in: bool = False, progress=lambda it, **_: it
    ) -> str | None:
        """Make what :meth:`distill` needs besides the data (MTT: expert trajectories), cached where
        every cell with the same needs finds it; return one line saying what was made, or None
        when the base needs nothing. ``stand_in``: make cheap placeholders of the right shape whose
        values do not matter (``fairbench bench overhead`` times iterations with them)."""
        return None

    @property
    def matches_distributions(self) -> bool:
        """A distribution variant (wbary) builds a barycenter from a (classes, k) layout of the real
        batch, so its real batch takes the same count from every class (the smallest class's)."""
        return self.aggregation != "vanilla" and VARIANTS.get(self.aggregation).kind == "distribution"

    @property
    def method_id(self) -> str:
        return self.name if self.aggregation == "vanilla" else f"{self.name}+{self.aggregation}"

    def initial_images(self, train: GroupDataset, ipc: int, sampler) -> tuple[torch.Tensor, torch.Tensor]:
        """Stored synthetic images and their labels, from real images of each class."""
        index = sampler.sample_exact(ipc)
        return train.normalize(train.images[index]), train.labels[index]

    def learnable_images(
        self, train: GroupDataset, ipc: int, sampler
    ) -> tuple[torch.Tensor, torch.Tensor, torch.optim.Optimizer]:
        """The stored images from :meth:`initial_images`, made learnable, with their SGD optimizer
        (``lr_img``, ``momentum``): the start of every image-optimising distiller."""
        images, labels = self.initial_images(train, ipc, sampler)
        images.requires_grad_(True)
        optimizer = torch.optim.SGD([images], lr=self.hparams["lr_img"], momentum=self.hparams["momentum"])
        return images, labels, optimizer

    def augmentation(self) -> DSA | None:
        """The DSA the hyperparameters ask for (``dsa``, ``dsa_strategy``), or None."""
        return DSA(strategy=self.hparams["dsa_strategy"]) if self.hparams["dsa"] else None

    def timed_iterations(self, ctx: DistillContext) -> IterationClock:
        """The clock a distiller's loop runs under; its totals land in ``self.stats`` at the end."""
        return IterationClock(ctx, self.stats, self.method_id, self.hparams["iterations"])

    @abstractmethod
    def distill(self, train: GroupDataset, ipc: int, ctx: DistillContext) -> SyntheticSet:
        """Build ``ipc`` images per class from ``train`` (already on ``ctx.device``)."""

    def check_ready(self, train: GroupDataset, ctx: DistillContext) -> None:
        """Raise a :class:`FairbenchError` if what :meth:`prepare` makes is missing (the run does
        not make it: ``fairbench prepare`` does); called for every cell before any runs."""


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
        self.end = time.perf_counter()
        self.seconds += self.end - self._start


class PhaseTimer:
    """Device time spent in marked phases of a loop, without synchronising inside the loop.

    On a GPU each phase is bracketed by CUDA events that are read once at the end; on the CPU,
    where work is synchronous, the wall clock is exact.
    """

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self._events: list[tuple[torch.cuda.Event, torch.cuda.Event]] = []
        self._seconds = 0.0

    @contextmanager
    def phase(self):
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            self._events.append((start, end))
        else:
            begin = time.perf_counter()
            yield
            self._seconds += time.perf_counter() - begin

    def fold(self) -> None:
        """Read the recorded events into the total and let them go (one wait for the last one):
        called at each check interval, so a long run holds a few hundred events, not all of them."""
        if self._events:
            self._events[-1][1].synchronize()
            self._seconds += sum(a.elapsed_time(b) for a, b in self._events) / 1000
            self._events.clear()

    def reset(self) -> None:
        """Forget the time so far (the warm-up's)."""
        self._events.clear()
        self._seconds = 0.0

    @property
    def seconds(self) -> float:
        """Total phase time; on a GPU this waits for the recorded events."""
        self.fold()
        return self._seconds


class IterationClock:
    """Wraps a distiller's iteration loop: progress, total and target-building time, divergence.

    ``watch(loss)`` adds each loss to a device-side running sum, which a NaN or an infinity
    makes non-finite for good (one operation per step, where a flag of ``isfinite`` took six on
    a GPU); it is read every ``check_every`` iterations (one host sync per check, none per step),
    so a run that diverges stops early with :class:`DistillationDiverged` instead of training on
    NaNs. Finite losses overflow the sum only past 3e38, which is itself a diverged run.
    """

    check_every = 50
    warmup = 5  # iterations left out of iter_ms (at most a tenth of the loop)

    def __init__(self, ctx: DistillContext, stats: DistillStats, method_id: str, iterations: int):
        self.ctx, self.stats, self.method_id, self.iterations = ctx, stats, method_id, iterations
        self.target = PhaseTimer(ctx.device)
        self._loss_sum: torch.Tensor | None = None

    def __iter__(self):
        warmup = min(self.warmup, self.iterations // 10)
        timed_from = None
        with Stopwatch(self.ctx.device) as clock:
            for it in self.ctx.progress(range(self.iterations), desc=f"distill {self.method_id}"):
                if it == warmup:  # one sync, once: the timed iterations start on an idle device
                    synchronize(self.ctx.device)
                    self.target.reset()
                    timed_from = time.perf_counter()
                yield it
                if (it + 1) % self.check_every == 0 or it + 1 == self.iterations:
                    self._check(it + 1)
        self.stats.iterations += self.iterations
        self.stats.warmup_iterations += warmup
        self.stats.wall_s += clock.seconds
        if timed_from is not None:
            self.stats.timed_s += clock.end - timed_from
        self.stats.target_s += self.target.seconds

    def watch(self, loss: torch.Tensor) -> None:
        loss = loss.detach()
        self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss

    def _check(self, iteration: int) -> None:
        self.target.fold()
        if self._loss_sum is not None and not bool(torch.isfinite(self._loss_sum)):
            raise DistillationDiverged(
                f"{self.method_id}: the matching loss became NaN or infinite by iteration {iteration}"
            )
