"""Drawing real images class by class, for every class at once."""

from __future__ import annotations

import torch

from ..core.errors import FairbenchError


class ClassSampler:
    """Draws up to ``per_class`` samples of every class, without replacement, in one operation.

    As the reference code's ``get_images(c, batch_real)`` does, a class smaller than ``per_class``
    gives all it has while the others give ``per_class``: the real batch is not cut to the smallest
    class. Random scores are ranked per class row (padding rows of smaller classes never win),
    which is a per-class random permutation with no Python loop over classes.
    """

    def __init__(self, labels: torch.Tensor, num_classes: int):
        counts = torch.bincount(labels, minlength=num_classes)
        self.order = torch.argsort(labels, stable=True)
        self.offsets = (torch.cumsum(counts, 0) - counts).unsqueeze(1)
        self.counts = counts.tolist()
        self.min_count = min(self.counts)
        self.max_count = max_count = max(self.counts)
        self.invalid = torch.arange(max_count, device=labels.device).unsqueeze(0) >= counts.unsqueeze(1)
        self._kept_cache: dict[int, torch.Tensor] = {}
        if self.min_count == 0:
            missing = (counts == 0).nonzero().flatten().tolist()
            raise FairbenchError(f"classes {missing} have no training samples")

    def equal_counts(self, per_class: int) -> bool:
        """Whether :meth:`sample` gives every class the same count (no class is smaller)."""
        return per_class <= self.min_count

    def sizes(self, per_class: int, equal: bool = False) -> list[int]:
        """How many samples of each class :meth:`sample` gives, known on the host: what DSA needs to
        group a batch by transform without reading its labels back from the device."""
        k = min(per_class, self.min_count if equal else self.max_count)
        return [min(k, count) for count in self.counts]

    def sample(self, per_class: int, equal: bool = False) -> torch.Tensor:
        """Class-major indices, ``min(per_class, class size)`` of each class; ``equal=True`` cuts
        every class to the smallest (what a consumer needing a (classes, k) layout asks for)."""
        k = min(per_class, self.min_count if equal else self.max_count)
        scores = torch.rand(self.invalid.shape, device=self.invalid.device).masked_fill(self.invalid, 2.0)
        pick = scores.topk(k, dim=1, largest=False).indices
        index = self.order[(self.offsets + pick).clamp_max(len(self.order) - 1)]
        if equal or self.equal_counts(k):
            return index.flatten()
        return index.flatten()[self._kept(k)]

    def _kept(self, k: int) -> torch.Tensor:
        """Flat positions of the real samples among k columns per class, computed once per k: a
        boolean mask would need a host sync to size its result every step on a GPU."""
        if k not in self._kept_cache:
            self._kept_cache[k] = (~self.invalid[:, :k]).flatten().nonzero().flatten()
        return self._kept_cache[k]

    def sample_exact(self, per_class: int) -> torch.Tensor:
        """Exactly ``per_class`` per class (initialising IPC images), or a clear error."""
        if per_class > self.min_count:
            raise FairbenchError(
                f"ipc={per_class} is impossible: the smallest class has only {self.min_count} training images"
            )
        return self.sample(per_class)
