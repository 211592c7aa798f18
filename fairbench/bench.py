"""``fairbench bench overhead``: what fairness costs per iteration, every variant against its base.

Everything runs in one process on one device, on a synthetic group-labelled dataset (timings do
not depend on image content), so the ratios compare like with like: for each IPC and group count,
each base and its variants are warmed up, then timed in turn, ``repeats`` times, and the median
iteration time is kept. MTT reads fake expert trajectories written to a temporary folder.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import torch

from .config import merge_settings, parse_overrides
from .data import GroupDataset
from .distill import DistillContext, build_distiller, method_hparams, method_ids, parse_method
from .distill.experts import missing_experts
from .errors import FairbenchError, unknown_choice
from .harness import resolve_device
from .models import build_model

BENCH_DEFAULTS: dict = {
    "device": "auto",
    "ipc": [10, 50],
    "groups": [2, 10],
    "methods": [m for m in method_ids() if "+" in m],   # each variant; its base is timed beside it
    "iterations": 3,       # timed iterations per run
    "warmup": 1,           # untimed iterations before each run
    "repeats": 3,          # runs per method; the median is kept
    "classes": 10,
    "per_class": 300,      # real images per class of the synthetic dataset
    "image_size": 32,
    "width": 128,          # ConvNet width (the protocol's)
    "distill": {},         # method hyperparameters, e.g. distill.real_batch=64 distill.outer_loop=2
}


def resolve_bench_config(args: list[str]) -> dict:
    suite, dotlist = parse_overrides(args)
    if suite != "quickstart":
        raise FairbenchError("bench overhead takes no suite=; it times every variant on synthetic data")
    config = merge_settings(BENCH_DEFAULTS, dotlist=dotlist)
    unknown = set(config) - set(BENCH_DEFAULTS)
    if unknown:
        raise unknown_choice("bench setting", sorted(unknown)[0], BENCH_DEFAULTS)
    for key in ("ipc", "groups", "methods"):
        if not isinstance(config[key], list):
            config[key] = [config[key]]
    for method in config["methods"]:
        parse_method(method)
    return config


def synthetic_dataset(classes: int, groups: int, per_class: int, size: int, device) -> GroupDataset:
    """Random images where 90% of class c is in group c mod G, the rest spread over the others."""
    labels = torch.arange(classes).repeat_interleave(per_class)
    majority = labels % groups
    minority = (majority + 1 + torch.randint(max(groups - 1, 1), labels.shape)) % groups
    group = torch.where(torch.rand(labels.shape) < 0.9, majority, minority)
    images = torch.randint(0, 256, (len(labels), 3, size, size), dtype=torch.uint8)
    return GroupDataset(images, labels, group, [str(c) for c in range(classes)], [str(g) for g in range(groups)],
                        (0.5,) * 3, (0.5,) * 3).to(device)


def _fake_experts(distiller, train: GroupDataset, ctx: DistillContext) -> None:
    """Random-walk trajectories where MTT looks for its experts (their values do not matter here)."""
    hp = distiller.hparams
    folder = distiller.expert_folder(train, ctx)
    folder.mkdir(parents=True, exist_ok=True)
    start = torch.nn.utils.parameters_to_vector(ctx.make_net().parameters()).detach()
    for path in missing_experts(folder, hp["num_experts"]):
        steps = 1e-3 * torch.randn(hp["trajectory_epochs"], len(start))
        torch.save(torch.cat([start.unsqueeze(0), start + steps.cumsum(0)]), path)


def _time(method: str, train: GroupDataset, ipc: int, ctx: DistillContext, config: dict) -> tuple[float, float]:
    """(iteration ms, target-building ms) of ``warmup`` untimed then ``iterations`` timed iterations."""
    hparams = method_hparams(method, "", ipc, {**config["distill"], "iterations": config["warmup"]})
    warm = build_distiller(method, hparams)
    if parse_method(method)[0] == "mtt":
        _fake_experts(warm, train, ctx)
    if config["warmup"]:
        warm.distill(train, ipc, ctx)
    timed = build_distiller(method, {**hparams, "iterations": config["iterations"]})
    timed.distill(train, ipc, ctx)
    return timed.stats.iter_ms, timed.stats.target_ms


def overhead_rows(config: dict, log=lambda msg: None) -> list[dict]:
    device = resolve_device(config["device"])
    bases: dict[str, list[str]] = {}
    for method in config["methods"]:
        base, _ = parse_method(method)
        bases.setdefault(base, [base])
        if method != base:
            bases[base].append(method)
    # enough real images per class for every method's initialisation (IDC starts from factor² per image)
    factor = max(method_hparams(m, "", 0, config["distill"]).get("factor", 1) for m in config["methods"])
    per_class = max(config["per_class"], max(config["ipc"]) * factor ** 2)
    rows = []
    with tempfile.TemporaryDirectory() as experts_dir:
        for groups in config["groups"]:
            torch.manual_seed(0)
            train = synthetic_dataset(config["classes"], groups, per_class, config["image_size"], device)
            spec = {"width": config["width"], "depth": 3, "norm": "instance"}
            ctx = DistillContext(device=device, experts_dir=Path(experts_dir),
                                 make_net=lambda: build_model("convnet", 3, config["classes"], config["image_size"],
                                                              **spec),
                                 provenance={"dataset": f"bench-g{groups}", "net": spec})
            for ipc in config["ipc"]:
                for base, methods in bases.items():
                    log(f"bench: ipc={ipc} groups={groups} {', '.join(methods)}")
                    times = {m: [] for m in methods}
                    for _ in range(config["repeats"]):
                        for method in methods:
                            times[method].append(_time(method, train, ipc, ctx, config))
                    base_ms = statistics.median(t for t, _ in times[base])
                    for method in methods:
                        iter_ms = statistics.median(t for t, _ in times[method])
                        target_ms = statistics.median(t for _, t in times[method])
                        rows.append({"ipc": ipc, "groups": groups, "method": method, "iter_ms": iter_ms,
                                     "target_ms": target_ms, "overhead": iter_ms / base_ms,
                                     "device": str(device)})
                        log(f"bench: {method:12s} {iter_ms:10.1f} ms/iter  target {target_ms:9.1f} ms  "
                            f"overhead {iter_ms / base_ms:5.2f}")
    return rows
