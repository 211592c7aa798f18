"""Differentiable Siamese Augmentation (DSA, Zhao & Bilen 2021).

Distillers draw with :meth:`DSA.sample`: each *pair* picks its own transform of the strategy and
its own parameters, and samples that share a pair id get the same transform and parameters.
Distillers pass the class id as the pair id for both the real batch and the synthetic batch, so
real and synthetic images of a class are transformed alike within a step while every class draws
its own transform, as the reference code's one DiffAugment call per class (Siamese seed) does.
Training an evaluator draws one transform per batch and its parameters per sample
(:meth:`DSA.per_member`), as the reference's unseeded DiffAugment on a batch does. Scale and
rotate resample at ``align_corners=False`` (PyTorch's default, which the reference relies on).
Every transform is differentiable with respect to the images.

Draws come from the global generators, or from a :class:`~fairbench.training.rng.TrainingRNG` when a
training run owns its streams.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.device import to_device
from .rng import TrainingRNG

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

    def sample(self, num_pairs: int, image_size: int, device, rng: TrainingRNG | None = None) -> dict:
        """Draw a transform and its parameters for each of ``num_pairs`` pairs.

        The choices come from a CPU generator, so no device sync is needed (``numpy()`` reads the
        host tensor, and would refuse a device one); they reach the device from pinned memory
        without blocking the host. Each transform chosen draws parameters for every pair (only its
        own pairs use them), a few numbers per pair.
        """
        host = None if rng is None else rng.host
        choice = torch.randint(len(self.transforms), (num_pairs,), generator=host)
        chosen = sorted(set(choice.numpy()))
        return {
            "choice": to_device(choice, device),
            "draws": {k: self._draw(self.transforms[k], num_pairs, image_size, device, rng) for k in chosen},
        }

    def sample_batch(self, num_pairs: int, image_size: int, device, rng: TrainingRNG | None = None) -> dict:
        """One transform for the whole batch, its parameters drawn for each of ``num_pairs`` pairs."""
        host = None if rng is None else rng.host
        name = self.transforms[int(torch.randint(len(self.transforms), (), generator=host))]
        return self._draw(name, num_pairs, image_size, device, rng)

    def _draw(self, name: str, num_pairs: int, image_size: int, device, rng: TrainingRNG | None) -> dict:
        generator = None if rng is None else rng.device

        def uniform(*shape):
            return torch.rand(num_pairs, *shape, device=device, generator=generator)

        if name == "color":
            return {"name": name, "brightness": uniform(), "saturation": uniform(), "contrast": uniform()}
        if name == "crop":
            shift = int(image_size * self.crop_pad + 0.5)
            return {
                "name": name,
                "pad": shift,
                "shift": torch.randint(-shift, shift + 1, (num_pairs, 2), device=device, generator=generator),
            }
        if name == "cutout":
            size = int(image_size * self.cutout + 0.5)
            return {
                "name": name,
                "size": size,
                "center": torch.randint(
                    0, image_size + (1 - size % 2), (num_pairs, 2), device=device, generator=generator
                ),
            }
        if name == "flip":
            return {"name": name, "flip": uniform() < self.flip}
        if name == "scale":
            low = 1.0 / self.scale
            return {"name": name, "factors": uniform(2) * (self.scale - low) + low}
        return {"name": name, "angle": (uniform() - 0.5) * 2 * self.rotate / 180 * math.pi}

    def apply(self, x: torch.Tensor, params: dict, pair_ids: torch.Tensor) -> torch.Tensor:
        """``x`` transformed by the draw of each sample's pair (a :meth:`sample` or a
        :meth:`sample_batch` draw). With one transform per pair, on the CPU each transform runs on
        its own samples; on an accelerator every transform chosen runs on the whole batch and each
        sample keeps its own pair's: a few cheap image operations more, and no data-dependent
        indexing, so no device sync."""
        if "draws" not in params:
            return self._apply_one(x, params, pair_ids)
        choice = params["choice"][pair_ids]
        if x.device.type == "cpu":
            # on the CPU an index costs no sync: each transform runs on its own samples only
            out = x.clone()
            for k, draw in params["draws"].items():
                members = (choice == k).nonzero().flatten()
                if len(members):
                    out[members] = self._apply_one(x[members], draw, pair_ids[members])
            return out
        choice = choice.view(-1, 1, 1, 1)
        out = x
        for k, draw in params["draws"].items():
            out = torch.where(choice == k, self._apply_one(x, draw, pair_ids), out)
        return out

    def _apply_one(self, x: torch.Tensor, params: dict, pair_ids: torch.Tensor) -> torch.Tensor:
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
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)

    def __call__(self, x: torch.Tensor, rng: TrainingRNG | None = None) -> torch.Tensor:
        """Augment ``x`` with independent parameters per sample (training an evaluator)."""
        return self.per_member(x.unsqueeze(0), [rng])[0]

    def per_member(self, x: torch.Tensor, rngs: Sequence[TrainingRNG | None]) -> torch.Tensor:
        """Augment the stacked batches ``x`` (members, batch, C, H, W) of an ensemble's members,
        member k drawing from ``rngs[k]`` exactly what it would draw training alone.

        Members that drew the same transform are augmented in one call, so an ensemble costs at
        most one call per transform in the strategy, not one per member.
        """
        size = x.shape[1]
        draws = [self.sample_batch(size, x.shape[-1], x.device, rng) for rng in rngs]
        out: list[torch.Tensor | None] = [None] * len(draws)
        for name in dict.fromkeys(d["name"] for d in draws):
            members = [k for k, d in enumerate(draws) if d["name"] == name]
            batch = torch.cat([x[k] for k in members])
            params = _concat_draws([draws[k] for k in members])
            augmented = self._apply_one(batch, params, torch.arange(len(batch), device=x.device))
            for k, chunk in zip(members, augmented.split(size)):
                out[k] = chunk
        return torch.stack(out)


def _concat_draws(draws: list[dict]) -> dict:
    """Draws of one transform for several batches as one draw: tensors per pair are concatenated;
    the rest (name, pad, cutout size) depends only on the image size and is shared."""
    return {
        key: torch.cat([d[key] for d in draws]) if isinstance(value, torch.Tensor) else value
        for key, value in draws[0].items()
    }


def _translate(x: torch.Tensor, shift: torch.Tensor, pad: int) -> torch.Tensor:
    """Shift each image by whole pixels (rows, cols), at most ``pad``, filling with zeros."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = torch.arange(h, device=x.device).view(1, h) + shift[:, :1] + pad
    cols = torch.arange(w, device=x.device).view(1, w) + shift[:, 1:] + pad
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    # contiguous: the permute leaves channels-last strides, on which torch 2.14's CPU convolution
    # backward corrupted the heap (a width-4 ResNet-18 on 64x64 images, tests/test_evaluators.py)
    return padded[batch, :, rows.unsqueeze(2), cols.unsqueeze(1)].permute(0, 3, 1, 2).contiguous()
