"""The bi-level loop DC, DSA, IDC and CAFE share, with the matching left to each of them.

An iteration draws a fresh network and alternates ``outer_loop`` times: one update of the
synthetic images so that their statistics under the network match the target built from a real
batch, then ``inner_loop`` epochs training the network on the synthetic set (constant lr, as in
DC's code). With ``dsa``, real and synthetic images of a class share a DSA draw at each outer step
and the inner training augments too.

A subclass says what a statistic is (``synthetic_statistics``), how the real batch becomes a
target (``real_target``, timed as target building) and how the two are compared
(``matching_loss``); the hooks ``initial_images``/``decode`` let IDC store images in another form.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import nn

from ..data import GroupDataset
from ..training.train import train_classifier
from .base import DistillContext, Distiller, SyntheticSet
from .sampling import ClassSampler


class BilevelMatching(Distiller):
    def decode(self, stored: torch.Tensor) -> torch.Tensor:
        """The training images the stored ones stand for (themselves; IDC decodes several)."""
        return stored

    def decode_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return labels

    def extras(self, ipc: int) -> dict:
        return {}

    def start_iteration(self, iteration: int, optimizer: torch.optim.Optimizer) -> None:
        """Called before each iteration with the images' optimizer (CAFE's lr schedule); nothing here."""

    @abstractmethod
    def synthetic_statistics(self, net: nn.Module, syn: torch.Tensor, syn_labels: torch.Tensor):
        """Statistics of the (augmented) synthetic images, ``syn`` shaped (C, m, ...), differentiable."""

    @abstractmethod
    def real_target(
        self,
        net: nn.Module,
        real: torch.Tensor,
        labels: torch.Tensor,
        groups: torch.Tensor,
        num_classes: int,
        num_groups: int,
        syn_stats,
    ):
        """The group aggregation's target from a class-major real batch."""

    @abstractmethod
    def matching_loss(self, target, syn_stats) -> torch.Tensor: ...

    def distill(self, train: GroupDataset, ipc: int, ctx: DistillContext) -> SyntheticSet:
        hp = self.hparams
        num_classes, num_groups = train.num_classes, train.num_groups
        sampler = ClassSampler(train.labels, num_classes)
        stored, stored_labels, optimizer = self.learnable_images(train, ipc, sampler)
        syn_labels = self.decode_labels(stored_labels)
        by_class = (num_classes, len(syn_labels) // num_classes)
        dsa = self.augmentation()
        size = train.image_shape[-2:]
        clock = self.timed_iterations(ctx)
        # up to real_batch of each class, as the reference; a barycenter needs equal counts
        self.equal_batches = self.matches_distributions or sampler.equal_counts(hp["real_batch"])
        real_sizes = sampler.sizes(hp["real_batch"], equal=self.equal_batches)
        syn_sizes = [by_class[1]] * num_classes
        for iteration in clock:
            self.start_iteration(iteration, optimizer)
            net = ctx.fresh_net()
            for step in range(hp["outer_loop"]):
                index = sampler.sample(hp["real_batch"], equal=self.equal_batches)
                params = dsa.sample(num_classes, size, ctx.device) if dsa is not None else None
                syn = self.decode(stored)
                if dsa is not None:
                    syn = dsa.apply(syn, params, syn_labels, syn_sizes)
                syn_stats = self.synthetic_statistics(
                    net, syn.view(*by_class, *syn.shape[1:]), syn_labels.view(by_class)
                )
                with clock.target.phase():
                    real, labels = train.normalize(train.images[index]), train.labels[index]
                    if dsa is not None:
                        real = dsa.apply(real, params, labels, real_sizes)
                    target = self.real_target(
                        net, real, labels, train.groups[index], num_classes, num_groups, syn_stats
                    )
                loss = self.matching_loss(target, syn_stats)
                clock.watch(loss)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if step + 1 < hp["outer_loop"]:
                    train_classifier(
                        net,
                        self.decode(stored).detach(),
                        syn_labels,
                        epochs=hp["inner_loop"],
                        lr=hp["lr_net"],
                        momentum=0.0,
                        weight_decay=0.0,
                        batch_size=hp["batch_train"],
                        augment=dsa,
                        schedule="constant",
                    )
        return SyntheticSet(self.decode(stored).detach(), syn_labels, self.extras(ipc))
