"""Several copies of one architecture trained in lockstep as one vectorised model (``torch.func``).

The members' parameters (and buffers, such as batch norm's running statistics) are stacked along a
new leading dimension and one ``vmap`` of the module's functional call runs them all: one kernel
per layer for every member instead of one per member, which is what small synthetic sets need on a
GPU, where a ConvNet step on 100 images is dominated by kernel launches.

Each member keeps its own initialisation, its own shuffles and augmentation draws (see
:mod:`fairbench.training.rng`) and its own optimizer state, so it trains as it would alone, up to the order
of floating-point sums inside the batched kernels.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from ..core.errors import first_line
from .train import mean_cross_entropy


class Ensemble:
    """Stacked copies of one architecture; called on a batch it returns (members, batch, classes)."""

    def __init__(self, models: list[nn.Module]):
        self.params, self.buffers = stack_module_state(models)
        # The forward pass only needs the module's structure; its own tensors stay unallocated.
        self.skeleton = copy.deepcopy(models[0]).to("meta")

    def __len__(self) -> int:
        return len(next(iter(self.params.values())))

    def _forward(self, params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.skeleton, (params, buffers), (x,))

    def _member_loss(
        self, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        return mean_cross_entropy(self._forward(params, buffers, x), y, weight)

    def parameters(self):
        return self.params.values()

    def train(self) -> Ensemble:
        self.skeleton.train()
        return self

    def eval(self) -> Ensemble:
        self.skeleton.eval()
        return self

    def loss(self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Member k's mean cross-entropy on its own batch ``x[k]``, summed over members: the sum
        keeps each member's gradient exactly its own."""
        in_dims = (0, 0, 0, 0, None if weight is None else 0)
        return vmap(self._member_loss, in_dims=in_dims)(self.params, self.buffers, x, y, weight).sum()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Every member on the same batch ``x``."""
        return vmap(self._forward, in_dims=(0, 0, None))(self.params, self.buffers, x)


def vectorisation_blocker(model: nn.Module, sample: torch.Tensor) -> str | None:
    """Why ``model`` cannot train as an :class:`Ensemble`, or None if it can.

    Tried, not guessed: two copies take one vmapped training step on ``sample`` (a few images).
    Typical refusals are random draws inside the forward pass (dropout, drop path: under ``vmap``
    they cannot follow each member's own seed, so the ensemble would not reproduce sequential
    training) and operations ``torch.func`` has no batching rule for. The global generators are
    restored afterwards, so trying changes nothing for a model that then trains alone.
    """
    devices = [sample.device] if sample.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        try:
            probe = Ensemble([model, model])
            probe.train()
            labels = torch.zeros(2, len(sample), dtype=torch.long, device=sample.device)
            probe.loss(torch.stack([sample, sample]), labels).backward()
        except RuntimeError as error:  # NotImplementedError included
            reason = first_line(error)
            if "randomness" in reason:
                return (
                    "its forward pass draws random numbers (dropout or drop path), which vmap cannot tie "
                    "to each member's seed"
                )
            return f"torch.func cannot vectorise it: {reason}"
    return None
