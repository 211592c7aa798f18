"""A network's computation compiled once for every network of one architecture.

Distillers draw a fresh network every step (DM's embedding network, COBRA's warm-started one), and
compiling a network compiles that network: a fresh one each step would compile again each step.
:class:`PerArchitecture` compiles a function of a network's structure, its tensors and inputs
instead (``torch.func.functional_call`` on a copy on the meta device, kept for its structure
only), so one graph per input shape serves every network of the architecture, for the process.

The tensors go in as plain tensors on the parameters' memory (``detach``; a gradient reaching one
is handed on to its parameter): torch takes a ``Parameter`` for a static input, and CUDA graphs
re-record whenever a static input's address changes, which every step's fresh network would do.
(Views of the parameters would do too, but each view's backward is two more launches.) A new
architecture starts afresh (``torch.compiler.reset``, for every compiled function): torch keeps
at most 8 graphs per function (input shapes, grad mode) before it falls back to eager, and a
suite over several datasets would reach that.

On a GPU the functions run as CUDA graphs (mode ``reduce-overhead``): call :func:`new_step` before
each step, after which a replay may reuse the last step's outputs.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import torch
from torch import nn


def compile_mode(device: torch.device) -> str | None:
    """``torch.compile``'s mode for ``device``: CUDA graphs on a GPU, the default elsewhere."""
    return "reduce-overhead" if device.type == "cuda" else None


def captures_graphs(device: torch.device) -> bool:
    """Whether compiled calls on ``device`` replay as CUDA graphs, which need every step to call
    the same graphs on the same shapes (a step whose calls vary records new graphs)."""
    return compile_mode(device) == "reduce-overhead"


def new_step(device: torch.device) -> None:
    """Mark a step's start: CUDA graph replays may then reuse the last step's outputs."""
    if device.type == "cuda":
        torch.compiler.cudagraph_mark_step_begin()


class PerArchitecture:
    """``fn(template, state, *args)`` compiled, bound to one network at a time.

    ``fn`` calls the network through ``torch.func.functional_call(template, state, ...)``; each
    use has its own ``fn`` (torch counts graphs per function)."""

    _generation = 0  # bumped by every reset: a function compiled before one is compiled again

    def __init__(self, fn: Callable[..., torch.Tensor]):
        self.fn = fn
        self._compiled: tuple[int, tuple, Callable] | None = None

    def bind(self, net: nn.Module, device: torch.device) -> Callable[..., torch.Tensor]:
        """``fn`` on ``net``'s tensors, which are gathered once here for all the calls of a step."""
        state = {name: _alias(t) for name, t in (*net.named_parameters(), *net.named_buffers())}
        # the template is copied in the network's mode (train or eval: batch norm differs)
        key = (
            compile_mode(device),
            net.training,
            repr(net),
            tuple((name, tuple(t.shape)) for name, t in state.items()),
        )
        if self._compiled is None or self._compiled[:2] != (PerArchitecture._generation, key):
            if self._compiled is not None and self._compiled[0] == PerArchitecture._generation:
                torch.compiler.reset()
                PerArchitecture._generation += 1
            # the structure only, on the meta device: each call passes a network's own tensors,
            # which then never alias the template's (an alias would be guarded and recompiled)
            template = copy.deepcopy(net).to("meta")
            compiled = torch.compile(functools.partial(self.fn, template), dynamic=False, mode=compile_mode(device))
            self._compiled = (PerArchitecture._generation, key, compiled)
        compiled = self._compiled[2]
        return lambda *args: compiled(state, *args)


def _alias(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor``'s memory as a plain tensor; one that needs a gradient passes it on to ``tensor``."""
    alias = tensor.detach()
    if tensor.requires_grad:
        alias.requires_grad_()
        alias.register_post_accumulate_grad_hook(functools.partial(_hand_gradient, tensor))
    return alias


def _hand_gradient(parameter: torch.Tensor, alias: torch.Tensor) -> None:
    grad, alias.grad = alias.grad, None
    parameter.grad = grad if parameter.grad is None else parameter.grad + grad
