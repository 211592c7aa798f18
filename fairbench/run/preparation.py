"""Preparation steps: what a base needs made before its cells can run (MTT's expert trajectories).

A base implements :meth:`fairbench.Distiller.prepare`; ``fairbench prepare`` (alias ``experts``)
runs it once for every cell of a run, before the run. Cells that need the same thing share it: a
base caches what it makes where every such cell finds it (MTT: a folder named by the digest of
everything that shapes the trajectories), so a second call makes nothing.
"""

from __future__ import annotations

from pathlib import Path

import torch
from filelock import FileLock

from ..core.device import configure_backends, resolve_device, total_memory
from ..core.progress import progress
from ..data import load_dataset
from ..distill import BASES, DistillContext, Distiller, build_distiller, parse_method
from ..evaluation.evaluate import make_model
from .plan import Cell, make_plan

PREPARE_LOCK = ".prepare.lock"


def cell_context(cell: Cell, train, device: torch.device, config: dict) -> DistillContext:
    """The context a cell's distiller (and its preparation) runs in: the same for both, so what
    ``prepare`` caches is what ``distill`` looks up."""
    net_spec = cell.net
    return DistillContext(
        device=device,
        make_net=(lambda: make_model(net_spec, train.image_shape, train.num_classes)) if net_spec else None,
        progress=progress,
        experts_dir=Path(config["experts_dir"]),
        provenance={"dataset": cell.dataset, "dataset_params": cell.dataset_params, "net": net_spec},
    )


def has_prepare(method_id: str) -> bool:
    """Whether the method's base implements a preparation step."""
    return BASES.get(parse_method(method_id)[0]).prepare is not Distiller.prepare


def check_cell_memory(cell: Cell, train, device: torch.device, memory: int | None = None) -> None:
    """Refuse, before any compute, a cell whose distillation step cannot fit the device's memory
    (``memory`` bytes; by default the device's own), naming the setting that would make it fit."""
    memory = total_memory(device) if memory is None else memory
    if memory is None or not cell.net:
        return
    net_spec = cell.net
    build_distiller(cell.method, cell.hparams).check_memory(
        cell.ipc,
        train.image_shape,
        train.num_classes,
        lambda: make_model(net_spec, train.image_shape, train.num_classes),
        memory,
    )


def prepare_cell(cell: Cell, train, device: torch.device, config: dict) -> str | None:
    """One cell's preparation step where the cell runs (a Ray task, a Slurm job), under a lock in
    ``experts_dir`` so that cells sharing what it makes wait for one maker instead of all making it."""
    if not has_prepare(cell.method):
        return None
    folder = Path(config["experts_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / PREPARE_LOCK)):
        return build_distiller(cell.method, cell.hparams).prepare(
            train, cell_context(cell, train, device, config), progress=progress
        )


def prepare_cells(
    cells: list[Cell], trains: dict, device: torch.device, config: dict, log=lambda msg: None
) -> list[str]:
    """Run the preparation step of every cell whose base has one, ``trains`` holding each dataset's
    train split; one line per distinct thing made or found."""
    done, on_device = [], {}
    for cell in (c for c in cells if has_prepare(c.method)):
        if cell.dataset not in on_device:
            on_device[cell.dataset] = trains[cell.dataset].to(device)
        train = on_device[cell.dataset]
        log(f"fairbench: preparing {cell.method} on {cell.dataset}")
        line = build_distiller(cell.method, cell.hparams).prepare(
            train, cell_context(cell, train, device, config), progress=progress
        )
        if line and line not in done:
            done.append(line)
    return done


def prepare_run(config: dict, log=lambda msg: None) -> list[str]:
    """``fairbench prepare``: the preparation steps of every cell of ``config``."""
    cells = [c for c in make_plan(config) if has_prepare(c.method)]
    trains = {
        c.dataset: load_dataset(c.dataset, config["data_root"], c.dataset_params, download=config["download"]).train
        for c in cells
    }
    device = resolve_device(config["device"])
    configure_backends(device)
    return prepare_cells(cells, trains, device, config, log)


def check_cells_ready(cells: list[Cell], trains: dict, device: torch.device, config: dict) -> None:
    """Fail before anything runs when a cell needs something the run did not make."""
    for cell in cells:
        train = trains[cell.dataset]
        build_distiller(cell.method, cell.hparams).check_ready(train, cell_context(cell, train, device, config))
