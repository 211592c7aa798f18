"""The Wasserstein barycenter's cost: dm+wbary's iteration time over dm's, at IPC 10 and 50.

A thin front to ``fairbench bench overhead`` (same measurement: one process, warm-up, alternating
runs, medians). Target on a GPU: at most 1.3x at IPC 50 with 10 groups.

    python benchmarks/wbary_vs_dm.py --device cuda
"""

from __future__ import annotations

import argparse

import torch
from tabulate import tabulate

from fairbench.run.bench import BENCH_DEFAULTS, overhead_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--real-batch", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = {
        **BENCH_DEFAULTS,
        "device": args.device,
        "methods": ["dm+wbary"],
        "width": args.width,
        "iterations": args.iterations,
        "repeats": args.repeats,
        "distill": {"real_batch": args.real_batch},
        "per_class": args.real_batch + 50,
    }
    rows = overhead_rows(config)
    print(tabulate(rows, headers="keys", floatfmt=".2f"))


if __name__ == "__main__":
    main()
