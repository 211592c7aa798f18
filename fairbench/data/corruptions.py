"""COBRA's stacked corruptions of CIFAR10-S's grayscale group (``dataset.severity``), vectorised.

COBRA's ``data_handler/cifar10.py`` (``hierarchical_corruption``, its Appendix F) dials how far
apart the two groups are. At severity k >= 1 the group-0 image is *not* grayscale: it is the
colour image with the corruptions of every level up to k stacked on it, in this order:

1. channel shuffle: the channels become (G, B, R) of the original;
2. a red (255, 0, 0) diagonal line from the top-left corner, width 2 (PIL's ``ImageDraw.line``);
3. a 5x5 red patch at rows and columns 2-6;
4. Gaussian noise of mean 2.5 and std 50, truncated toward zero to integers, added and clipped
   to [0, 255]; then a green (0, 255, 0) anti-diagonal line, width 3;
5. a rotation by 90 degrees clockwise (PIL's ``ROTATE_270``), inversion (255 - x), and Gaussian
   noise of mean 2 and std 20, added the same way.

The reference draws its noise from NumPy's global, unseeded generator; here it comes from a
seeded ``torch.Generator``, so a set repeats. The lines are drawn once with PIL on a mask, so
their pixels are exactly PIL's.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw

MAX_SEVERITY = 5


@lru_cache(maxsize=8)
def line_mask(size: int, corners: tuple[int, int, int, int], width: int) -> torch.Tensor:
    """(size, size) bool: the pixels PIL's ``ImageDraw.line(corners, width=width)`` paints."""
    canvas = Image.new("L", (size, size))
    ImageDraw.Draw(canvas).line(corners, fill=255, width=width)
    return torch.from_numpy(np.array(canvas) > 0)


def _paint(images: torch.Tensor, mask: torch.Tensor, rgb: tuple[int, int, int]) -> torch.Tensor:
    color = torch.tensor(rgb, dtype=images.dtype).view(1, 3, 1, 1)
    return torch.where(mask.view(1, 1, *mask.shape), color, images)


def _noisy(images: torch.Tensor, mean: float, std: float, generator: torch.Generator) -> torch.Tensor:
    noise = torch.normal(mean, std, images.shape, generator=generator).to(torch.int16)  # truncates toward 0
    return (images.to(torch.int16) + noise).clamp(0, 255).to(torch.uint8)


def rotate_clockwise(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) turned 90 degrees clockwise, as PIL's ``transpose(ROTATE_270)``."""
    return torch.rot90(images, k=-1, dims=(2, 3)).contiguous()


def corrupt(images: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """(N, 3, H, W) uint8 colour images with the corruptions of levels 1..``severity`` stacked."""
    size = images.shape[-1]
    x = images
    if severity >= 1:
        x = x[:, [1, 2, 0]]
    if severity >= 2:
        x = _paint(x, line_mask(size, (0, 0, size, size), 2), (255, 0, 0))
    if severity >= 3:
        x = x.clone()
        x[:, 0, 2:7, 2:7] = 255
        x[:, 1:, 2:7, 2:7] = 0
    if severity >= 4:
        x = _noisy(x, 2.5, 50.0, generator)
        x = _paint(x, line_mask(size, (0, size, size, 0), 3), (0, 255, 0))
    if severity >= 5:
        x = 255 - rotate_clockwise(x)
        x = _noisy(x, 2.0, 20.0, generator)
    return x.contiguous()
