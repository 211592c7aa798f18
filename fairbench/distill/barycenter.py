"""Entropic optimal transport on the device, batched: Sinkhorn plans, free-support barycenters.

Why not POT's solvers directly: its exact solver runs on the CPU, and its batched log-domain
Sinkhorn (``ot.batch``) checks convergence with a host sync every ten iterations. Inside a
distillation step fairbench wants neither, so it runs a fixed number of log-domain Sinkhorn
iterations on whole batches of problems (every class and group at once) and never leaves the
device. POT supplies the batched cost matrices and the transport loss (``ot.batch``, through its
torch backend) and is the reference the tests compare the barycenter against.

The entropic regularisation is given relative to the mean cost of each problem, so one setting
fits embeddings of any scale. As it grows, each support point's transport image tends to the
group mean and the barycenter collapses onto COBRA's mean of means; as it shrinks, it tends to
the exact 2-Wasserstein barycenter.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from ot.batch import dist_batch, loss_linear_batch


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, n, d), (B, m, d) → (B, n, m) squared Euclidean costs (rounding can dip below 0)."""
    return dist_batch(x, y).clamp_min(0)


def _log_uniform(shape: tuple[int, ...], device) -> torch.Tensor:
    return torch.full(shape, -math.log(shape[-1]), device=device)


def sinkhorn_plans(
    cost: torch.Tensor, log_a: torch.Tensor, log_b: torch.Tensor, reg: float, iterations: int
) -> torch.Tensor:
    """Entropic transport plans of a batch of problems, log domain, a fixed number of iterations.

    ``cost`` (B, n, m); ``log_a`` (B, n) and ``log_b`` (B, m) are log marginals, where ``-inf``
    marks a point with no mass (padding), which then receives none. No gradient flows through
    the plans: callers use them as fixed couplings (envelope theorem).
    """
    cost = cost.detach()
    scale = reg * cost.flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1)
    kernel = -cost / scale
    # The potentials are f = log_a - lse_j(kernel + g) and g = log_b - lse_i(kernel + f). With each
    # marginal folded into the kernel once, an update is one subtraction and one logsumexp of the
    # other side's lse: two launches, not three (the sums in another order: float rounding).
    kernel_a, kernel_b = kernel + log_a.unsqueeze(2), kernel + log_b.unsqueeze(1)
    lse_g = None  # g = 0 to start
    for _ in range(iterations):
        lse_f = torch.logsumexp(kernel if lse_g is None else kernel_b - lse_g.unsqueeze(1), dim=2)
        lse_g = torch.logsumexp(kernel_a - lse_f.unsqueeze(2), dim=1)
    if lse_g is None:
        return torch.exp(kernel)
    return torch.exp(kernel_a - lse_f.unsqueeze(2) + (log_b - lse_g).unsqueeze(1))


# A solver gets a detached cost: its plans are fixed couplings, and a compiled solver then builds
# no backward graph.
Solver = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float, int], torch.Tensor]


def transport_cost(
    x: torch.Tensor, y: torch.Tensor, *, reg: float, iterations: int, solver: Solver = sinkhorn_plans
) -> torch.Tensor:
    """Per problem, the transport cost between uniform clouds ``x`` (B, n, d) and ``y`` (B, m, d).

    Differentiable in both clouds through the cost matrix, with the plan held fixed. ``solver``:
    :func:`sinkhorn_plans` or a compiled one (``distill.compile``).
    """
    cost = squared_distances(x, y)
    plan = solver(
        cost.detach(), _log_uniform(x.shape[:2], x.device), _log_uniform(y.shape[:2], y.device), reg, iterations
    )
    return loss_linear_batch(cost, plan)


def group_barycenter(
    points: torch.Tensor,
    group_mass: torch.Tensor,
    group_weight: torch.Tensor,
    init: torch.Tensor,
    *,
    reg: float,
    iterations: int,
    sinkhorn_iterations: int,
    solver: Solver = sinkhorn_plans,
) -> torch.Tensor:
    """Free-support barycenters of several groups' point clouds, one problem per row.

    ``points`` (B, n, d) holds every group's points of a problem together; ``group_mass``
    (B, G, n) gives each group's distribution over them (rows sum to one; other groups' points
    zero) and ``group_weight`` (B, G) the groups' weights in the barycenter (absent groups 0).
    Starting from ``init`` (B, K, d), each iteration transports the K uniform support points to
    every group at once and moves them to the weighted mean of their transport images
    (Cuturi & Doucet's fixed point). ``solver`` as for :func:`transport_cost`.
    """
    batch, groups, n = group_mass.shape
    support = init.shape[1]
    # an absent group has no mass anywhere; give it a dummy uniform one (its weight is zero)
    present = group_mass.sum(-1, keepdim=True) > 0
    log_b = torch.where(present, group_mass, torch.full_like(group_mass, 1.0 / n)).log().flatten(0, 1)
    log_a = _log_uniform((batch * groups, support), points.device)
    x = init
    for _ in range(iterations):
        cost = squared_distances(x, points)  # (B, K, n)
        plans = solver(cost.detach().repeat_interleave(groups, 0), log_a, log_b, reg, sinkhorn_iterations)
        mixed = torch.einsum("bg,bgkn->bkn", group_weight, plans.view(batch, groups, support, n))
        x = support * torch.bmm(mixed, points)
    return x
