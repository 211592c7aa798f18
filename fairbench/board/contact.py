"""Test-set contact: does a synthetic set hold (perturbed) images of the test split?

A distilled set must be made from training data only. The check follows the data-copying idea of
Meehan, Chaudhuri and Dasgupta (AISTATS 2020): an image made from training data is, in a
representation that ignores nuisance changes, no closer to the test split than to the training
split, since both are drawn from one distribution, while an image copied from the test split,
however perturbed, sits much nearer its test original than any training image. So per synthetic
image this finds d_test, the distance to its nearest test image, and d_train, to its nearest
training image, and their ratio d_test / d_train.

The representation (:func:`robust_view`) is built to survive what a one-pixel shift with faint
noise beat in pixel space: each image is blurred (two 3x3 box filters), average-pooled to at most
``VIEW_SIZE`` pixels a side, and standardised per image (zero mean, unit norm), so noise, contrast
and brightness changes and small crops resized back barely move it; the distance is the smallest
Euclidean distance over integer shifts of up to ``SHIFT`` cells of the pooled view (``torch.roll``),
so translations of a few pixels do not move it either. Blending a test image with another image
moves it towards that image by the blend weight; a blend that still shows mostly the test image
keeps a small ratio.

An image is *flagged* when its ratio is below ``RATIO_EPS``. The threshold was set below the
smallest ratio of honest sets of every built-in method (``docs/leaderboard.md`` gives the
numbers; ``tests/test_contact.py`` keeps every built-in method's honest sets at IPC 1 and 10 above
it) and above the ratios of shifted, cropped, noisy and blended test images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..data import GroupDataset

RATIO_EPS = 0.5  # flagged: nearest test image nearer than half the distance to the nearest train image
VIEW_SIZE = 16  # side of the pooled view (32-pixel images: cells of 2 pixels)
BLUR = 1  # passes of the 3x3 box filter
SHIFT = 2  # shifts of the synthetic image tried, in pixels each way
ZOOM = 2  # the zooms tried: that many pixels a side cropped off (a crop undone) or padded
_CHUNK = 4096


@dataclass
class Contact:
    """How many synthetic images sit nearer the test split than ``ratio_eps`` allows, and the
    distance ratios d_test / d_train of the set (smallest, median) with the smallest d_test."""

    count: int
    images: int
    min_ratio: float
    median_ratio: float
    min_test: float
    ratio_eps: float

    @property
    def flagged(self) -> bool:
        return self.count > 0

    def as_dict(self) -> dict:
        return asdict(self) | {"flagged": self.flagged}


def robust_view(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) images → (N, C, S, S) blurred, pooled views, each of zero mean and unit norm."""
    x = images.float()
    channels = x.shape[1]
    box = torch.full((channels, 1, 3, 3), 1 / 9, device=x.device)
    for _ in range(BLUR):
        x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), box, groups=channels)
    x = F.adaptive_avg_pool2d(x, min(VIEW_SIZE, x.shape[-1]))
    x = x - x.mean((1, 2, 3), keepdim=True)
    return x / x.flatten(1).norm(dim=1).clamp_min(1e-8).view(-1, 1, 1, 1)


def _zoom(images: torch.Tensor, margin: int) -> torch.Tensor:
    """``images`` zoomed in (``margin`` > 0: that many pixels cropped off each side) or out
    (``margin`` < 0: padded by as many), resized back to their size."""
    size = images.shape[-2:]
    if margin > 0:
        images = images[..., margin:-margin, margin:-margin]
    elif margin < 0:
        images = F.pad(images, (-margin,) * 4, mode="replicate")
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False)


def _shifts(images: torch.Tensor) -> list[torch.Tensor]:
    """The flattened views of ``images`` under every shift of up to :data:`SHIFT` pixels each way,
    and of the images zoomed in and out by :data:`ZOOM` pixels a side under shifts of one pixel."""
    views = []
    for margin, reach in ((0, SHIFT), (ZOOM, 1), (-ZOOM, 1)):
        zoomed = _zoom(images, margin) if margin else images
        steps = range(-reach, reach + 1)
        views += [robust_view(torch.roll(zoomed, (dy, dx), (2, 3))).flatten(1) for dy in steps for dx in steps]
    return views


def _nearest(queries: list[torch.Tensor], reference: torch.Tensor) -> torch.Tensor:
    """Each query's smallest distance to any reference row, over the queries' shifts."""
    best = torch.full((len(queries[0]),), float("inf"), device=reference.device)
    for batch in reference.split(_CHUNK):
        for shifted in queries:
            best = torch.minimum(best, torch.cdist(shifted, batch).amin(1))
    return best


class ContactIndex:
    """A dataset's train and test splits, their robust views computed once for the contact checks
    of many sets."""

    def __init__(self, train: GroupDataset, test: GroupDataset, device):
        self.device = device
        self.views = {name: self._views(split).flatten(1) for name, split in (("train", train), ("test", test))}

    @torch.no_grad()
    def _views(self, split: GroupDataset) -> torch.Tensor:
        return torch.cat(
            [
                robust_view(split.normalize(split.images[start : start + _CHUNK].to(self.device)))
                for start in range(0, len(split), _CHUNK)
            ]
        )

    @torch.no_grad()
    def ratios(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(d_test / d_train, d_test) per normalised synthetic image; an image that is a training
        image (d_train 0) has ratio infinity."""
        queries = _shifts(images.to(self.device).float())
        d_test, d_train = (_nearest(queries, self.views[name]) for name in ("test", "train"))
        return d_test / d_train, d_test

    def contact(self, images: torch.Tensor, ratio_eps: float = RATIO_EPS) -> Contact:
        """The contact of normalised synthetic ``images`` with the test split."""
        ratio, d_test = self.ratios(images)
        return Contact(
            count=int((ratio < ratio_eps).sum()),
            images=len(ratio),
            min_ratio=float(ratio.min()),
            median_ratio=float(ratio.median()),
            min_test=float(d_test.min()),
            ratio_eps=float(ratio_eps),
        )
