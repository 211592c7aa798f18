"""``fairbench bench overhead``: what fairness costs per iteration, every variant against its base.

Everything runs in one process on one device, on a synthetic group-labelled dataset (timings do
not depend on image content), so the ratios compare like with like: for each IPC and group count,
each base and its variants are warmed up, then timed in turn, ``repeats`` times, and the median
iteration time is kept. A base with a preparation step (MTT's experts) prepares stand-ins whose
values do not matter, in a temporary folder.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import torch

from ..core.device import check_device, resolve_device
from ..core.errors import FairbenchError
from ..core.overrides import coerce_like
from ..data import GroupDataset
from ..distill import DistillContext, build_distiller, method_hparams, method_ids, parse_method
from ..models import build_model
from .config import command_settings

# Every setting: (default, smallest valid value or None, what it sets). ``bench --help`` prints it.
BENCH_SETTINGS: dict[str, tuple[object, int | None, str]] = {
    "device": ("auto", None, "auto, cpu, cuda, cuda:N or mps"),
    "ipc": ([10, 50], 1, "images per class"),
    "groups": ([2, 10], 1, "groups of the synthetic dataset"),
    "methods": (None, None, "variant ids to time, each beside its base (default: every base+variant)"),
    "iterations": (3, 1, "timed iterations per run"),
    "warmup": (1, 0, "untimed iterations before each run"),
    "repeats": (3, 1, "runs per method; the median is kept"),
    "classes": (10, 1, "classes of the synthetic dataset"),
    "per_class": (300, 1, "real images per class of the synthetic dataset"),
    "image_size": (32, 8, "image side in pixels"),
    "width": (128, 1, "ConvNet width (the protocol's 128)"),
    "plugins": ([], None, "plugin modules or .py files to import"),
    "include_path": ([], None, "extra folders holding registry/ and suites/ folders"),
    "distill": ({}, None, "method hyperparameters, e.g. distill.real_batch=64 distill.outer_loop=2"),
}
BENCH_DEFAULTS: dict = {key: default for key, (default, _, _) in BENCH_SETTINGS.items()}


def _checked(key: str, value, default, minimum):
    """One setting in the type of its default, and at least ``minimum``."""
    items = value if isinstance(default, list) else [value]
    if isinstance(default, list) and not items:
        raise FairbenchError(f"{key} must not be empty")
    checked = [
        coerce_like(f"bench setting {key}", v, default[0] if isinstance(default, list) else default) for v in items
    ]
    if minimum is not None:
        for v in checked:
            if v < minimum:
                raise FairbenchError(f"bench setting {key}={v} is invalid; it must be at least {minimum}")
    if isinstance(default, list) and len(set(map(str, checked))) < len(checked):
        raise FairbenchError(f"bench setting {key} lists a value more than once")
    return checked if isinstance(default, list) else checked[0]


def resolve_bench_config(args: list[str]) -> dict:
    config = command_settings("bench", args, BENCH_DEFAULTS, why_no_suite="it times every variant on synthetic data")
    if config["methods"] is None:
        config["methods"] = [m for m in method_ids() if "+" in m]  # each variant; its base is timed beside it
    for key, (default, minimum, _) in BENCH_SETTINGS.items():
        if key in ("methods", "distill", "device", "plugins", "include_path"):  # checked where used
            continue
        config[key] = _checked(key, config[key], default, minimum)
    if not isinstance(config["methods"], list):
        config["methods"] = [config["methods"]]
    for method in config["methods"]:
        parse_method(method)
    if not isinstance(config["distill"], dict):
        raise FairbenchError(f"distill takes key=value settings (distill.KEY=VALUE), got {config['distill']!r}")
    if not isinstance(config["device"], str):
        raise FairbenchError(f"device must be a string, got {config['device']!r}")
    check_device(config["device"])
    return config


def synthetic_dataset(classes: int, groups: int, per_class: int, size: int, device) -> GroupDataset:
    """Random images where 90% of class c is in group c mod G, the rest spread over the others."""
    labels = torch.arange(classes).repeat_interleave(per_class)
    majority = labels % groups
    minority = (majority + 1 + torch.randint(max(groups - 1, 1), labels.shape)) % groups
    group = torch.where(torch.rand(labels.shape) < 0.9, majority, minority)
    images = torch.randint(0, 256, (len(labels), 3, size, size), dtype=torch.uint8)
    return GroupDataset(
        images, labels, group, [str(c) for c in range(classes)], [str(g) for g in range(groups)], (0.5,) * 3, (0.5,) * 3
    ).to(device)


def _time(method: str, train: GroupDataset, ipc: int, ctx: DistillContext, config: dict) -> tuple[float, float]:
    """(iteration ms, target-building ms) of ``warmup`` untimed then ``iterations`` timed iterations."""
    hparams = method_hparams(method, "", ipc, {**config["distill"], "iterations": config["warmup"]})
    warm = build_distiller(method, hparams)
    warm.prepare(train, ctx, stand_in=True)
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
    per_class = max(config["per_class"], max(config["ipc"]) * factor**2)
    rows = []
    with tempfile.TemporaryDirectory() as experts_dir:
        for groups in config["groups"]:
            torch.manual_seed(0)
            train = synthetic_dataset(config["classes"], groups, per_class, config["image_size"], device)
            spec = {"width": config["width"], "depth": 3, "norm": "instance"}
            ctx = DistillContext(
                device=device,
                experts_dir=Path(experts_dir),
                make_net=lambda spec=spec: build_model("convnet", 3, config["classes"], config["image_size"], **spec),
                provenance={"dataset": f"bench-g{groups}", "net": spec},
            )
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
                        rows.append(
                            {
                                "ipc": ipc,
                                "groups": groups,
                                "method": method,
                                "iter_ms": iter_ms,
                                "target_ms": target_ms,
                                "overhead": iter_ms / base_ms,
                                "device": str(device),
                            }
                        )
                        log(
                            f"bench: {method:12s} {iter_ms:10.1f} ms/iter  target {target_ms:9.1f} ms  "
                            f"overhead {iter_ms / base_ms:5.2f}"
                        )
    return rows
