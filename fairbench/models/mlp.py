"""The multi-layer perceptron of the dataset-distillation literature: the image flattened, two
hidden ReLU layers of 128 units, a linear head. It sees no spatial structure, which is the point of
evaluating a synthetic set on it."""

from __future__ import annotations

from torch import nn

from .builders import model_builder
from .layers import FeatureClassifier


@model_builder("mlp")
def mlp(in_channels: int, num_classes: int, image_size: int, width: int = 128, depth: int = 2) -> FeatureClassifier:
    layers: list[nn.Module] = [nn.Flatten()]
    features = in_channels * image_size * image_size
    for _ in range(depth):
        layers += [nn.Linear(features, width), nn.ReLU(inplace=True)]
        features = width
    return FeatureClassifier(nn.Sequential(*layers), features, num_classes)
