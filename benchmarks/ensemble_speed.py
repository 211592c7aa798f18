"""Wall time of training an evaluator's ``num_eval`` runs sequentially and as one vectorised ensemble.

Both paths train the same members (same seeds, same shuffles and augmentation draws) on the same
random synthetic set, side by side in one process, after a warm-up epoch each, with the device
synchronised around every timing; the order alternates between repeats. Prints one line per IPC
with the median seconds per epoch of each path and their ratio.

    python benchmarks/ensemble_speed.py                         # convnet, IPC 10 and 50, num_eval 5
    python benchmarks/ensemble_speed.py --device cpu --epochs 2 --repeats 1 --threads 1

On a CPU shared with other work, ``--threads 1`` avoids OpenMP threads waiting on each other at
every barrier, which can slow a small convolution down by an order of magnitude.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fairbench.distill.base import synchronize
from fairbench.evaluation.evaluate import evaluator_spec, seeded_members
from fairbench.training.augment import DSA
from fairbench.training.ensemble import Ensemble, vectorisation_blocker
from fairbench.training.train import fit, train_classifier


def _timed(run, device) -> float:
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - start


def measure(
    spec: dict, ipc: int, num_eval: int, image_shape, num_classes: int, epochs: int, repeats: int, device: torch.device
) -> tuple[float, float]:
    """Median seconds per epoch of (sequential, ensemble) training."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(ipc * num_classes, *image_shape, generator=generator).to(device)
    labels = torch.arange(num_classes).repeat_interleave(ipc).to(device)
    seeds = list(range(num_eval))
    train = dict(spec["train"], epochs=epochs)
    augment = DSA() if train.pop("dsa") else None

    def sequential(epochs):
        for model, rng in seeded_members(spec, image_shape, num_classes, seeds, device):
            train_classifier(model, images, labels, augment=augment, rng=rng, **dict(train, epochs=epochs))

    def ensemble(epochs):
        models, rngs = zip(*seeded_members(spec, image_shape, num_classes, seeds, device))
        fit(Ensemble(list(models)), images, labels, rngs, augment=augment, **dict(train, epochs=epochs))

    blocker = vectorisation_blocker(next(seeded_members(spec, image_shape, num_classes, seeds, device))[0], images[:2])
    if blocker:
        raise SystemExit(f"{spec['name']} does not vectorise: {blocker}")
    for path in (sequential, ensemble):
        path(1)  # warm-up: allocator, kernel selection, lazy initialisation
    times = {sequential: [], ensemble: []}
    for repeat in range(repeats):
        order = (sequential, ensemble) if repeat % 2 == 0 else (ensemble, sequential)
        for path in order:
            times[path].append(_timed(lambda path=path: path(epochs), device) / epochs)
    return statistics.median(times[sequential]), statistics.median(times[ensemble])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluator", default="convnet")
    parser.add_argument("--ipc", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--num-eval", type=int, default=5)
    parser.add_argument("--shape", type=int, nargs=3, default=[3, 32, 32], metavar=("C", "H", "W"))
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20, help="timed epochs per path and repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    spec = evaluator_spec(args.evaluator)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(
        f"{args.evaluator}, num_eval={args.num_eval}, {'x'.join(map(str, args.shape))}, "
        f"{args.classes} classes, {args.epochs} epochs x {args.repeats} repeats, {label}, torch {torch.__version__}"
    )
    for ipc in args.ipc:
        seq, ens = measure(spec, ipc, args.num_eval, tuple(args.shape), args.classes, args.epochs, args.repeats, device)
        print(f"IPC {ipc:3d}: sequential {seq:8.3f} s/epoch   ensemble {ens:8.3f} s/epoch   speed-up {seq / ens:5.2f}x")


if __name__ == "__main__":
    main()
