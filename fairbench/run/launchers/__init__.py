"""Launchers: where a suite's cells run. The driver (``harness.run_suite``) hands a launcher the
cells still to compute and gets back each one's records as it finishes; only the driver writes.

- ``local`` (default): one after the other in this process, today's loop;
- ``ray``: one Ray task per cell, on an existing cluster (``ray.address=auto``) or on a local one
  started for the run, with ``ray.cpus_per_cell`` and ``ray.gpus_per_cell`` (fractions share a GPU);
- ``slurm``: one submitit job per cell, submitted as a job array; ``slurm.cluster=local`` runs the
  jobs as local processes through submitit. Each job writes its records to ``out/cells/``, which
  the driver merges, also after a restart.

Every launcher calls :func:`fairbench.run.cell.run_cell` and yields :class:`Finished` outcomes.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ...core.device import parse_device, wants_gpu
from ...core.errors import FairbenchError, unknown_choice
from ...core.paths import SOURCE_TREE
from ..settings import LAUNCHERS

if TYPE_CHECKING:
    from ..plan import Cell

EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Diverged|Exit)\b:? ")
EXTRAS = {"ray": ("ray", "ray"), "slurm": ("submitit", "slurm")}  # launcher -> (package, pip extra)


@dataclass
class Finished:
    """One cell's outcome: its records, or the error that stopped its task (then nothing is recorded
    and a rerun retries it)."""

    cell: Cell
    records: list[dict] | None
    error: str | None = None


def require(launcher: str):
    """The optional package ``launcher`` runs on, or a one-line error naming the extra to install."""
    package, extra = EXTRAS[launcher]
    try:
        return importlib.import_module(package)
    except ImportError:
        raise FairbenchError(
            f"launcher={launcher} needs the '{package}' package; install it with "
            f'pip install -e ".[{extra}]" (or pip install "fairbench[{extra}]")'
        ) from None


def get_launcher(name: str):
    """The launcher module ``name`` (its ``launch(cells, config, progress)`` generator), its
    package checked first so a missing extra fails before any compute."""
    if name not in LAUNCHERS:
        raise unknown_choice("launcher", name, LAUNCHERS)
    if name in EXTRAS:
        require(name)
    return importlib.import_module(f"{__name__}.{name}")


def worker_pythonpath() -> str:
    """PYTHONPATH for worker processes, so they import this very fairbench (a checkout on the
    driver's path, not another installed copy)."""
    here = str(SOURCE_TREE)
    return os.pathsep.join(dict.fromkeys(filter(None, [here, os.environ.get("PYTHONPATH")])))


def task_error(error: BaseException) -> str:
    """The line that says why a remote task failed: the last of its traceback (Ray and submitit
    wrap the worker's exception in a traceback whose first lines only name the task), without
    the class name of a fairbench error (its message is already the line a user reads)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    raised = [line for line in lines if EXCEPTION_LINE.match(line)]  # submitit appends its log paths
    line = (raised or lines or [type(error).__name__])[-1]
    return line.removeprefix(f"{FairbenchError.__module__}.{FairbenchError.__name__}: ")


def gpus_per_task(config: dict, chosen, on_this_machine: bool) -> float:
    """The GPUs each task asks its scheduler for: ``chosen`` when the run sets it, else one for a
    ``cuda*`` run, and for ``auto`` one too, unless the tasks run on this very machine (a local
    Ray cluster, ``slurm.cluster=local``) and it has no GPU. The driver never needs the GPU itself."""
    if chosen is not None:
        return chosen
    if parse_device(config["device"]) is None and on_this_machine:
        return 1 if torch.cuda.is_available() else 0
    return 1 if wants_gpu(config["device"]) else 0


def describe_resources(config: dict) -> str | None:
    """``--dry-run``'s line on what each task of a Ray or Slurm run asks for (None for local)."""
    launcher = config["launcher"]
    if launcher == "local":
        return None
    module = importlib.import_module(f"{__name__}.{launcher}")
    gpus, cpus = module.task_resources(config)
    unit = "task" if launcher == "ray" else "job"
    return (
        f"launcher={launcher}: each {unit} asks for {gpus:g} GPU{'s' if gpus != 1 else ''} and {cpus:g} CPUs; "
        f"device={config['device']} is checked where each cell runs"
    )
