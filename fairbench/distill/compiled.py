"""``distill.compile``: a DM step's embedding calls through ``torch.compile``.

DM draws a new network every step, and compiling a network compiles that network: a fresh one
each step would compile again each step. The compiled function here takes the network's
parameters and buffers as inputs instead (``torch.func.functional_call`` on the first network,
kept only for its structure), so one graph per input shape serves every step's network. On the
CPU, inductor fuses group norm, ReLU and pooling into single loops next to oneDNN's convolutions;
on a GPU, mode ``reduce-overhead`` replays each graph's kernels as one CUDA graph (static shapes,
no host reads in the step). Fused kernels add in another order, so a compiled run agrees with an
eager one within float rounding, not bit for bit: off by default, recorded with the method's
hyperparameters, and compiling costs seconds per input shape at the run's start (docs/speed.md).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call


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
        state = {f"net.{name}": tensor for name, tensor in (*net.named_parameters(), *net.named_buffers())}
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
