"""fairbench's DM iteration against a re-implementation of the reference code's loop, side by side.

The reference is COBRA's ``train_dm.py`` (mhmoslemi/COBRA), whose three modes are dm, dm+fairdd and
dm+cobra. Each of its iterations builds a fresh ConvNet; in cobra mode trains it for K epochs on
the synthetic set (plain SGD at lr_net, a shuffled loader, an unseeded DSA draw per batch, the
loss read back each batch); then, class by class, draws its real batch, gives real and synthetic
images one Siamese DSA draw, embeds both in one call each and adds the class's term: the squared
distance of the means (vanilla), one such term per group found in the batch (fairdd), or the L1
distance to the mean of the group means, each group embedded again (cobra). Both sides use
fairbench's ConvNet layers (the reference's pooled by torch's ``nn.AvgPool2d``, as its own
``networks.py`` is) and DSA transforms, the same data and sizes, and run alternately in one
process, one thread count at a time; the ratio of the median iteration times is printed.

    python benchmarks/dm_vs_reference.py                       # CPU, 1 and 2 threads
    python benchmarks/dm_vs_reference.py --threads 2 --repeats 5
    python benchmarks/dm_vs_reference.py --compile --iterations 10   # fairbench with distill.compile

fairbench's ``iter_ms`` leaves out a tenth of each timed run's iterations (at most 5): with
``--compile``, the first iteration, which compiles, is left out from 10 iterations on.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fairbench.core.provenance import machine_fingerprint
from fairbench.distill import DistillContext, build_distiller, method_hparams
from fairbench.distill.base import synchronize
from fairbench.models import build_model
from fairbench.models.layers import AvgPool2x2
from fairbench.run.bench import synthetic_dataset
from fairbench.training.augment import DSA

MODES = {"dm": "vanilla", "dm+fairdd": "fairdd", "dm+cobra": "cobra"}


class ReferenceLoop:
    """The per-class loop of the reference's distillation step, state kept between iterations."""

    def __init__(self, train, ipc: int, hp: dict, make_net, device, mode: str):
        self.train, self.ipc, self.hp, self.make_net, self.device, self.mode = train, ipc, hp, make_net, device, mode
        self.by_class = [torch.nonzero(train.labels == c).flatten().cpu().numpy() for c in range(train.num_classes)]
        self.images = train.normalize(train.images)  # the reference holds the normalised set in memory
        first = np.concatenate([idx[:ipc] for idx in self.by_class])
        self.syn = self.images[torch.from_numpy(first).to(device)].clone().requires_grad_(True)
        self.syn_labels = torch.arange(train.num_classes, device=device).repeat_interleave(ipc)
        self.optimizer = torch.optim.SGD([self.syn], lr=hp["lr_img"], momentum=0.5)
        self.dsa = DSA(strategy=hp["dsa_strategy"])

    def real_batch(self, c: int):
        pick = torch.from_numpy(np.random.permutation(self.by_class[c])[: self.hp["real_batch"]]).to(self.device)
        return self.images[pick], self.train.groups[pick]

    def warm_start(self, net) -> None:
        """K epochs of plain SGD on the synthetic set, a shuffled loader of ``warmup_batch``."""
        optimizer = torch.optim.SGD(net.parameters(), lr=self.hp["warmup_lr"])
        images, labels = self.syn.detach().clone(), self.syn_labels.clone()
        for _ in range(self.hp["warmup_epochs"]):
            order = torch.randperm(len(images))
            for batch in order.split(self.hp["warmup_batch"]):
                x = self.dsa(images[batch])
                output = net(x)
                loss = F.cross_entropy(output, labels[batch])
                loss.item(), output.argmax(-1).cpu()  # the reference's running loss and accuracy
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

    def iteration(self) -> None:
        net = self.make_net().to(self.device)
        net.train()
        if self.mode == "cobra":
            self.warm_start(net)
        net.requires_grad_(False)
        zeros = torch.zeros(max(self.hp["real_batch"], self.ipc), dtype=torch.long, device=self.device)
        loss = torch.tensor(0.0, device=self.device)
        for c in range(self.train.num_classes):
            real, groups = self.real_batch(c)
            syn = self.syn[c * self.ipc : (c + 1) * self.ipc]
            params = self.dsa.sample(1, real.shape[-1], self.device)
            real = self.dsa.apply(real, params, zeros[: len(real)], [len(real)])
            syn = self.dsa.apply(syn, params, zeros[: self.ipc], [self.ipc])
            output_real, output_syn = net.embed(real).detach(), net.embed(syn)
            if self.mode == "vanilla":
                loss = loss + torch.sum((output_real.mean(0) - output_syn.mean(0)) ** 2)
            elif self.mode == "fairdd":
                for g in torch.unique(groups):
                    mask = groups == g
                    if mask.sum() == 0:
                        continue
                    loss = loss + torch.sum((output_real[mask].mean(0) - output_syn.mean(0)) ** 2)
            else:
                means = [net.embed(real[groups == g]).mean(0) for g in torch.unique(groups) if (groups == g).sum()]
                if means:
                    loss = loss + torch.sum((torch.stack(means).mean(0) - output_syn.mean(0)).abs())
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def time_ms(self, iterations: int) -> float:
        if iterations == 0:
            return float("nan")
        synchronize(self.device)
        start = time.perf_counter()
        for _ in range(iterations):
            self.iteration()
        synchronize(self.device)
        return 1000 * (time.perf_counter() - start) / iterations


def reference_net(image_size: int, width: int):
    """A builder of the reference's ConvNet (COBRA's ``networks.py``): fairbench's layers and
    initialisation, pooled by torch's own ``nn.AvgPool2d``, without fairbench's slice-sum path."""

    def build():
        net = build_model("convnet", 3, 10, image_size, width=width)
        for i, layer in enumerate(net.features):
            if isinstance(layer, AvgPool2x2):
                net.features[i] = nn.AvgPool2d(2)
        return net

    return build


def process_line(device: torch.device) -> str:
    """The machine and the allocator settings the figures depend on: the reference loop's speed
    moves most with them (docs/speed.md, "A second machine, and the allocator")."""
    allocator = " ".join(
        f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_") or k == "LD_PRELOAD"
    )
    return f"cpu={machine_fingerprint(device)['cpu']!r} allocator={allocator or 'default'}"


def fairbench_ms(method: str, train, ipc: int, hp: dict, make_net, device, iterations: int) -> float:
    distiller = build_distiller(method, {**hp, "iterations": iterations})
    distiller.distill(train, ipc, DistillContext(device=device, make_net=make_net))
    return distiller.stats.iter_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--methods", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--real-batch", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=1, help="iterations per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side, alternating")
    parser.add_argument(
        "--compile", action="store_true", help="fairbench with distill.compile=true (give --iterations 10 or more)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    np.random.seed(0)
    train = synthetic_dataset(10, args.groups, args.real_batch + 50, 32, device)

    def make_net():
        return build_model("convnet", 3, 10, 32, width=args.width)

    make_reference_net = reference_net(32, args.width)

    print(
        f"device={device} ipc={args.ipc} groups={args.groups} width={args.width} real_batch={args.real_batch}"
        f" compile={args.compile} iterations={args.iterations}"
    )
    print(process_line(device))
    print("| mode | threads | reference ms | fairbench ms | speed-up |")
    print("|---|---|---|---|---|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for method in args.methods:
            hp = {**method_hparams(method, "", args.ipc), "real_batch": args.real_batch, "compile": args.compile}
            reference = ReferenceLoop(train, args.ipc, hp, make_reference_net, device, MODES[method])
            fairbench_ms(method, train, args.ipc, hp, make_net, device, 1)  # warm-up
            reference.time_ms(1)
            ours, theirs = [], []
            for _ in range(args.repeats):
                ours.append(fairbench_ms(method, train, args.ipc, hp, make_net, device, args.iterations))
                theirs.append(reference.time_ms(args.iterations))
            ref_ms, our_ms = statistics.median(theirs), statistics.median(ours)
            print(f"| {method} | {threads} | {ref_ms:.0f} | {our_ms:.0f} | {ref_ms / our_ms:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
