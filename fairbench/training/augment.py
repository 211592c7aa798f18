"""Differentiable Siamese Augmentation (DSA, Zhao & Bilen 2021).

Distillers draw with :meth:`DSA.sample`: each *pair* picks its own transform of the strategy and
its own parameters, and samples that share a pair id get the same transform and parameters.
Distillers pass the class id as the pair id for both the real batch and the synthetic batch, so
real and synthetic images of a class are transformed alike within a step while every class draws
its own transform, as the reference code's one DiffAugment call per class (Siamese seed) does.
Training an evaluator draws one transform per batch and its parameters per sample
(:meth:`DSA.per_member`), as the reference's unseeded DiffAugment on a batch does. Scale and
rotate resample at ``align_corners=False`` (PyTorch's default, which the reference relies on).
Every transform is differentiable with respect to the images. Inside a CUDA graph, where shapes
must not depend on the draw, a ``static`` draw and :meth:`DSA.apply_static` do the same
arithmetic on every kind of transform for every sample (docs/speed.md, "DSA inside the graph").

Draws come from the global generators, or from a :class:`~fairbench.training.rng.TrainingRNG` when a
training run owns its streams.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core.device import to_device
from .rng import TrainingRNG

TRANSFORMS = ("color", "crop", "cutout", "flip", "scale", "rotate")
# Transforms of one kind run as one operation on all their samples: scale and rotate both resample
# on an affine grid (one grid_sample); every other transform is its own kind.
KINDS = {"color": "color", "crop": "crop", "cutout": "cutout", "flip": "flip", "scale": "grid", "rotate": "grid"}


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

    def sample(
        self,
        num_pairs: int,
        image_size: int | tuple[int, int],
        device,
        rng: TrainingRNG | None = None,
        dtype: torch.dtype | None = None,
        static: bool = False,
    ) -> dict:
        """Draw a transform and its parameters for each of ``num_pairs`` pairs.

        The choices come from a CPU generator and stay on the host, where :meth:`apply` groups the
        samples by kind of transform (no device sync). Each transform chosen draws its parameters
        for every pair (only its own pairs use them); each kind turns its transforms' draws at once
        into one per-pair table (colour factors, an index, a mask, sampling grids), a block of
        ``num_pairs`` rows per transform, made once per step and shared by the real and the
        synthetic batch. The sampling grids are built in ``dtype`` (the default float type unless
        given), the images' own, for images of ``image_size`` (its width if (height, width): the
        crop's pad and the cutout's side follow the width, as the reference's).

        ``static``: the same draws, and every transform of the strategy in its table, those not
        chosen this step filled in from :func:`_filler` (no sample reads them), so that the tables
        have the same shapes every step, as :meth:`apply_static` inside a CUDA graph needs.
        """
        dtype = dtype or torch.get_default_dtype()
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        host = None if rng is None else rng.host
        choice = torch.randint(len(self.transforms), (num_pairs,), generator=host).numpy()
        kinds = list(dict.fromkeys(KINDS[name] for name in self.transforms))
        draws: dict[str, list[dict]] = {}
        first_row = np.zeros(len(self.transforms), dtype=np.int64)  # of each transform's block in its table
        chosen = set(choice.tolist())
        chosen_kinds = {KINDS[self.transforms[k]] for k in chosen}
        for k, name in enumerate(self.transforms):  # drawn in the strategy's order
            if k in chosen:
                draw = self._draw(name, num_pairs, width, device, rng)
            elif static and KINDS[name] in chosen_kinds:  # scale's or rotate's block, beside the other's
                draw = _filler(self, name, num_pairs, width, torch.device(device))
            else:
                continue
            of_kind = draws.setdefault(KINDS[name], [])
            first_row[k] = len(of_kind) * num_pairs
            of_kind.append(draw)
        tables = {kinds.index(kind): self._table(d, height, width, dtype) for kind, d in draws.items()}
        for kind in kinds if static else ():  # a kind no pair chose: a table made once for the process
            if kinds.index(kind) not in tables:
                tables[kinds.index(kind)] = _filler_table(
                    self, kind, num_pairs, height, width, dtype, torch.device(device)
                )
        return {
            "choice": choice,
            "size": (height, width),
            "kind": np.array([kinds.index(KINDS[name]) for name in self.transforms]),
            "first_row": first_row,
            "tables": tables,
        }

    def sample_batch(self, num_pairs: int, image_size: int, device, rng: TrainingRNG | None = None) -> dict:
        """One transform for the whole batch, its parameters drawn for each of ``num_pairs`` pairs."""
        host = None if rng is None else rng.host
        # read through numpy: a host tensor's value, no torch operation (which could be a device read)
        name = self.transforms[int(torch.randint(len(self.transforms), (), generator=host).numpy())]
        return self._draw(name, num_pairs, image_size, device, rng)

    def _draw(self, name: str, num_pairs: int, image_size: int, device, rng: TrainingRNG | None) -> dict:
        generator = None if rng is None else rng.device

        def uniform(*shape):
            return torch.rand(*shape, device=device, generator=generator)

        if name == "color":  # one draw: the numbers of three in a row
            brightness, saturation, contrast = uniform(3, num_pairs)
            return {"name": name, "brightness": brightness, "saturation": saturation, "contrast": contrast}
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
            return {"name": name, "flip": uniform(num_pairs) < self.flip}
        if name == "scale":
            low = 1.0 / self.scale
            return {"name": name, "factors": uniform(num_pairs, 2) * (self.scale - low) + low}
        return {"name": name, "angle": (uniform(num_pairs) - 0.5) * 2 * self.rotate / 180 * math.pi}

    def _table(self, draws: list[dict], height: int, width: int, dtype: torch.dtype) -> dict:
        """The draws of one kind as one tensor, a row per pair of each draw, indexed by the
        samples' rows in one operation (the kind's function in ``_TABLES``)."""
        kind = KINDS[draws[0]["name"]]
        return {"name": kind, **_TABLES[kind](self, draws, height, width, dtype)}

    def apply(
        self, x: torch.Tensor, params: dict, pair_ids: torch.Tensor, sizes: Sequence[int] | None = None
    ) -> torch.Tensor:
        """``x`` transformed by the draw of each sample's pair (a :meth:`sample` draw, or one
        transform's draw as :meth:`sample_batch` gives).

        With one transform per pair, the samples are grouped by kind of transform on the host: one
        gather puts each kind's samples together, each kind runs once on its own samples (each
        sample reading its pair's row in its transform's block), one gather restores the order.
        ``sizes`` (the samples of each pair, when ``x`` is pair-major, as a
        :class:`~fairbench.distill.sampling.ClassSampler` batch and the learnable images are) tells
        the host the grouping; without it ``pair_ids`` is read on the host, free on the CPU and one
        device sync on an accelerator.
        """
        if "tables" not in params:
            return self._apply_one(x, params, pair_ids)
        if tuple(x.shape[-2:]) != params["size"]:
            raise ValueError(f"DSA drawn for {params['size']} images cannot transform {tuple(x.shape[-2:])} images")
        owners = pair_ids.cpu().numpy() if sizes is None else self._owners(params, len(x), sizes)
        transform = params["choice"][owners]
        kind, rows = params["kind"][transform], params["first_row"][transform] + owners
        counts = np.bincount(kind, minlength=len(params["first_row"]))
        chosen = np.flatnonzero(counts).tolist()
        if len(chosen) == 1:  # no grouping; with one transform of the kind, the rows are the pairs
            if not np.array_equal(rows, owners):
                pair_ids = to_device(torch.from_numpy(rows), x.device)
            return self._transform(x, params["tables"][chosen[0]], pair_ids)
        order = np.argsort(kind, kind="stable")
        index = to_device(torch.from_numpy(np.stack([order, np.argsort(order), rows[order]])), x.device)
        # split, not slices: its backward is one concatenation, where each slice's is a full-size copy
        groups, group_rows = x[index[0]].split(counts[chosen].tolist()), index[2].split(counts[chosen].tolist())
        parts = [self._transform(g, params["tables"][k], r) for k, g, r in zip(chosen, groups, group_rows)]
        return torch.cat(parts)[index[1]]

    def static_index(self, params: dict, sizes: Sequence[int], device) -> torch.Tensor:
        """For :meth:`apply_static`: each sample's pair, kind of transform (its table's key in a
        ``static`` draw) and row in its kind's table, as one (3, samples) tensor on ``device``,
        built on the host from ``sizes`` (the samples of each pair, pair-major)."""
        owners = self._owners(params, sum(sizes), sizes)
        transform = params["choice"][owners]
        index = np.stack([owners, params["kind"][transform], params["first_row"][transform] + owners])
        return to_device(torch.from_numpy(index), device)

    def apply_static(self, x: torch.Tensor, tables: Sequence[dict], index: torch.Tensor) -> torch.Tensor:
        """``x`` transformed as :meth:`apply` transforms it, in operations whose shapes do not
        depend on the draw, for a CUDA graph: every kind of transform runs on every sample and each
        sample keeps its own kind's result. ``tables``: a ``static`` draw's, in key order;
        ``index``: :meth:`static_index`'s. Each sample's arithmetic is :meth:`apply`'s, and the
        samples of other kinds get a gradient of exact zeros through each transform."""
        owners, kinds, rows = index
        out = x
        for k, table in enumerate(tables):
            y = self._transform(x, table, rows if table["name"] == "grid" else owners)
            out = y if k == 0 else torch.where((kinds == k).view(-1, 1, 1, 1), y, out)
        return out

    def _owners(self, params: dict, samples: int, sizes: Sequence[int]) -> np.ndarray:
        """Each sample's pair, for ``samples`` pair-major samples, ``sizes`` of each pair."""
        if sum(sizes) != samples or len(sizes) != len(params["choice"]):
            raise ValueError(f"sizes {list(sizes)} do not describe {samples} samples of {len(params['choice'])} pairs")
        return np.repeat(np.arange(len(sizes)), sizes)

    def _apply_one(self, x: torch.Tensor, draw: dict, pair_ids: torch.Tensor | None) -> torch.Tensor:
        """One transform's draw on ``x``; ``pair_ids`` None: one pair per sample, in order."""
        return self._transform(x, self._table([draw], *x.shape[-2:], x.dtype), pair_ids)

    def _transform(self, x: torch.Tensor, table: dict, pair_ids: torch.Tensor | None) -> torch.Tensor:
        return _TRANSFORMS[table["name"]](x, table, pair_ids)

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
        if len(draws) == 1:  # one network training alone: no batches to gather and restack
            return self._apply_one(x[0], draws[0], None).unsqueeze(0)
        out: list[torch.Tensor | None] = [None] * len(draws)
        for name in dict.fromkeys(d["name"] for d in draws):
            members = [k for k, d in enumerate(draws) if d["name"] == name]
            batch = torch.cat([x[k] for k in members])
            params = _concat_draws([draws[k] for k in members])
            augmented = self._apply_one(batch, params, None)
            for k, chunk in zip(members, augmented.split(size)):
                out[k] = chunk
        return torch.stack(out)


def _rows(table: dict, pair_ids: torch.Tensor | None) -> torch.Tensor:
    """Each sample's row of ``table``: its pair's, or its own with ``pair_ids`` None."""
    return table["table"] if pair_ids is None else table["table"][pair_ids]


def _color(x: torch.Tensor, table: dict, pair_ids: torch.Tensor | None) -> torch.Tensor:
    rows = _rows(table, pair_ids)
    x = x + rows[:, 0:1]
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * rows[:, 1:2] + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * rows[:, 2:3] + mean


def _crop(x: torch.Tensor, table: dict, pair_ids: torch.Tensor | None) -> torch.Tensor:
    # a gather from the zero-padded images: whole-pixel shifts, zero fill
    n, channels, h, w = x.shape
    padded = F.pad(x, (table["pad"],) * 4).flatten(2)
    return padded.gather(2, _rows(table, pair_ids).unsqueeze(1).expand(n, channels, h * w)).view(n, channels, h, w)


def _cutout(x: torch.Tensor, table: dict, pair_ids: torch.Tensor | None) -> torch.Tensor:
    return x * _rows(table, pair_ids)


def _flip(x: torch.Tensor, table: dict, pair_ids: torch.Tensor | None) -> torch.Tensor:
    n, channels, h, w = x.shape
    return x.gather(3, _rows(table, pair_ids).view(n, 1, 1, w).expand(n, channels, h, w))


def _grid(x: torch.Tensor, table: dict, pair_ids: torch.Tensor | None) -> torch.Tensor:
    return F.grid_sample(x, _rows(table, pair_ids), align_corners=False)


_TRANSFORMS = {"color": _color, "crop": _crop, "cutout": _cutout, "flip": _flip, "grid": _grid}

# Each kind's table, built with as few operations as the arithmetic allows (on a GPU each is a
# launch): the colour factors, the source pixel of every output pixel (crop, flip), the kept
# pixels (cutout), the sampling grid (scale, rotate), for ``height`` x ``width`` images.


def _grid_table(dsa: DSA, draws: list[dict], height: int, width: int, dtype: torch.dtype) -> dict:
    theta = torch.cat([_theta(d) for d in draws]) if len(draws) > 1 else _theta(draws[0])
    theta = theta if theta.dtype == dtype else theta.to(dtype)  # float64 images: a float64 grid
    return {"table": F.affine_grid(theta.view(-1, 2, 3), [len(theta), 1, height, width], align_corners=False)}


def _color_table(dsa: DSA, draws: list[dict], height: int, width: int, dtype: torch.dtype) -> dict:
    (draw,) = draws
    factors = (
        (draw["brightness"] - 0.5) * dsa.brightness,
        draw["saturation"] * dsa.saturation,
        draw["contrast"] + dsa.contrast,
    )
    return {"table": torch.stack(factors, 1).view(-1, 3, 1, 1)}


def _crop_table(dsa: DSA, draws: list[dict], height: int, width: int, dtype: torch.dtype) -> dict:
    # each output row's and column's source in the zero-padded image, rows and columns in one
    # (pairs, 2, max(height, width)) tensor: one operation for both
    (draw,) = draws
    pad = draw["pad"]
    pixels = torch.arange(max(height, width), device=draw["shift"].device)
    source = pixels + (draw["shift"] + pad).unsqueeze(2)
    flat = source[:, 0, :height].unsqueeze(2) * (width + 2 * pad) + source[:, 1, :width].unsqueeze(1)
    return {"pad": pad, "table": flat.flatten(1)}


def _cutout_table(dsa: DSA, draws: list[dict], height: int, width: int, dtype: torch.dtype) -> dict:
    # each row's and column's offset from the square's first one
    (draw,) = draws
    pixels = torch.arange(max(height, width), device=draw["center"].device)
    offset = pixels - (draw["center"] - draw["size"] // 2).unsqueeze(2)
    outside = (offset < 0) | (offset >= draw["size"])
    kept = outside[:, 0, :height].unsqueeze(2) | outside[:, 1, :width].unsqueeze(1)
    return {"table": kept.unsqueeze(1)}


def _flip_table(dsa: DSA, draws: list[dict], height: int, width: int, dtype: torch.dtype) -> dict:
    (draw,) = draws
    cols = torch.arange(width, device=draw["flip"].device)
    return {"table": torch.where(draw["flip"].unsqueeze(1), cols.flip(0), cols)}


_TABLES = {
    "grid": _grid_table,
    "color": _color_table,
    "crop": _crop_table,
    "cutout": _cutout_table,
    "flip": _flip_table,
}


@functools.cache
def _filler_table(
    dsa: DSA, kind: str, num_pairs: int, height: int, width: int, dtype: torch.dtype, device: torch.device
) -> dict:
    """The table of ``kind`` made of :func:`_filler` draws only, for a step on which no pair chose it."""
    names = [name for name in dsa.transforms if KINDS[name] == kind]
    return dsa._table([_filler(dsa, name, num_pairs, width, device) for name in names], height, width, dtype)


@functools.cache
def _filler(dsa: DSA, name: str, num_pairs: int, width: int, device: torch.device) -> dict:
    """A draw of ``name`` that no sample uses, from a generator of its own (the step's streams stay
    as they are): it fills a transform's place in :meth:`DSA.sample`'s ``static`` tables."""
    generator = torch.Generator(device).manual_seed(0)
    return dsa._draw(name, num_pairs, width, device, TrainingRNG(generator, generator))


def _theta(draw: dict) -> torch.Tensor:
    """Scale's or rotate's affine matrices, (pairs, 6)."""
    if draw["name"] == "scale":
        x_scale, y_scale = draw["factors"].unbind(1)
        zero = torch.zeros_like(x_scale)
        return torch.stack([x_scale, zero, zero, zero, y_scale, zero], 1)
    cos, sin = torch.cos(draw["angle"]), torch.sin(draw["angle"])
    zero = torch.zeros_like(cos)
    return torch.stack([cos, sin, zero, -sin, cos, zero], 1)


def _concat_draws(draws: list[dict]) -> dict:
    """Draws of one transform for several batches as one draw: tensors per pair are concatenated;
    the rest (name, pad, cutout size) depends only on the image size and is shared."""
    return {
        key: torch.cat([d[key] for d in draws]) if isinstance(value, torch.Tensor) else value
        for key, value in draws[0].items()
    }
