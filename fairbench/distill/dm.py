"""``dm``: distribution matching (Zhao & Bilen, WACV 2023).

Each step draws a fresh random network and moves the synthetic images so that, class by class,
their mean embedding matches the target built from a real batch by the group aggregation. All
classes go through one forward pass (instance norm keeps samples independent), real and synthetic
images get the same DSA draw per class.
"""

from __future__ import annotations

import torch

from ..augment import DSA
from ..data import GroupDataset
from ..train import train_classifier
from .aggregation import matching_terms
from .base import DistillContext, Distiller, Stopwatch, SyntheticSet
from .sampling import ClassSampler

DISTANCES = {
    "mse": lambda diff: diff.pow(2).flatten(2).sum(-1),
    "l1": lambda diff: diff.abs().flatten(2).sum(-1),
}


class DistributionMatching(Distiller):
    name = "dm"
    description = "distribution matching: mean embeddings under random networks"

    def distill(self, train: GroupDataset, ipc: int, ctx: DistillContext) -> SyntheticSet:
        hp = self.hparams
        num_classes, num_groups = train.num_classes, train.num_groups
        sampler = ClassSampler(train.labels, num_classes)
        init = sampler.sample_exact(ipc)
        syn = train.normalize(train.images[init]).requires_grad_(True)
        syn_labels = train.labels[init]
        optimizer = torch.optim.SGD([syn], lr=hp["lr_img"], momentum=hp["momentum"])
        dsa = DSA(strategy=hp["dsa_strategy"]) if hp["dsa"] else None
        distance = DISTANCES[hp["distance"]]
        size = train.image_shape[-1]
        with Stopwatch(ctx.device) as clock:
            for _ in ctx.progress(range(hp["iterations"]), desc=f"distill {self.name}"):
                net = ctx.make_net().to(ctx.device)
                if hp["warmup_epochs"]:
                    self._warm_start(net, syn.detach(), syn_labels)
                net.requires_grad_(False)
                index = sampler.sample(hp["real_batch"])
                real, labels, groups = train.normalize(train.images[index]), train.labels[index], train.groups[index]
                syn_in = syn
                if dsa is not None:
                    params = dsa.sample(num_classes, size, ctx.device)
                    real, syn_in = dsa.apply(real, params, labels), dsa.apply(syn, params, syn_labels)
                with torch.no_grad():
                    real_embed = net.embed(real)
                terms = matching_terms(self.aggregation, labels, groups, num_classes, num_groups)
                targets = terms.reduce(real_embed)
                syn_mean = net.embed(syn_in).view(num_classes, ipc, -1).mean(1)
                loss = (distance(targets - syn_mean.unsqueeze(1)) * terms.active).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        self.stats.iterations += hp["iterations"]
        self.stats.wall_s += clock.seconds
        return SyntheticSet(syn.detach(), syn_labels)

    def _warm_start(self, net, images, labels):
        """COBRA: train the step's network on the current synthetic set before embedding."""
        hp = self.hparams
        train_classifier(net, images, labels, epochs=hp["warmup_epochs"], lr=hp["warmup_lr"],
                         momentum=0.9, weight_decay=5e-4, batch_size=256)
