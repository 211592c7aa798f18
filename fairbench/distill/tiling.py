"""Forward passes over independent samples: one call on a GPU, cache-sized tiles on a CPU.

Instance norm keeps samples independent, so splitting a batch changes nothing but speed. A GPU
wants the whole batch in one call; a CPU runs a large batch two to three times slower than the
same images in small tiles, whose activations stay in cache (measured on a width-32 ConvNet: one
640-image call against tiles of 16).
"""

from __future__ import annotations

from typing import Callable

import torch

CPU_TILE = 16


def tiled(fn: Callable, x: torch.Tensor):
    """``fn(x)`` for a tensor (or list of tensors) of per-sample outputs, tiled on a CPU."""
    if x.device.type != "cpu" or len(x) <= CPU_TILE:
        return fn(x)
    parts = [fn(tile) for tile in x.split(CPU_TILE)]
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts)
    return [torch.cat(outputs) for outputs in zip(*parts)]
