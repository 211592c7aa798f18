"""One evaluation epoch, and ``num_eval`` runs trained as one vectorised ensemble against one
after the other.

The ensemble exists for GPUs, where a ConvNet step on 100 images is dominated by kernel launches:
there it must beat the sequential runs. On a CPU it measured slower (``ensemble=auto`` trains
sequentially there; 3.5x measured on a loaded 2-core box), so the CPU check only bounds how much
slower.
"""

import torch
from sizes import CLASSES, ROUNDS, SIZE, WIDTH

from fairbench.evaluation.evaluate import evaluator_spec, seeded_members
from fairbench.training.augment import DSA
from fairbench.training.ensemble import Ensemble
from fairbench.training.train import fit, train_classifier

IPC, NUM_EVAL = 10, 5
ENSEMBLE_LIMIT = {"cuda": 1.0, "cpu": 6.0}  # CPU: measured 3.5x on a loaded 2-core box


def _setting(device):
    spec = evaluator_spec("convnet", model_overrides={"width": WIDTH})
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(IPC * CLASSES, 3, SIZE, SIZE, generator=generator).to(device)
    labels = torch.arange(CLASSES).repeat_interleave(IPC).to(device)
    train = dict(spec["train"], epochs=1)
    augment = DSA() if train.pop("dsa") else None
    return spec, images, labels, train, augment


def test_evaluation_epoch(benchmark, device):
    spec, images, labels, train, augment = _setting(device)
    model, rng = next(seeded_members(spec, (3, SIZE, SIZE), CLASSES, [0], device))
    epoch = lambda: train_classifier(model, images, labels, augment=augment, rng=rng, **train)  # noqa: E731
    benchmark.pedantic(epoch, rounds=ROUNDS, warmup_rounds=1)


def test_ensemble_over_sequential(benchmark, device, side_by_side):
    spec, images, labels, train, augment = _setting(device)
    seeds = list(range(NUM_EVAL))

    def sequential():
        for model, rng in seeded_members(spec, (3, SIZE, SIZE), CLASSES, seeds, device):
            train_classifier(model, images, labels, augment=augment, rng=rng, **train)

    def ensemble():
        models, rngs = zip(*seeded_members(spec, (3, SIZE, SIZE), CLASSES, seeds, device))
        fit(Ensemble(list(models)), images, labels, rngs, augment=augment, **train)

    ratio = side_by_side(ensemble, sequential)
    benchmark.extra_info["over_sequential"] = ratio
    benchmark.pedantic(ensemble, rounds=ROUNDS, warmup_rounds=1)
    limit = ENSEMBLE_LIMIT[device.type]
    assert ratio < limit, f"ensemble of {NUM_EVAL} {ratio:.2f}x sequential on {device.type} (limit {limit})"
