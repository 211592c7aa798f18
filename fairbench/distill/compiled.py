"""``distill.compile``: a DM step's embedding calls, and ``wbary``'s Sinkhorn solver, through
``torch.compile``.

DM draws a new network every step, and compiling a network compiles that network: a fresh one
each step would compile again each step. The compiled function here takes the network's
parameters and buffers as inputs instead (``torch.func.functional_call`` on the first network,
kept only for its structure), so one graph per input shape serves every step's network. On the
CPU, inductor fuses group norm, ReLU and pooling into single loops next to oneDNN's convolutions;
on a GPU, mode ``reduce-overhead`` replays each graph's kernels as one CUDA graph (static shapes,
no host reads in the step). The Sinkhorn solver is a fixed loop of updates on fixed shapes, which
compiles into a few fused loops (one CUDA graph on a GPU) where eagerly each update is two
launches. Fused kernels add in another order, so a compiled run agrees with an eager one within
float rounding, not bit for bit: off by default, recorded with the method's hyperparameters, and
compiling costs seconds per input shape at the run's start (docs/speed.md).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from .barycenter import Solver, sinkhorn_plans


class _Embed(nn.Module):
    """A network's ``embed`` as a module's forward, for ``functional_call``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.embed(x)


class CompiledEmbedding:
    """``net.embed`` compiled once for every network of one architecture.

    The compiled function lives for the process: a suite running many DM cells of one
    architecture compiles it once, not once per cell. A new architecture starts afresh
    (``torch.compiler.reset``): each function keeps at most 8 graphs (input shapes, grad mode)
    before torch falls back to eager, and a suite over several datasets would reach that."""

    _current: tuple[tuple, Callable] | None = None

    def __init__(self, device: torch.device):
        self.cuda_graphs = device.type == "cuda"

    def new_step(self) -> None:
        """Called before each step: CUDA graph replays may then reuse the last step's outputs."""
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()

    def bind(self, net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        """``net.embed`` through the compiled function, the step's network gathered once for all
        its tiles."""
        # plain tensors, not Parameters: torch takes Parameters for static inputs, whose moving
        # address makes CUDA graphs re-record, and every step's fresh network moves them
        state = {f"net.{name}": t.detach() for name, t in (*net.named_parameters(), *net.named_buffers())}
        key = (self.cuda_graphs, repr(net), tuple((name, tuple(t.shape)) for name, t in state.items()))
        if CompiledEmbedding._current is None or CompiledEmbedding._current[0] != key:
            torch.compiler.reset()
            # the structure only, on the meta device: each call passes a network's own tensors,
            # which then never alias the template's (an alias would be guarded and recompiled)
            template = _Embed(copy.deepcopy(net).to("meta"))

            def embed(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
                return functional_call(template, state, (x,))

            mode = "reduce-overhead" if self.cuda_graphs else None
            CompiledEmbedding._current = (key, torch.compile(embed, dynamic=False, mode=mode))
        compiled = CompiledEmbedding._current[1]
        return lambda x: compiled(state, x)


_SOLVERS: dict[bool, Solver] = {}


def compiled_sinkhorn(device: torch.device) -> Solver:
    """:func:`~fairbench.distill.barycenter.sinkhorn_plans` compiled, one function for the
    process (its graphs, one per problem shape, serve every step and cell); CUDA graphs on a GPU."""
    cuda_graphs = device.type == "cuda"
    if cuda_graphs not in _SOLVERS:
        mode = "reduce-overhead" if cuda_graphs else None
        _SOLVERS[cuda_graphs] = torch.compile(sinkhorn_plans, dynamic=False, mode=mode)
    return _SOLVERS[cuda_graphs]
