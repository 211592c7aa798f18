"""The ConvNet of the dataset-distillation literature (DC/DM/MTT/FairDD), ``depth`` blocks of
conv 3x3 → norm → ReLU → 2x2 average pool, then a linear head.

Instance norm keeps every sample independent of the rest of its batch, which is what lets fairbench
push all classes through one forward pass. ``convnet-d4`` is depth 4, for 64x64 data.
"""

from __future__ import annotations

from torch import nn

from .builders import model_builder
from .layers import AvgPool2x2, FeatureClassifier, norm_layer, stem_padding


@model_builder("convnet")
def convnet(
    in_channels: int, num_classes: int, image_size: int, width: int = 128, depth: int = 3, norm: str = "instance"
) -> FeatureClassifier:
    layers = []
    channels, size = in_channels, image_size
    for d in range(depth):
        padding = stem_padding(image_size, 3) if d == 0 else 1
        size = size + 2 * padding - 2
        layers += [nn.Conv2d(channels, width, 3, padding=padding), norm_layer(norm, width), nn.ReLU(inplace=True)]
        if size >= 2:
            layers.append(AvgPool2x2())
            size //= 2
        channels = width
    return FeatureClassifier(nn.Sequential(*layers), width * size * size, num_classes)
