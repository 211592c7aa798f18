"""The colored-digit construction of FairDD's C-MNIST / C-FMNIST benchmarks.

The group is a color. In the training split a fraction ``rho`` of class c takes color c, so color
predicts the class; the rest is spread over the other colors. In the test split every class is
spread over all colors (``rho = 0.1``), so a model that learned color instead of shape is caught out.

Two constructions (dataset parameter ``construction``):

- ``reference`` (the default): the FairDD / COBRA code's (ReBias's Biased-MNIST). The 28x28 digit
  is padded to 32x32 by 4 px on top and left *before* coloring, so a background-colored image has
  a colored border. Per class, in class order, a shuffled list of the class's images gives its first
  ``int(n * rho)`` the class color; the rest is cut into chunks of ``ceil(rest / 9)``, handed out
  over a shuffled list of the other nine colors. All draws come from one NumPy ``RandomState``
  seeded with ``seed`` (30, the reference's ``dataset_seed``): the train split, then the reference's
  shuffle of the train split's order, then the test split likewise. The same idx files therefore
  give every image the color the reference gives it.
- ``balanced``: fairbench's earlier construction: ``round(n * rho)`` images take the class color,
  the rest go round-robin (after a seeded torch shuffle), so minority colors differ by at most one;
  the digit is centered (2 px of black on every side, added after coloring).

Separation (dataset parameter ``separation``, fairbench's own dial, default 1): every color is
blended toward one common gray, ``s · color + (1 − s) · gray`` with gray the mean of all the
palette's channel values (about 165). At ``separation=1`` the groups are the reference's colors,
fully apart; at 0 every group wears the same gray and the groups are identical, so the images
carry no group signal at all; in between, the group signal fades smoothly. The blend applies to
both splits (the group is the color, in training and in testing alike); the group labels do not
change.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

COLORS = torch.tensor(
    [
        [255, 0, 0],
        [255, 128, 0],
        [255, 255, 0],
        [255, 255, 128],
        [0, 255, 0],
        [0, 255, 255],
        [0, 0, 255],
        [128, 0, 255],
        [255, 0, 255],
        [255, 255, 255],
    ],
    dtype=torch.float32,
)
GRAY = float(COLORS.mean())  # the common gray that separation=0 blends every color into


def palette(separation: float) -> torch.Tensor:
    """The group colors at ``separation`` (1: the reference's colors, exactly; 0: all one gray)."""
    if separation == 1:
        return COLORS
    return separation * COLORS + (1 - separation) * GRAY


COLOR_NAMES = ["red", "orange", "yellow", "cream", "green", "cyan", "blue", "violet", "magenta", "white"]
STYLES = ("foreground", "background", "intensity", "inverse-intensity")
CONSTRUCTIONS = ("reference", "balanced")


def reference_colors(labels: np.ndarray, rho: float, rng: np.random.RandomState) -> np.ndarray:
    """Group (color) per sample, drawn as the reference code draws them from ``rng``.

    The draws, in order: per class, a shuffle of its indices and a shuffle of the other colors;
    then a shuffle of the whole split's order (the reference reorders the split; fairbench keeps
    file order but makes the same draws, so the next split continues the same stream).
    """
    num_colors = len(COLORS)
    groups = np.empty(len(labels), dtype=np.int64)
    for c in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == c)
        rng.shuffle(members)
        n_major = int(len(members) * rho)
        groups[members[:n_major]] = c
        others = np.array([(c + k) % num_colors for k in range(1, num_colors)])
        rng.shuffle(others)
        rest = members[n_major:]
        chunk = math.ceil(len(rest) / (num_colors - 1))
        for k, start in enumerate(range(0, len(rest), max(chunk, 1))):
            groups[rest[start : start + chunk]] = others[k]
    rng.shuffle(np.arange(len(labels)))
    return groups


def assign_colors(labels: torch.Tensor, rho: float, generator: torch.Generator) -> torch.Tensor:
    """The ``balanced`` construction's group (color) per sample: ``round(rho * n_c)`` of class c
    get color c, the rest round-robin.

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


def colorize(
    gray: torch.Tensor, groups: torch.Tensor, style: str, pad_first: bool = True, colors: torch.Tensor = COLORS
) -> torch.Tensor:
    """(N, H, W) uint8 gray digits → (N, 3, 32, 32) uint8 colored images.

    ``pad_first`` (the reference): pad with zeros by 32 − H on top and left, then color, so the
    border takes the background's color; otherwise color, then pad with black evenly on all sides.

    ``foreground``: pixels >= 128 take the color, the rest black; ``background``: the digit stays
    black and the background takes the color; ``intensity``: gray level times the color (the
    Fashion-MNIST foreground variant keeps the garment's texture); ``inverse-intensity``: the color
    times one minus the gray level (the Fashion-MNIST background variant: a dark garment, its
    texture kept, on a colored background). ``colors``: the palette (:func:`palette`).
    """
    if pad_first:
        gray = F.pad(gray, (32 - gray.shape[-1], 0, 32 - gray.shape[-2], 0))
    color = colors[groups].view(-1, 3, 1, 1) / 255
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
    if pad_first:
        return images
    pad = (32 - images.shape[-1]) // 2
    return F.pad(images, (pad, pad, pad, pad))
