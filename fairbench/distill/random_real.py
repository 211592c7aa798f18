"""``random``: real images drawn per class; the floor every distiller must beat."""

from __future__ import annotations

from ..data import GroupDataset
from .base import DistillContext, Distiller, SyntheticSet
from .sampling import ClassSampler


class RandomReal(Distiller):
    name = "random"
    accepts = ()  # real images: no matching, so no variant
    description = "real images drawn at random per class (the reference floor)"

    def distill(self, train: GroupDataset, ipc: int, ctx: DistillContext) -> SyntheticSet:
        return SyntheticSet(*self.initial_images(train, ipc, ClassSampler(train.labels, train.num_classes)))
