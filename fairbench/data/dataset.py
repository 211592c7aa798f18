"""The group-labelled dataset every part of fairbench passes around."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from .cells import cell_counts


@dataclass
class GroupDataset:
    """Images with a class label and a group (sensitive attribute) label per sample.

    Images stay ``uint8`` (N, C, H, W) so that a whole training split fits on a GPU; batches are
    normalised as they are drawn, with :meth:`normalize`.
    """

    images: torch.Tensor
    labels: torch.Tensor
    groups: torch.Tensor
    class_names: list[str]
    group_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # the builder's groups where ``groups`` is what the distiller sees (``group_labels.py``); else None
    true_groups: torch.Tensor | None = field(default=None, repr=False, compare=False)
    _moments_on: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        n = len(self.images)
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError("images must be uint8 with shape (N, C, H, W)")
        if len(self.labels) != n or len(self.groups) != n:
            raise ValueError("images, labels and groups must have the same length")
        self.labels = self.labels.long()
        self.groups = self.groups.long()

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_groups(self) -> int:
        return len(self.group_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images → float, standardised with this dataset's per-channel mean and std."""
        mean, std = self._moments(images.device)
        return (images.float() / 255 - mean) / std

    def _moments(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std as (1, C, 1, 1) tensors on ``device``, made once: distillers normalise a
        real batch every step, and a fresh host-to-device copy each time would block the host."""
        key = str(device)
        if key not in self._moments_on:
            self._moments_on[key] = (
                torch.tensor(self.mean, device=device).view(1, -1, 1, 1),
                torch.tensor(self.std, device=device).view(1, -1, 1, 1),
            )
        return self._moments_on[key]

    def counts(self) -> torch.Tensor:
        """Samples per (class, group) cell, shape (num_classes, num_groups); samples whose group is
        unknown (-1) are in no cell."""
        return cell_counts(self.labels, self.groups, self.num_classes, self.num_groups)

    def true_counts(self) -> torch.Tensor:
        """:meth:`counts` by the true groups (the same unless the groups were changed for the distiller)."""
        truth = self.groups if self.true_groups is None else self.true_groups
        return cell_counts(self.labels, truth, self.num_classes, self.num_groups)

    def to(self, device) -> GroupDataset:
        return replace(
            self,
            images=self.images.to(device),
            labels=self.labels.to(device),
            groups=self.groups.to(device),
        )


@dataclass
class DatasetSplits:
    """A benchmark dataset: its train and test splits and where they came from."""

    name: str
    train: GroupDataset
    test: GroupDataset
    source: str
    params: dict = field(default_factory=dict)
    # what was done to the training split's groups for the distiller (``group_labels.py``); {} if nothing
    distiller_groups: dict = field(default_factory=dict)
