"""ResNet-18 as the dataset-distillation literature uses it on small images: a 3x3 stride-1 stem
without max-pool (the ImageNet stem's 4x downsampling would leave a 32x32 image 1x1 before the last
stage), four stages of two basic blocks, global average pool, linear head.

``resnet18`` uses instance norm like the ConvNet evaluator; ``resnet18-bn`` uses batch norm, whose
statistics couple the samples of a batch.
"""

from __future__ import annotations

import torch
from torch import nn

from .builders import model_builder
from .layers import FeatureClassifier, norm_layer


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = norm_layer(norm, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = norm_layer(norm, channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), norm_layer(norm, channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


@model_builder("resnet")
def resnet(
    in_channels: int,
    num_classes: int,
    image_size: int,
    width: int = 64,
    blocks: tuple[int, ...] = (2, 2, 2, 2),
    norm: str = "instance",
) -> FeatureClassifier:
    """``blocks`` per stage; stage i has ``width * 2**i`` channels and halves the size from stage 2 on."""
    layers = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False), norm_layer(norm, width), nn.ReLU(inplace=True)]
    channels = width
    for stage, count in enumerate(blocks):
        out_channels = width * 2**stage
        for block in range(count):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(BasicBlock(channels, out_channels, stride, norm))
            channels = out_channels
    layers.append(nn.AdaptiveAvgPool2d(1))
    return FeatureClassifier(nn.Sequential(*layers), channels, num_classes)
