"""The colored-digit construction of FairDD's C-MNIST / C-FMNIST benchmarks.

The group is a color. In the training split a fraction ``rho`` of class c takes color c, so color
predicts the class; the rest is spread evenly over the other colors. In the test split every class
is spread evenly over all colors, so a model that learned color instead of shape is caught out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

COLORS = torch.tensor(
    [
        [255, 0, 0], [255, 128, 0], [255, 255, 0], [255, 255, 128], [0, 255, 0],
        [0, 255, 255], [0, 0, 255], [128, 0, 255], [255, 0, 255], [255, 255, 255],
    ],
    dtype=torch.float32,
)
COLOR_NAMES = ["red", "orange", "yellow", "cream", "green", "cyan", "blue", "violet", "magenta", "white"]
STYLES = ("foreground", "background", "intensity", "inverse-intensity")


def assign_colors(labels: torch.Tensor, rho: float, generator: torch.Generator) -> torch.Tensor:
    """Group (color) per sample: ``round(rho * n_c)`` of class c get color c, the rest round-robin.

    The round-robin (after a seeded shuffle) makes the minority colors of a class equally sized, as
    "spread evenly" asks; with ``rho = 1 / num_colors`` it gives the uniform test split.
    """
    num_colors = len(COLORS)
    groups = torch.empty_like(labels)
    for c in labels.unique().tolist():
        members = (labels == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_major = round(rho * len(members))
        groups[members[:n_major]] = c
        others = torch.tensor([k for k in range(num_colors) if k != c])
        rest = members[n_major:]
        groups[rest] = others[torch.arange(len(rest)) % len(others)]
    return groups


def colorize(gray: torch.Tensor, groups: torch.Tensor, style: str) -> torch.Tensor:
    """(N, H, W) uint8 gray digits → (N, 3, 32, 32) uint8 colored images, zero-padded to 32.

    ``foreground``: pixels >= 128 take the color, the rest black; ``background``: the digit stays
    black and the background takes the color; ``intensity``: gray level times the color (the
    Fashion-MNIST foreground variant keeps the garment's texture); ``inverse-intensity``: the color
    times one minus the gray level (the Fashion-MNIST background variant: a dark garment, its
    texture kept, on a colored background).
    """
    color = COLORS[groups].view(-1, 3, 1, 1) / 255
    x = gray.unsqueeze(1).float()
    if style == "foreground":
        weight = (x >= 128).float()
    elif style == "background":
        weight = (x < 128).float()
    elif style == "intensity":
        weight = x / 255
    elif style == "inverse-intensity":
        weight = 1 - x / 255
    else:
        raise ValueError(f"unknown style {style!r}; choose from {STYLES}")
    images = (weight * color * 255).round().to(torch.uint8)
    pad = (32 - images.shape[-1]) // 2
    return F.pad(images, (pad, pad, pad, pad))
