"""Will a run's networks fit: the shape check of :func:`fairbench.evaluation.evaluate.check_fits`,
then the memory, both before anything trains.

A network of 10^6 channels passes the shape check (it runs on the meta device, allocating
nothing) and then asks for terabytes; ``num_eval=100000`` trained as one ensemble grows for
minutes before it dies. Counting the weights on the meta device costs nothing and refuses both
with one line naming the settings.
"""

from __future__ import annotations

import torch

from ..core.device import free_memory
from ..core.errors import FairbenchError
from ..evaluation.evaluate import check_fits, make_model

# an evaluation run holds its weights, their gradients and the optimiser's momentum, plus
# activations; four copies of the weights is the least it can need
_WEIGHT_COPIES = 4


def ensemble_runs(ensemble, num_eval: int, device) -> int:
    """How many networks train at once: ``num_eval`` as an ensemble, one at a time otherwise."""
    together = ensemble is True or (ensemble == "auto" and torch.device(device).type != "cpu")
    return num_eval if together else 1


def check_network_fits(spec: dict, image_shape: tuple[int, int, int], num_classes: int, runs: int, device) -> None:
    """The run's networks-fit check, then the memory: ``runs`` networks trained at once (an
    ensemble) must fit in what ``device`` has free, counted from the weights alone."""
    check_fits(spec, image_shape, num_classes)
    with torch.device("meta"):
        weights = sum(p.numel() for p in make_model(spec, image_shape, num_classes).parameters())
    needed = weights * 4 * _WEIGHT_COPIES * runs
    free = free_memory(device) if device is not None else None  # None: checked where the cell runs
    if free is not None and needed > free:
        raise FairbenchError(
            f"evaluator '{spec['name']}' has {weights:,} weights: {runs} of them need at least "
            f"{needed / 2**30:.1f} GiB, and {device} has {free / 2**30:.1f} GiB free (its models.{spec['name']} "
            f"settings, e.g. width, or num_eval, are too large)"
        )
