"""Any timm architecture as an evaluator (``timm:<name>``), built from scratch and fitted to small images.

timm's networks are designed for 224x224 inputs: most downsample 32x before their head, so a 32x32
image reaches the last stage as 1x1 (ResNet) or vanishes before it (VGG at 28x28). Rather than
patch each family's stem, fairbench resizes the input (bilinear, inside the model, so it stays
differentiable for distillers) to the smallest square whose last feature map is at least
``min_feature_size`` pixels a side: ``max(image_size, reduction * min_feature_size)``, with the
network's total ``reduction`` read from timm's ``feature_info``. Models that fix their input size
(ViT, Swin, Mixer, ...) are built for that size (``img_size``) instead of for 224.

timm is imported where it is used: importing it costs more than a second, which every command
would pay otherwise.
"""

from __future__ import annotations

import difflib
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import FairbenchError
from .builders import model_builder


def check_timm_name(name: str) -> None:
    import timm

    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else "; timm.list_models() lists them"
    raise FairbenchError(f"unknown timm model '{name}'{hint}")


@cache
def _reduction(name: str) -> int:
    """Input pixels per pixel of the last feature map, from timm's ``feature_info``: read once per
    name from a copy on the meta device, so the 224x224-sized default allocates nothing."""
    import timm

    with torch.device("meta"):
        info = getattr(timm.create_model(name, pretrained=False), "feature_info", None) or [{}]
    return int(info[-1].get("reduction", 1))


def _fixes_input_size(name: str) -> bool:
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    return bool(cfg and cfg.fixed_input_size)


class TimmClassifier(nn.Module):
    """A timm model behind a resize to the input size it was fitted to."""

    def __init__(self, model: nn.Module, input_size: int):
        super().__init__()
        self.model = model
        self.input_size = input_size

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == (self.input_size, self.input_size):
            return x
        return F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """timm's pre-logits features: the statistic DM and its variants match."""
        return self.model.forward_head(self.model.forward_features(self._resize(x)), pre_logits=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self._resize(x))


@model_builder("timm")
def timm_classifier(
    in_channels: int, num_classes: int, image_size: int, name: str, min_feature_size: int = 2
) -> TimmClassifier:
    import timm

    check_timm_name(name)
    input_size = max(image_size, _reduction(name) * min_feature_size)
    kwargs = {"pretrained": False, "num_classes": num_classes, "in_chans": in_channels}
    if _fixes_input_size(name):
        kwargs["img_size"] = input_size
    return TimmClassifier(timm.create_model(name, **kwargs), input_size)
