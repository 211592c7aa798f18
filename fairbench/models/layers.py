"""Pieces shared by fairbench's own architectures: the norm choice, the 2x2 pooling, the 28→32 stem
padding, and the features → linear head shape that distillers rely on (``embed`` is what DM and its
variants match).
"""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("instance", "batch", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """Instance norm is GroupNorm with one group per channel: every sample is normalised on its
    own, so a batch of all classes behaves like separate per-class batches (DD's default)."""
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose from {', '.join(NORMS)}")


class AvgPool2x2(nn.AvgPool2d):
    """2x2 average pooling, stride 2. Where no gradient is taken on the CPU (DM's real batch, the
    hot path of every DM step) and the input is large, it adds the four strided quarters in
    ``avg_pool2d``'s own order and scales by 1/4: the same result bit for bit, and about 15% less
    time for the whole tiled forward (docs/speed.md). Small inputs (where ``avg_pool2d`` is as
    fast), autograd and accelerators get ``avg_pool2d``, one kernel."""

    SLICE_SUMS_FROM = 1 << 18  # elements: a 16-image tile of 128 channels at 16x16 and above

    def __init__(self):
        super().__init__(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.numel() < self.SLICE_SUMS_FROM or (torch.is_grad_enabled() and x.requires_grad):
            return super().forward(x)
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2  # an odd row or column is dropped, as the pool does
        return (((x[..., 0:h:2, 0:w:2] + x[..., 0:h:2, 1:w:2]) + x[..., 1:h:2, 0:w:2]) + x[..., 1:h:2, 1:w:2]) * 0.25


def stem_padding(image_size: int, kernel_size: int) -> int:
    """Same-size padding, plus 2 pixels a side for 28x28 inputs: the DC code pads MNIST to 32 in
    the first convolution so that 28x28 and 32x32 data share every later shape."""
    return kernel_size // 2 + (2 if image_size == 28 else 0)


class FeatureClassifier(nn.Module):
    """``features`` then a linear head on their flattened output."""

    def __init__(self, features: nn.Module, embed_dim: int, num_classes: int):
        super().__init__()
        self.features = features
        self.embed_dim = embed_dim
        self.classifier = nn.Linear(embed_dim, num_classes)

    def block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each block's output (after its pooling), the last one being ``embed`` unflattened: the
        layer-wise features CAFE aligns."""
        outputs = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, (nn.AvgPool2d, nn.MaxPool2d)):
                outputs.append(x)
        if not outputs or outputs[-1] is not x:
            outputs.append(x)
        return outputs

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The flattened features before the head: the statistic DM and its variants match."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))
