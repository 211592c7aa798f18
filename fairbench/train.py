"""Training a classifier from scratch on a (synthetic) set, and predicting with it.

One routine serves both the evaluation protocol (train an evaluator on the distilled set) and
COBRA's warm-start of the embedding network, so the two can never drift apart.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data import GroupDataset


def train_classifier(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, epochs: int,
                     lr: float, momentum: float, weight_decay: float, batch_size: int,
                     augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     progress: Callable = lambda it, **_: it, lr_decay: bool = True,
                     sample_weight: torch.Tensor | None = None,
                     on_epoch: Callable[[], None] | None = None) -> nn.Module:
    """SGD with the DC/DM protocol: lr × 0.1 from epoch E//2 + 1, a fresh shuffle each epoch.

    ``lr_decay=False`` keeps the rate constant, as the inner loops of DC-style distillers do.
    ``sample_weight`` (mean 1) reweights each sample's loss (MTT's group-balanced experts), and
    ``on_epoch`` runs after every epoch (they snapshot their trajectory there).
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    milestones = [epochs // 2 + 1] if lr_decay else []
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    model.train()
    n = len(images)
    for _ in progress(range(epochs), desc="train evaluator"):
        order = torch.randperm(n, device=images.device)
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            x = images[batch]
            if augment is not None:
                x = augment(x)
            losses = F.cross_entropy(model(x), labels[batch], reduction="none")
            loss = (losses if sample_weight is None else losses * sample_weight[batch]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
        if on_epoch is not None:
            on_epoch()
    return model


@torch.no_grad()
def predict(model: nn.Module, data: GroupDataset, device, batch_size: int = 1024) -> torch.Tensor:
    model.eval()
    predictions = []
    for start in range(0, len(data), batch_size):
        x = data.normalize(data.images[start:start + batch_size].to(device))
        predictions.append(model(x).argmax(1))
    return torch.cat(predictions).cpu()
