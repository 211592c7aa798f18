"""``distill.compile``: a DM step's embedding calls, and ``wbary``'s Sinkhorn solver, through
``torch.compile``.

The embedding is compiled once for every network of an architecture
(:class:`~fairbench.training.compiled.PerArchitecture`). On the CPU, inductor fuses group norm,
ReLU and pooling into single loops next to oneDNN's convolutions; on a GPU, mode
``reduce-overhead`` replays each graph's kernels as one CUDA graph (static shapes, no host reads
in the step). The Sinkhorn solver is a fixed loop of updates on fixed shapes, which compiles into
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


_SOLVERS: dict[str | None, Solver] = {}


def compiled_sinkhorn(device: torch.device) -> Solver:
    """:func:`~fairbench.distill.barycenter.sinkhorn_plans` compiled, one function for the
    process (its graphs, one per problem shape, serve every step and cell); CUDA graphs on a GPU."""
    mode = compile_mode(device)
    if mode not in _SOLVERS:
        _SOLVERS[mode] = torch.compile(sinkhorn_plans, dynamic=False, mode=mode)
    return _SOLVERS[mode]
