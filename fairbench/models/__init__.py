"""Network architectures, built by name with the dataset's shape."""

from __future__ import annotations

from torch import nn

from . import convnet  # noqa: F401  (registers its builder)
from .builders import MODEL_BUILDERS


def build_model(arch: str, in_channels: int, num_classes: int, image_size: int, **kwargs) -> nn.Module:
    return MODEL_BUILDERS.get(arch)(in_channels, num_classes, image_size, **kwargs)
