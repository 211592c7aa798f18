"""``distill.compile``: a DM step's embedding calls, and ``wbary``'s Sinkhorn solver, through
``torch.compile``.

The embedding is compiled once for every network of an architecture
(:class:`~fairbench.training.compiled.PerArchitecture`). On the CPU, inductor fuses group norm,
ReLU and pooling into single loops next to oneDNN's convolutions; on a GPU, mode
``reduce-overhead`` replays each graph's kernels as one CUDA graph (static shapes, no host reads
in the step), and DSA's transforms run inside the embedding's graph, where the CPU runs them
eagerly, grouped by transform, before it. The Sinkhorn solver is a fixed loop of updates on fixed shapes, which compiles into
a few fused loops (one CUDA graph on a GPU) where eagerly each update is two launches. Fused
kernels add in another order, so a compiled run agrees with an eager one within float rounding,
not bit for bit: off by default, recorded with the method's hyperparameters, and compiling costs
seconds per input shape at the run's start (docs/speed.md).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from ..training.augment import DSA
from ..training.compiled import PerArchitecture, compile_mode
from .barycenter import Solver, sinkhorn_plans


class _Embed(nn.Module):
    """A network's ``embed`` as a module's forward, for ``functional_call``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.training = net.training  # the wrapper's own flag only: the network keeps its modes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.embed(x)


def _embedding(template: nn.Module, state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return functional_call(template, state, (x,))


_EMBEDDING = PerArchitecture(_embedding)


def compiled_embedding(net: nn.Module, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """``net.embed`` through the compiled embedding, the step's network gathered once for all
    its tiles."""
    return _EMBEDDING.bind(_Embed(net), device)


def _augmented_embedding(
    template: nn.Module, state: dict[str, torch.Tensor], dsa: DSA, x: torch.Tensor, tables: list[dict], index
) -> torch.Tensor:
    return functional_call(template, state, (dsa.apply_static(x, tables, index),))


_AUGMENTED_EMBEDDING = PerArchitecture(_augmented_embedding)


def compiled_augmented_embedding(
    net: nn.Module, dsa: DSA, device: torch.device
) -> Callable[[torch.Tensor, dict, torch.Tensor], torch.Tensor]:
    """``net.embed`` of ``dsa``-augmented images as one compiled call, for a device that replays
    CUDA graphs: DSA's transforms vary from step to step in which run and on how many samples, and
    inside the graph they run in :meth:`~fairbench.training.augment.DSA.apply_static`'s fixed
    shapes. Called with the images, a ``static`` draw and its
    :meth:`~fairbench.training.augment.DSA.static_index`."""
    bound = _AUGMENTED_EMBEDDING.bind(_Embed(net), device)
    return lambda x, params, index: bound(dsa, x, [params["tables"][k] for k in sorted(params["tables"])], index)


_SOLVERS: dict[str | None, Solver] = {}


def compiled_sinkhorn(device: torch.device) -> Solver:
    """:func:`~fairbench.distill.barycenter.sinkhorn_plans` compiled, one function for the
    process (its graphs, one per problem shape, serve every step and cell); CUDA graphs on a GPU."""
    mode = compile_mode(device)
    if mode not in _SOLVERS:
        _SOLVERS[mode] = torch.compile(sinkhorn_plans, dynamic=False, mode=mode)
    return _SOLVERS[mode]
