"""``dm``: distribution matching (Zhao & Bilen, WACV 2023).

Each step draws a fresh random network and moves the synthetic images so that, class by class,
their embeddings match the target the group aggregation builds from a real batch (a mean per
term, or for ``wbary`` the groups' Wasserstein barycenter). All classes go through one forward
pass (instance norm keeps samples independent), real and synthetic images get the same DSA draw
per class.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..data import GroupDataset
from ..training.augment import DSA
from ..training.compiled import captures_graphs, new_step
from ..training.train import train_classifier
from .base import DistillContext, Distiller, SyntheticSet
from .compiled import compiled_augmented_embedding, compiled_embedding
from .feature_targets import feature_target
from .sampling import ClassSampler
from .tiling import tiled


class DistributionMatching(Distiller):
    name = "dm"
    accepts = ("mean", "distribution")
    description = "distribution matching: mean embeddings under random networks"

    def distill(self, train: GroupDataset, ipc: int, ctx: DistillContext) -> SyntheticSet:
        hp = self.hparams
        num_classes, num_groups = train.num_classes, train.num_groups
        sampler = ClassSampler(train.labels, num_classes)
        syn, syn_labels, optimizer = self.learnable_images(train, ipc, sampler)
        dsa = self.augmentation()
        size = train.image_shape[-2:]
        clock = self.timed_iterations(ctx)
        # up to real_batch of each class; a barycenter needs the same count per class
        real_sizes = sampler.sizes(hp["real_batch"], equal=self.matches_distributions)
        syn_sizes = [ipc] * num_classes
        compiling = hp.get("compile", False)
        in_graph = compiling and dsa is not None and captures_graphs(ctx.device)
        for _ in clock:
            net = ctx.fresh_net()
            if compiling:
                new_step(ctx.device)
            with clock.target.phase():
                if hp["warmup_epochs"]:
                    warm_start(net, syn.detach(), syn_labels, hp, dsa)
            net.requires_grad_(False)
            index = sampler.sample(hp["real_batch"], equal=self.matches_distributions)
            params = dsa.sample(num_classes, size, ctx.device, static=in_graph) if dsa is not None else None
            embed = step_embedding(net, dsa, params, compiling, in_graph, ctx.device)
            # synthetic embeddings first: the barycenter starts from them
            syn_embed = embed(syn, syn_labels, syn_sizes).view(num_classes, ipc, -1)
            with clock.target.phase():
                real, labels, groups = train.normalize(train.images[index]), train.labels[index], train.groups[index]
                with torch.no_grad():
                    real_embed = embed(real, labels, real_sizes)
                target = feature_target(
                    self.aggregation, real_embed, labels, groups, num_classes, num_groups, syn_embed, hp
                )
            loss = target.loss(syn_embed)
            clock.watch(loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return SyntheticSet(syn.detach(), syn_labels)


def step_embedding(
    net: nn.Module, dsa: DSA | None, params: dict | None, compiling: bool, in_graph: bool, device: torch.device
) -> Callable[[torch.Tensor, torch.Tensor, list[int]], torch.Tensor]:
    """A step's embedding of a class-major batch, called with its images, labels and samples per
    class: DSA's draw ``params`` applied (none if ``dsa`` is None), then ``net.embed``, compiled
    with ``distill.compile``. ``in_graph`` (compiled, on a device that replays CUDA graphs): both
    in one graph call, ``params`` a ``static`` draw; elsewhere DSA runs eagerly, grouped by
    transform, and the embedding in cache-sized tiles on a CPU."""
    if in_graph:
        augmented = compiled_augmented_embedding(net, dsa, device)
        return lambda x, labels, sizes: augmented(x, params, dsa.static_index(params, sizes, device))
    embed = compiled_embedding(net, device) if compiling else net.embed
    if dsa is None:
        return lambda x, labels, sizes: tiled(embed, x, net)
    return lambda x, labels, sizes: tiled(embed, dsa.apply(x, params, labels, sizes), net)


def warm_start(net, images, labels, hparams, dsa):
    """COBRA: train the step's network on the current synthetic set before embedding it.

    The reference trains with plain SGD at ``lr_net`` (no momentum, no weight decay, a constant
    rate) and the method's DSA on; the registry's ``warmup_*`` settings say so, so a deviation is
    a recorded hyperparameter, not a code change. With ``distill.compile`` each epoch's forward,
    loss and backward run compiled (CUDA graphs on a GPU).
    """
    train_classifier(
        net,
        images,
        labels,
        epochs=hparams["warmup_epochs"],
        lr=hparams["warmup_lr"],
        momentum=hparams["warmup_momentum"],
        weight_decay=hparams["warmup_weight_decay"],
        batch_size=hparams["warmup_batch"],
        schedule=hparams["warmup_schedule"],
        augment=dsa if hparams["warmup_dsa"] else None,
        compile=hparams.get("compile", False),
    )
