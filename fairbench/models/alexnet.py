"""AlexNet as the dataset-distillation literature uses it on small images: five convolutions
(5x5, 5x5, then three 3x3) with ReLU and no norm, 2x2 max-pools after the first, second and fifth,
and one linear head on the flattened map (no dropout, no 4096-wide classifier).

The first convolution pads 28x28 inputs to 32, so MNIST-sized and CIFAR-sized data share shapes.
"""

from __future__ import annotations

from torch import nn

from .builders import model_builder
from .layers import FeatureClassifier, stem_padding

# (kernel size, channels at width 128, max-pool after)
LAYERS = ((5, 128, True), (5, 192, True), (3, 256, False), (3, 192, False), (3, 192, True))


@model_builder("alexnet")
def alexnet(in_channels: int, num_classes: int, image_size: int, width: int = 128) -> FeatureClassifier:
    layers = []
    channels, size = in_channels, image_size
    for index, (kernel, base_channels, pool) in enumerate(LAYERS):
        out_channels = base_channels * width // 128
        padding = stem_padding(image_size, kernel) if index == 0 else kernel // 2
        size = size + 2 * padding - kernel + 1
        layers += [nn.Conv2d(channels, out_channels, kernel, padding=padding), nn.ReLU(inplace=True)]
        if pool and size >= 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        channels = out_channels
    return FeatureClassifier(nn.Sequential(*layers), channels * size * size, num_classes)
