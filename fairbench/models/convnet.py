"""The ConvNet of the dataset-distillation literature (DC/DM/MTT/FairDD), ``depth`` blocks of
conv 3x3 → norm → ReLU → 2x2 average pool, then a linear head.

Instance norm (GroupNorm with one group per channel) keeps every sample independent of the rest of
its batch, which is what lets fairbench push all classes through one forward pass.
"""

from __future__ import annotations

import torch
from torch import nn

from .builders import model_builder


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose from instance, batch, none")


class ConvNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 128,
                 depth: int = 3, norm: str = "instance"):
        super().__init__()
        layers = []
        channels, size = in_channels, image_size
        for d in range(depth):
            # 28x28 inputs (MNIST) are padded to 32 by the first convolution, as in the DC code.
            padding = 3 if d == 0 and image_size == 28 else 1
            size = size + 2 * padding - 2
            layers += [nn.Conv2d(channels, width, 3, padding=padding), _norm(norm, width), nn.ReLU(inplace=True)]
            if size >= 2:
                layers.append(nn.AvgPool2d(2))
                size //= 2
            channels = width
        self.features = nn.Sequential(*layers)
        self.embed_dim = width * size * size
        self.classifier = nn.Linear(self.embed_dim, num_classes)

    def block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each block's output (after its pooling), the last one being ``embed`` unflattened: the
        layer-wise features CAFE aligns."""
        outputs = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.AvgPool2d):
                outputs.append(x)
        if not outputs or outputs[-1] is not x:
            outputs.append(x)
        return outputs

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The flattened features before the head: the statistic DM and its variants match."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


@model_builder("convnet")
def convnet(in_channels: int, num_classes: int, image_size: int, **kwargs) -> ConvNet:
    return ConvNet(in_channels, num_classes, image_size, **kwargs)
