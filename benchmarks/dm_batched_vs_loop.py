"""fairbench's DM iteration against a plain per-class loop like the reference code's, side by side.

The loop does what the public DM/FairDD code does each iteration: a fresh network, then for each
class its own real batch, its own DSA draw, its own forward passes, and (FairDD) each group's mean
by masking with the groups found in the batch. fairbench draws all classes at once, runs one
forward pass for all real images and one for all synthetic ones, and builds every group statistic
with index_add_. Same network, same data, same device, same DSA transforms; the two are timed
alternately after a warm-up, and the ratio of their median iteration times is printed.

    python benchmarks/dm_batched_vs_loop.py                 # CPU, protocol sizes
    python benchmarks/dm_batched_vs_loop.py --device cuda   # target: fairbench >= 2x faster on GPU
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fairbench.distill import DistillContext, build_distiller, method_hparams
from fairbench.distill.base import synchronize
from fairbench.distill.dm import warm_start
from fairbench.models import build_model
from fairbench.run.bench import synthetic_dataset
from fairbench.training.augment import DSA


def reference_loop(
    train, ipc: int, hp: dict, make_net, device, iterations: int, variant: str = "vanilla", warmup: int = 0
) -> float:
    """Milliseconds per iteration of the per-class loop, after ``warmup`` untimed iterations.

    ``variant``: ``vanilla`` (DM: the class's mean embedding), ``fairdd`` (each group's mean
    matched, the terms summed) or ``cobra`` (the uniform mean of the group means, COBRA's L1
    distance, the step's network warm-started on the synthetic set first, as COBRA's code does).
    """
    num_classes = train.num_classes
    by_class = [torch.nonzero(train.labels == c).flatten().cpu() for c in range(num_classes)]
    syn = torch.cat([train.normalize(train.images[idx[:ipc].to(device)]) for idx in by_class]).requires_grad_(True)
    syn_labels = torch.arange(num_classes, device=device).repeat_interleave(ipc)
    optimizer = torch.optim.SGD([syn], lr=hp["lr_img"], momentum=hp["momentum"])
    dsa = DSA(strategy=hp["dsa_strategy"])
    distance = (lambda d: d.abs().sum()) if hp.get("distance") == "l1" else (lambda d: d.pow(2).sum())
    start = None
    for it in range(warmup + iterations):
        if it == warmup:
            synchronize(device)
            start = time.perf_counter()
        net = make_net().to(device)
        if variant == "cobra" and hp.get("warmup_epochs"):
            warm_start(net, syn.detach(), syn_labels, hp, dsa)
        net.requires_grad_(False)
        loss = torch.zeros((), device=device)
        for c in range(num_classes):
            pick = by_class[c][torch.randperm(len(by_class[c]))[: hp["real_batch"]]].to(device)
            real, groups = train.normalize(train.images[pick]), train.groups[pick]
            syn_c = syn[c * ipc : (c + 1) * ipc]
            params = dsa.sample(1, real.shape[-1], device)
            real = dsa.apply(real, params, torch.zeros(len(real), dtype=torch.long, device=device))
            syn_c = dsa.apply(syn_c, params, torch.zeros(ipc, dtype=torch.long, device=device))
            real_embed, syn_mean = net.embed(real).detach(), net.embed(syn_c).mean(0)
            if variant == "fairdd":
                for g in torch.unique(groups):
                    loss = loss + distance(real_embed[groups == g].mean(0) - syn_mean)
            elif variant == "cobra":
                means = torch.stack([real_embed[groups == g].mean(0) for g in torch.unique(groups)])
                loss = loss + distance(means.mean(0) - syn_mean)
            else:
                loss = loss + distance(real_embed.mean(0) - syn_mean)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    synchronize(device)
    return 1000 * (time.perf_counter() - start) / iterations


def fairbench_dm(method: str, train, ipc: int, hp: dict, make_net, device, iterations: int) -> float:
    distiller = build_distiller(method, {**hp, "iterations": iterations})
    distiller.distill(train, ipc, DistillContext(device=device, make_net=make_net))
    return distiller.stats.iter_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--real-batch", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    train = synthetic_dataset(10, args.groups, max(args.real_batch, args.ipc) + 50, 32, device)

    def make_net():
        return build_model("convnet", 3, 10, 32, width=args.width)

    print(f"device={device} ipc={args.ipc} groups={args.groups} width={args.width} real_batch={args.real_batch}")
    for method in ("dm", "dm+fairdd"):
        hp = {**method_hparams(method, "", args.ipc), "real_batch": args.real_batch}
        variant = "fairdd" if method == "dm+fairdd" else "vanilla"
        fairbench_dm(method, train, args.ipc, hp, make_net, device, 1)  # warm-up
        reference_loop(train, args.ipc, hp, make_net, device, 1, variant)
        ours, loop = [], []
        for _ in range(args.repeats):
            ours.append(fairbench_dm(method, train, args.ipc, hp, make_net, device, args.iterations))
            loop.append(reference_loop(train, args.ipc, hp, make_net, device, args.iterations, variant))
        ours_ms, loop_ms = statistics.median(ours), statistics.median(loop)
        print(
            f"{method:10s} fairbench {ours_ms:9.1f} ms/iter   per-class loop {loop_ms:9.1f} ms/iter   "
            f"speed-up {loop_ms / ours_ms:5.2f}x"
        )


if __name__ == "__main__":
    main()
