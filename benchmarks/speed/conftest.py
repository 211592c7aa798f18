"""Shared set-up of the speed benchmarks: a small synthetic group-labelled dataset, one device, and
side-by-side timing.

pytest-benchmark records each benchmark's absolute time (for ``--benchmark-compare`` on one fixed
runner); the assertions only ever check a ratio of two paths timed alternately in this process,
because absolute times differ from machine to machine. ``FAIRBENCH_BENCH_DEVICE=cuda`` runs them
on a GPU.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pytest
import torch
from sizes import CLASSES, GROUPS, PER_CLASS, SIZE, WIDTH

from fairbench.distill import DistillContext
from fairbench.distill.base import synchronize
from fairbench.models import build_model
from fairbench.run.bench import synthetic_dataset


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device(os.environ.get("FAIRBENCH_BENCH_DEVICE", "cpu"))


@pytest.fixture(scope="session")
def train(device):
    torch.manual_seed(0)
    return synthetic_dataset(CLASSES, GROUPS, PER_CLASS, SIZE, device)


@pytest.fixture(scope="session")
def context(device, tmp_path_factory) -> DistillContext:
    spec = {"width": WIDTH, "depth": 3, "norm": "instance"}
    return DistillContext(
        device=device,
        experts_dir=Path(tmp_path_factory.mktemp("experts")),
        make_net=lambda: build_model("convnet", 3, CLASSES, SIZE, **spec),
        provenance={"dataset": "bench", "net": spec},
    )


@pytest.fixture(scope="session")
def side_by_side(device):
    """``ratio(variant, base, repeats)``: median time of ``variant`` over median time of ``base``,
    the two called alternately after one warm-up call each, the device synchronised around each."""

    def timed(fn) -> float:
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        return time.perf_counter() - start

    def ratio(variant, base, repeats: int = 5) -> float:
        variant(), base()
        times = {variant: [], base: []}
        for i in range(repeats):
            for fn in (variant, base) if i % 2 == 0 else (base, variant):
                times[fn].append(timed(fn))
        return statistics.median(times[variant]) / statistics.median(times[base])

    return ratio
