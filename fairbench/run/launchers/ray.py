"""``launcher=ray``: one Ray task per cell; the driver appends each task's records as it finishes.

On an existing cluster (``ray.address=auto`` or ``ray://...``) the workers must have this
fairbench installed and see the same ``data_root``; without an address a local cluster is started
for the run (``ray.num_cpus`` CPUs) and its workers import the driver's fairbench. A task asks for
``ray.cpus_per_cell`` CPUs (Ray gives it as many torch threads; by default, on a CPU run, as
many as the local loop uses, so the metrics are the same bit for bit) and ``ray.gpus_per_cell`` GPUs, a
fraction letting several small cells share one GPU. A task that fails (its worker died, the node
was lost) is reported and not recorded, so the next run into the same ``out`` retries it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator

import torch

from ...core.progress import CellProgress
from ..cell import run_cell
from ..plan import Cell
from . import Finished, gpus_per_task, require, task_error, worker_pythonpath


def gpus_per_cell(config: dict) -> float:
    """A local cluster (no ``ray.address``) is this machine: ``auto`` asks for its GPU if it has one."""
    return gpus_per_task(config, config["ray"]["gpus_per_cell"], on_this_machine=not config["ray"]["address"])


def cpus_per_cell(config: dict) -> float:
    """A CPU cell's float sums depend on its thread count: by default a task gets as many CPUs (so
    threads) as the local loop uses, and its metrics match the local loop's bit for bit."""
    chosen = config["ray"]["cpus_per_cell"]
    if chosen is not None:
        return chosen
    return torch.get_num_threads() if not gpus_per_cell(config) else 1


def task_resources(config: dict) -> tuple[float, float]:
    """(GPUs, CPUs) of each task."""
    return gpus_per_cell(config), cpus_per_cell(config)


def _start(ray, settings: dict) -> bool:
    """Connect to (or start) the cluster; True when this run must shut it down afterwards."""
    if ray.is_initialized():
        return False
    options = {"include_dashboard": False, "logging_level": logging.WARNING}
    sigterm = signal.getsignal(signal.SIGTERM)
    if settings["address"]:
        ray.init(address=settings["address"], **options)
    else:
        ray.init(
            num_cpus=settings["num_cpus"], runtime_env={"env_vars": {"PYTHONPATH": worker_pythonpath()}}, **options
        )
    if sigterm is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, sigterm)  # ray.init's handler exits at once: keep the resume message
    return True


def _slots(ray, cpus: float, gpus: float) -> int:
    """How many cells the cluster runs at once (for the progress line's running count)."""
    resources = ray.cluster_resources()
    slots = [resources.get("CPU", 1) // cpus]
    if gpus:
        slots.append(resources.get("GPU", 0) // gpus)
    return max(1, int(min(slots)))


def launch(cells: list[Cell], config: dict, progress: CellProgress) -> Iterator[Finished]:
    ray = require("ray")
    settings = config["ray"]
    started = _start(ray, settings)
    cpus, gpus = cpus_per_cell(config), gpus_per_cell(config)
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(run_cell)
    shared = ray.put(config)
    pending = {task.remote(cell, shared): cell for cell in cells}
    slots = _slots(ray, cpus, gpus)
    try:
        while pending:
            progress.set_running(min(slots, len(pending)))
            ready, _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(ready[0])
            try:
                yield Finished(cell, ray.get(ready[0]))
            except ray.exceptions.RayError as error:
                yield Finished(cell, None, task_error(error))
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
