"""The fastest a DM iteration can be here while it computes the same float32 convolutions.

Any implementation of a DM step that matches the same embeddings computes the same convolutions:
the real batch's forward (classes x real_batch images) and the synthetic set's forward and input
gradient. This script times those convolutions alone with torch's own kernels, tiled as
fairbench tiles them (their fastest here), each layer in the faster of the two memory layouts
oneDNN takes, on inputs that stay in cache, and in the same process
one iteration of the reference loop and one of fairbench's (both from
``benchmarks/dm_vs_reference.py``). ``ceiling`` is the speed-up over the reference of an
iteration made of nothing but those convolutions: no normalisation, ReLU, pooling, DSA,
sampling or update. A speed-up above it needs less arithmetic (another convolution algorithm, a
lower precision), not less overhead.

    python benchmarks/cpu_roofline.py                  # 1 and 2 threads, dm
    python benchmarks/cpu_roofline.py --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fairbench.distill import method_hparams
from fairbench.distill.tiling import CPU_TILE
from fairbench.models import build_model
from fairbench.run.bench import synthetic_dataset

spec = importlib.util.spec_from_file_location("dm_vs_reference", Path(__file__).with_name("dm_vs_reference.py"))
dm_vs_reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dm_vs_reference)


def conv_inputs(net: nn.Module, images: int, image_size: int) -> list[tuple[nn.Conv2d, tuple[int, ...]]]:
    """Each convolution of ``net`` with the input shape it sees for ``images`` images."""
    shapes, x = [], torch.zeros(1, 3, image_size, image_size)
    with torch.no_grad():
        for layer in net.features:
            if isinstance(layer, nn.Conv2d):
                shapes.append((layer, (images, *x.shape[1:])))
            x = layer(x)
    return shapes


def timed_ms(run) -> float:
    start = time.perf_counter()
    run()
    return 1000 * (time.perf_counter() - start)


def layouts(x: torch.Tensor, conv: nn.Conv2d):
    """The input and weight in both memory layouts oneDNN takes: contiguous (torch's default) and
    channels-last (what a compiler picks; faster for some layers here, and rounding differently)."""
    for layout in (torch.contiguous_format, torch.channels_last):
        yield x.contiguous(memory_format=layout), conv.weight.detach().contiguous(memory_format=layout)


def real_convolutions_ms(net: nn.Module, images: int, image_size: int) -> float:
    """The real batch's convolutions, forward only, in tiles of ``CPU_TILE`` images, each layer in
    its faster layout."""
    total = 0.0
    with torch.no_grad():
        for conv, shape in conv_inputs(net, images, image_size):
            tile = torch.randn(CPU_TILE, *shape[1:])

            def run(x, weight, conv=conv):
                for _ in range(images // CPU_TILE):
                    F.conv2d(x, weight, conv.bias, padding=conv.padding)

            total += min(timed_ms(lambda x=x, w=w: run(x, w)) for x, w in layouts(tile, conv))
    return total


def synthetic_convolutions_ms(net: nn.Module, images: int, image_size: int) -> float:
    """The synthetic set's convolutions, forward and the gradient of their input (weights fixed),
    each layer in its faster layout."""
    total = 0.0
    for conv, shape in conv_inputs(net, images, image_size):

        def run(x, weight, conv=conv):
            x = x.detach().requires_grad_(True)
            out = F.conv2d(x, weight, conv.bias.detach(), padding=conv.padding)
            torch.autograd.grad(out, x, torch.ones_like(out))

        total += min(timed_ms(lambda x=x, w=w: run(x, w)) for x, w in layouts(torch.randn(shape), conv))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--method", default="dm", choices=["dm", "dm+fairdd"])
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--real-batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device, size = torch.device("cpu"), 32
    torch.manual_seed(0)
    np.random.seed(0)
    train = synthetic_dataset(10, 10, args.real_batch + 50, size, device)
    net = build_model("convnet", 3, 10, size, width=args.width).requires_grad_(False)
    hp = {**method_hparams(args.method, "", args.ipc), "real_batch": args.real_batch}
    reference = dm_vs_reference.ReferenceLoop(
        train, args.ipc, hp, dm_vs_reference.reference_net(size, args.width), device, dm_vs_reference.MODES[args.method]
    )

    def make_net():
        return build_model("convnet", 3, 10, size, width=args.width)

    real_images, syn_images = 10 * args.real_batch, 10 * args.ipc
    print(f"{args.method}: ipc={args.ipc} width={args.width} real_batch={args.real_batch}, 10 classes")
    print(dm_vs_reference.process_line(torch.device("cpu")))
    print("| threads | reference ms | fairbench ms | convolutions alone ms | fairbench speed-up | ceiling |")
    print("|---|---|---|---|---|---|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        reference.time_ms(1)  # warm-up
        ours, theirs, floor = [], [], []
        for _ in range(args.repeats):
            theirs.append(reference.time_ms(1))
            ours.append(dm_vs_reference.fairbench_ms(args.method, train, args.ipc, hp, make_net, device, 1))
            floor.append(
                real_convolutions_ms(net, real_images, size) + synthetic_convolutions_ms(net, syn_images, size)
            )
        ref_ms, our_ms, conv_ms = (statistics.median(v) for v in (theirs, ours, floor))
        print(
            f"| {threads} | {ref_ms:.0f} | {our_ms:.0f} | {conv_ms:.0f} | {ref_ms / our_ms:.2f}x | {ref_ms / conv_ms:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
