"""VGG-11 as the dataset-distillation literature uses it on small images: eight 3x3 convolutions
with instance norm and ReLU, five 2x2 max-pools, a single linear head on the flattened map (no
4096-wide classifier, no dropout).

28x28 inputs are padded to 32 by the first convolution, so 28x28 and 32x32 data both end at 1x1; a
pool that would take the map below 1x1 is left out, so any size from 1x1 up builds.
"""

from __future__ import annotations

from torch import nn

from .builders import model_builder
from .layers import FeatureClassifier, norm_layer, stem_padding

POOL = "pool"
VGG11 = (64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL)


@model_builder("vgg")
def vgg(
    in_channels: int, num_classes: int, image_size: int, width: int = 64, norm: str = "instance"
) -> FeatureClassifier:
    """VGG-11's layer plan with every channel count scaled by ``width / 64``."""
    layers = []
    channels, size = in_channels, image_size
    for index, item in enumerate(VGG11):
        if item == POOL:
            if size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            continue
        out_channels = item * width // 64
        padding = stem_padding(image_size, 3) if index == 0 else 1
        size = size + 2 * padding - 2
        layers += [
            nn.Conv2d(channels, out_channels, 3, padding=padding),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
        ]
        channels = out_channels
    return FeatureClassifier(nn.Sequential(*layers), channels * size * size, num_classes)
