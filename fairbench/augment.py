"""Differentiable Siamese Augmentation (DSA, Zhao & Bilen 2021).

Each call picks one transform of the strategy and draws its parameters per *pair*: samples that
share a pair id get the same transform. Distillers pass the class id as the pair id for both the
real batch and the synthetic batch, so real and synthetic images of a class are transformed alike
within a step while every class gets its own draw; training an evaluator passes one pair per sample.
Every transform is differentiable with respect to the images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

TRANSFORMS = ("color", "crop", "cutout", "flip", "scale", "rotate")


@dataclass(frozen=True)
class DSA:
    strategy: str = "color_crop_cutout_flip_scale_rotate"
    flip: float = 0.5
    scale: float = 1.2
    rotate: float = 15.0
    crop_pad: float = 0.125
    cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5

    def __post_init__(self):
        unknown = set(self.transforms) - set(TRANSFORMS)
        if unknown:
            raise ValueError(f"unknown DSA transforms {sorted(unknown)}; choose from {TRANSFORMS}")

    @property
    def transforms(self) -> list[str]:
        return self.strategy.split("_")

    def sample(self, num_pairs: int, image_size: int, device) -> dict:
        """Draw one transform and its parameters for ``num_pairs`` pairs.

        The choice of transform comes from the CPU generator, so no device sync is needed.
        """
        name = self.transforms[int(torch.randint(len(self.transforms), ()))]

        def uniform(*shape):
            return torch.rand(num_pairs, *shape, device=device)

        if name == "color":
            return {"name": name, "brightness": uniform(), "saturation": uniform(), "contrast": uniform()}
        if name == "crop":
            shift = int(image_size * self.crop_pad + 0.5)
            return {"name": name, "pad": shift,
                    "shift": torch.randint(-shift, shift + 1, (num_pairs, 2), device=device)}
        if name == "cutout":
            size = int(image_size * self.cutout + 0.5)
            return {"name": name, "size": size,
                    "center": torch.randint(0, image_size + (1 - size % 2), (num_pairs, 2), device=device)}
        if name == "flip":
            return {"name": name, "flip": uniform() < self.flip}
        if name == "scale":
            low = 1.0 / self.scale
            return {"name": name, "factors": uniform(2) * (self.scale - low) + low}
        return {"name": name, "angle": (uniform() - 0.5) * 2 * self.rotate / 180 * math.pi}

    def apply(self, x: torch.Tensor, params: dict, pair_ids: torch.Tensor) -> torch.Tensor:
        name = params["name"]
        n, _, h, w = x.shape
        if name == "color":
            b, s, c = (params[k][pair_ids].view(n, 1, 1, 1) for k in ("brightness", "saturation", "contrast"))
            x = x + (b - 0.5) * self.brightness
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (s * self.saturation) + mean
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            return (x - mean) * (c + self.contrast) + mean
        if name == "crop":
            return _translate(x, params["shift"][pair_ids], params["pad"])
        if name == "cutout":
            size = params["size"]
            start = params["center"][pair_ids] - size // 2
            rows = torch.arange(h, device=x.device).view(1, h)
            cols = torch.arange(w, device=x.device).view(1, w)
            in_rows = (rows >= start[:, :1]) & (rows < start[:, :1] + size)
            in_cols = (cols >= start[:, 1:]) & (cols < start[:, 1:] + size)
            keep = ~(in_rows.unsqueeze(2) & in_cols.unsqueeze(1))
            return x * keep.unsqueeze(1).to(x.dtype)
        if name == "flip":
            return torch.where(params["flip"][pair_ids].view(n, 1, 1, 1), x.flip(3), x)
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        if name == "scale":
            factors = params["factors"][pair_ids]
            theta[:, 0, 0], theta[:, 1, 1] = factors[:, 0], factors[:, 1]
        else:
            angle = params["angle"][pair_ids]
            theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle), torch.sin(angle)
            theta[:, 1, 0], theta[:, 1, 1] = -torch.sin(angle), torch.cos(angle)
        grid = F.affine_grid(theta, list(x.shape), align_corners=True)
        return F.grid_sample(x, grid, align_corners=True)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Augment ``x`` with independent parameters per sample (training an evaluator)."""
        pair_ids = torch.arange(len(x), device=x.device)
        return self.apply(x, self.sample(len(x), x.shape[-1], x.device), pair_ids)


def _translate(x: torch.Tensor, shift: torch.Tensor, pad: int) -> torch.Tensor:
    """Shift each image by whole pixels (rows, cols), at most ``pad``, filling with zeros."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = torch.arange(h, device=x.device).view(1, h) + shift[:, :1] + pad
    cols = torch.arange(w, device=x.device).view(1, w) + shift[:, 1:] + pad
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded[batch, :, rows.unsqueeze(2), cols.unsqueeze(1)].permute(0, 3, 1, 2)
