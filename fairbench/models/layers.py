"""Pieces shared by fairbench's own architectures: the norm choice, the 28→32 stem padding, and the
features → linear head shape that distillers rely on (``embed`` is what DM and its variants match).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
    """2x2 average pooling, stride 2, computed in channels-last layout on the CPU.

    PyTorch's CPU kernel for a contiguous (NCHW) input walks each feature map with strided scalar
    reads; in channels-last it adds whole rows of channels at once. Each output is still the four
    inputs summed in the same order and divided by 4, so the values (and gradients) are the same
    bit for bit; the result is made contiguous again, as the next convolution's rounding depends
    on its input's layout. Measured in docs/speed.md.
    """

    def __init__(self):
        super().__init__(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4 or not x.is_contiguous():
            return super().forward(x)
        # a permuted copy, not contiguous(memory_format=...), which vmap (the ensembles) refuses
        channels_last = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
        return F.avg_pool2d(channels_last, 2).contiguous()


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
