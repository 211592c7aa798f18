"""An example fairbench plugin: one mean variant (``sqrt``) and one tiny base (``pixel``).

fairbench imports this module through the ``fairbench.plugins`` entry point declared in
``pyproject.toml``; the decorators below register the two when it does.
"""

import torch

import fairbench
from fairbench import MatchingTerms


@fairbench.register_variant("sqrt", kind="mean")
def sqrt_weights(labels, groups, num_classes, num_groups) -> MatchingTerms:
    """Within a class, sample weights ∝ 1/sqrt(n_cg): a group's share grows as the root of its size"""
    known = groups >= 0  # an unknown group (-1) feeds no group term: weight 0
    size = num_classes * num_groups
    cell = labels * num_groups + groups.clamp(min=0)
    cell_count = torch.bincount(torch.where(known, cell, size), minlength=size + 1)[:size].double()
    raw = torch.where(known, cell_count[cell].clamp(min=1).rsqrt(), 0.0)
    class_total = torch.zeros(num_classes, dtype=raw.dtype, device=raw.device).index_add_(0, labels, raw)
    return MatchingTerms(
        term=labels,
        weight=(raw / class_total[labels].clamp(min=1e-12)).float(),
        active=(class_total > 0).unsqueeze(1),
        terms_per_class=1,
    )


@fairbench.register_base("pixel", config="pixel.yaml")
class PixelMatching(fairbench.Distiller):
    """Match each class's mean image (pixel space) to the variant's target of a real batch."""

    accepts = ("mean",)
    description = "distribution matching in pixel space (the identity as network)"

    def distill(self, train, ipc, ctx):
        hp = self.hparams
        sampler = fairbench.ClassSampler(train.labels, train.num_classes)
        syn, syn_labels, optimizer = self.learnable_images(train, ipc, sampler)
        clock = self.timed_iterations(ctx)
        for _ in clock:
            index = sampler.sample(hp["real_batch"])
            with clock.target.phase():
                real = train.normalize(train.images[index])
                terms = fairbench.matching_terms(
                    self.aggregation, train.labels[index], train.groups[index], train.num_classes, train.num_groups
                )
                target = terms.reduce(real)  # (C, T, C, H, W)
            syn_mean = syn.view(train.num_classes, ipc, *syn.shape[1:]).mean(1).unsqueeze(1)
            loss = ((target - syn_mean).pow(2).flatten(2).sum(-1) * terms.active).sum()
            clock.watch(loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return fairbench.SyntheticSet(syn.detach(), syn_labels)
