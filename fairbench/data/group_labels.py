"""Group-label quality: what the distiller sees of the training split's groups.

Real group labels are noisy or partly missing, and every fair variant consumes them. These dataset
parameters, valid for every dataset, change only the group labels of the *training* split (what
the distiller is handed); the test split always keeps the true groups.

- ``group_noise=p``: each training sample's group is replaced, with probability p, by a group drawn
  uniformly among the others.
- ``group_known=q``: a random fraction q of the training samples keep a group label; the others
  are unknown. ``group_unknown`` says what the distiller gets for them:
  ``drop`` (the default): the group id :data:`UNKNOWN` (-1), which the variant contract reads as
  "no group": the sample feeds no group term (``fairdd``, ``cobra``), while terms that pool a class
  (``vanilla``) still use it; ``infer``: the group predicted by a small classifier (softmax
  regression on 8x8 average-pooled pixels) trained on the known part, its accuracy on the samples
  it labelled recorded.
- ``group_seed``: the seed of these draws (noise first, then which samples stay known).

Each key at its default is left out of the resolved dataset parameters, so protocols that do not
use them keep their ids, and with the defaults nothing is drawn: the training split is the one
the builder made, bit for bit. The true groups stay on the split (``true_groups``) for the dataset
card; ``about`` says what was done (recorded as ``distiller_groups`` in every record).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from ..core.errors import FairbenchError
from .dataset import GroupDataset

UNKNOWN = -1
POLICIES = ("drop", "infer")
DEFAULTS = {"group_noise": 0.0, "group_known": 1.0, "group_unknown": "drop", "group_seed": 0}
RANGES = {"group_noise": "[0, 1]", "group_known": "(0, 1]", "group_seed": "[0, inf)"}
_INFER_STEPS = 200


def active(params: dict) -> bool:
    """Whether ``params`` change any group label (a noise or an unknown fraction is set)."""
    return params.get("group_noise", 0.0) > 0 or params.get("group_known", 1.0) < 1


def check_policy(params: dict) -> None:
    policy = params.get("group_unknown", "drop")
    if policy not in POLICIES:
        raise FairbenchError(f"group_unknown={policy!r} is not a policy; choose from: {', '.join(POLICIES)}")


def with_noise(groups: torch.Tensor, num_groups: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """Each group replaced with probability ``p`` by one of the other ``num_groups - 1``, uniformly."""
    flip = torch.rand(len(groups), generator=generator) < p
    shift = torch.randint(1, max(num_groups, 2), (len(groups),), generator=generator)
    return torch.where(flip, (groups + shift) % num_groups, groups)


def known_mask(n: int, q: float, generator: torch.Generator) -> torch.Tensor:
    """``round(q·n)`` samples, drawn at random, marked known."""
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=generator)[: round(q * n)]] = True
    return mask


def _features(data: GroupDataset) -> torch.Tensor:
    x = F.adaptive_avg_pool2d(data.images.float() / 255, 8).flatten(1)
    return (x - x.mean(0)) / (x.std(0) + 1e-6)


def infer_groups(
    data: GroupDataset, groups: torch.Tensor, known: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Groups for the unknown samples, predicted by softmax regression trained on the known ones
    (full-batch Adam, a fixed number of steps, seeded initial weights)."""
    x = _features(data)
    weight = (0.01 * torch.randn(x.shape[1], data.num_groups, generator=generator)).requires_grad_(True)
    bias = torch.zeros(data.num_groups, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=0.05)
    for _ in range(_INFER_STEPS):
        loss = F.cross_entropy(x[known] @ weight + bias, groups[known])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = (x @ weight + bias).argmax(1)
    return torch.where(known, groups, predicted)


def distiller_view(train: GroupDataset, params: dict) -> tuple[GroupDataset, dict]:
    """``train`` with the group labels the distiller sees, and what was done (empty when nothing)."""
    if not active(params):
        return train, {}
    check_policy(params)
    settings = {**DEFAULTS, **{k: v for k, v in params.items() if k in DEFAULTS}}
    generator = torch.Generator().manual_seed(int(settings["group_seed"]))
    truth = train.groups
    groups = truth
    about: dict = {"seed": int(settings["group_seed"])}
    if settings["group_noise"] > 0:
        groups = with_noise(truth, train.num_groups, settings["group_noise"], generator)
        about["noise"] = settings["group_noise"]
        about["changed"] = float((groups != truth).float().mean())
    if settings["group_known"] < 1:
        known = known_mask(len(truth), settings["group_known"], generator)
        about |= {"known": settings["group_known"], "unknown": settings["group_unknown"]}
        about["known_fraction"] = float(known.float().mean())
        if settings["group_unknown"] == "infer":
            if not bool(known.any()):
                raise FairbenchError("group_unknown=infer needs at least one training sample with a known group")
            groups = infer_groups(train, groups, known, generator)
            hidden = ~known
            about["infer_acc"] = (
                100 * float((groups[hidden] == truth[hidden]).float().mean()) if bool(hidden.any()) else 100.0
            )
        else:
            groups = torch.where(known, groups, torch.full_like(groups, UNKNOWN))
    return replace(train, groups=groups, true_groups=truth), about
