"""Network architectures, built by name with the dataset's shape."""

from __future__ import annotations

from torch import nn

from . import alexnet, convnet, mlp, resnet, timm_models, vgg  # noqa: F401  (register their builders)
from .builders import MODEL_BUILDERS
from .timm_models import check_timm_name

__all__ = ["MODEL_BUILDERS", "build_model", "check_timm_name"]


def build_model(arch: str, in_channels: int, num_classes: int, image_size: int, **kwargs) -> nn.Module:
    return MODEL_BUILDERS.get(arch)(in_channels, num_classes, image_size, **kwargs)
