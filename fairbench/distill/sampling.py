"""Drawing real images class by class, for every class at once."""

from __future__ import annotations

import torch

from ..errors import FairbenchError


class ClassSampler:
    """Draws the same number of samples from every class, without replacement, in one operation.

    Random scores are ranked per class row (padding rows of smaller classes never win), which is a
    per-class random permutation with no Python loop over classes.
    """

    def __init__(self, labels: torch.Tensor, num_classes: int):
        counts = torch.bincount(labels, minlength=num_classes)
        self.order = torch.argsort(labels, stable=True)
        self.offsets = (torch.cumsum(counts, 0) - counts).unsqueeze(1)
        self.min_count = int(counts.min())
        max_count = int(counts.max())
        self.invalid = torch.arange(max_count, device=labels.device).unsqueeze(0) >= counts.unsqueeze(1)
        if self.min_count == 0:
            missing = (counts == 0).nonzero().flatten().tolist()
            raise FairbenchError(f"classes {missing} have no training samples")

    def sample(self, per_class: int) -> torch.Tensor:
        """Class-major indices, ``min(per_class, smallest class)`` per class."""
        k = min(per_class, self.min_count)
        scores = torch.rand(self.invalid.shape, device=self.invalid.device).masked_fill(self.invalid, 2.0)
        pick = scores.topk(k, dim=1, largest=False).indices
        return self.order[self.offsets + pick].flatten()

    def sample_exact(self, per_class: int) -> torch.Tensor:
        """Exactly ``per_class`` per class (initialising IPC images), or a clear error."""
        if per_class > self.min_count:
            raise FairbenchError(
                f"ipc={per_class} is impossible: the smallest class has only {self.min_count} training images"
            )
        return self.sample(per_class)
