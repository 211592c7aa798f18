"""``dc`` and ``dsa``: gradient matching (Zhao et al., ICLR 2021; Zhao & Bilen, ICML 2021).

An iteration draws a fresh network and alternates ``outer_loop`` times: one update of the
synthetic images so that each class's gradient on them matches the target gradient from a real
batch (DC's layer-wise distance), then ``inner_loop`` epochs training the network on the
synthetic set. ``dsa`` is the same with Differentiable Siamese Augmentation: real and synthetic
images of a class share a DSA draw, and the inner training augments too.

Real and synthetic gradients are computed for all classes in one batched call
(``gradients.py``); subclasses change how the stored images become training images (IDC).
"""

from __future__ import annotations

import torch

from ..augment import DSA
from ..data import GroupDataset
from ..train import train_classifier
from .aggregation import matching_terms
from .base import DistillContext, Distiller, SyntheticSet
from .gradients import class_gradients, layerwise_distance, real_gradient_targets
from .sampling import ClassSampler


class GradientMatching(Distiller):
    name = "dc"
    description = "dataset condensation: per-class gradients of the classification loss"

    def initial_images(self, train: GroupDataset, ipc: int, sampler: ClassSampler):
        """Stored synthetic images and their labels, from real images of each class."""
        index = sampler.sample_exact(ipc)
        return train.normalize(train.images[index]), train.labels[index]

    def decode(self, stored: torch.Tensor) -> torch.Tensor:
        """The training images the stored ones stand for (themselves; IDC decodes several)."""
        return stored

    def decode_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return labels

    def distill(self, train: GroupDataset, ipc: int, ctx: DistillContext) -> SyntheticSet:
        hp = self.hparams
        num_classes, num_groups = train.num_classes, train.num_groups
        sampler = ClassSampler(train.labels, num_classes)
        stored, stored_labels = self.initial_images(train, ipc, sampler)
        stored.requires_grad_(True)
        syn_labels = self.decode_labels(stored_labels)
        by_class = (num_classes, len(syn_labels) // num_classes)
        optimizer = torch.optim.SGD([stored], lr=hp["lr_img"], momentum=hp["momentum"])
        dsa = DSA(strategy=hp["dsa_strategy"]) if hp["dsa"] else None
        size = train.image_shape[-1]
        clock = self.timed_iterations(ctx)
        for _ in clock:
            net = ctx.make_net().to(ctx.device)
            for step in range(hp["outer_loop"]):
                index = sampler.sample(hp["real_batch"])
                params = dsa.sample(num_classes, size, ctx.device) if dsa is not None else None
                with clock.target.phase():
                    real, labels, groups = train.normalize(train.images[index]), train.labels[index], train.groups[index]
                    if dsa is not None:
                        real = dsa.apply(real, params, labels)
                    terms = matching_terms(self.aggregation, labels, groups, num_classes, num_groups)
                    targets = real_gradient_targets(net, terms, real, labels)
                syn = self.decode(stored)
                if dsa is not None:
                    syn = dsa.apply(syn, params, syn_labels)
                syn_grads = class_gradients(net, syn.view(*by_class, *syn.shape[1:]), syn_labels.view(by_class))
                loss = layerwise_distance(targets, syn_grads, terms.active)
                clock.watch(loss)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if step + 1 < hp["outer_loop"]:
                    train_classifier(net, self.decode(stored).detach(), syn_labels, epochs=hp["inner_loop"],
                                     lr=hp["lr_net"], momentum=0.0, weight_decay=0.0,
                                     batch_size=hp["batch_train"], augment=dsa, lr_decay=False)
        return SyntheticSet(self.decode(stored).detach(), syn_labels, self.extras(ipc))

    def extras(self, ipc: int) -> dict:
        return {}


class GradientMatchingDSA(GradientMatching):
    name = "dsa"
    description = "gradient matching with Differentiable Siamese Augmentation"
