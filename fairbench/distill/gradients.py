"""Gradients of the classification loss as matching statistics (DC, DSA, IDC), batched over classes.

The gradient is linear in per-sample loss weights, so every aggregation's real-side target is
the gradient of ``Σ_i w_i · loss_i`` over its term's samples, with the weights of
``matching_terms``. One term per class (vanilla, cobra) is one weighted loss per class: the classes
are ``vmap``-ed through one call. Several terms per class (fairdd) take per-sample gradients, which
``MatchingTerms.reduce`` turns into the terms' targets like any other per-sample statistic.

Only weight tensors (two or more dimensions) are differentiated: the layer-wise distance ignores
biases and norm parameters, as DC does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .aggregation import MatchingTerms


def _split_parameters(net: nn.Module) -> tuple[dict, dict]:
    matrices, rest = {}, {}
    for name, value in net.named_parameters():
        (matrices if value.dim() > 1 else rest)[name] = value.detach()
    return matrices, rest


def _weighted_loss_grad(net: nn.Module):
    """d/dW of Σ_i w_i · CE(net(x_i), y_i), as a function of (matrices, rest, x, y, w)."""

    def weighted_loss(matrices, rest, x, y, w):
        logits = functional_call(net, {**rest, **matrices}, (x,))
        return (F.cross_entropy(logits, y, reduction="none") * w).sum()

    return grad(weighted_loss)


def real_gradient_targets(
    net: nn.Module, terms: MatchingTerms, real: torch.Tensor, labels: torch.Tensor, equal_counts: bool = True
) -> dict[str, torch.Tensor]:
    """Per weight tensor, (C, T, *shape) target gradients; ``real`` is class-major. With one term
    per class and the same count per class, one vmap over classes; otherwise per-sample gradients
    reduced by the terms' weights."""
    matrices, rest = _split_parameters(net)
    per_grad = _weighted_loss_grad(net)
    num_classes = terms.num_classes
    if terms.terms_per_class == 1 and equal_counts:
        shape = (num_classes, -1)
        grads = vmap(per_grad, in_dims=(None, None, 0, 0, 0))(
            matrices,
            rest,
            real.view(*shape, *real.shape[1:]),
            labels.view(shape),
            terms.weight.to(real.dtype).view(shape),
        )
        return {name: g.detach().unsqueeze(1) for name, g in grads.items()}
    ones = real.new_ones(len(real), 1)
    per_sample = vmap(per_grad, in_dims=(None, None, 0, 0, 0))(
        matrices, rest, real.unsqueeze(1), labels.unsqueeze(1), ones
    )
    return {name: terms.reduce(g.detach()) for name, g in per_sample.items()}


def class_gradients(net: nn.Module, syn: torch.Tensor, syn_labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per weight tensor, (C, *shape) gradients of each class's mean loss on ``syn`` (C, m, ...).

    Differentiable with respect to ``syn``: the matching loss backpropagates through them.
    """
    matrices, rest = _split_parameters(net)
    weight = syn.new_full(syn_labels.shape, 1.0 / syn_labels.shape[1])
    return vmap(_weighted_loss_grad(net), in_dims=(None, None, 0, 0, 0))(matrices, rest, syn, syn_labels, weight)


def layerwise_distance(
    targets: dict[str, torch.Tensor], syn: dict[str, torch.Tensor], weight: torch.Tensor
) -> torch.Tensor:
    """DC's distance (per output unit 1 − cosine of its gradient rows), each term's weighted by
    ``weight`` (C, T): 0 for an absent term, 1 or a share for a present one; summed."""
    total = 0.0
    for name, target in targets.items():
        t = target.flatten(3)
        s = syn[name].flatten(2).unsqueeze(1)
        cosine = (t * s).sum(-1) / (t.norm(dim=-1) * s.norm(dim=-1) + 1e-6)
        total = total + (1 - cosine).sum(-1)
    return (total * weight).sum()
