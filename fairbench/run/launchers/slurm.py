"""``launcher=slurm``: one submitit job per cell, submitted as one job array.

Each job runs :func:`fairbench.run.cell.run_cell` and writes its records to ``out/cells/<key>.jsonl``
(atomically); the driver polls the jobs, appends each file's records to results.jsonl and deletes
the file. A driver that is killed loses nothing: jobs still running finish and leave their files,
which the next run into the same ``out`` merges before it decides what is left to compute.
Submitit's own logs and pickles go to ``out/slurm/``. ``slurm.cluster=local`` runs the same jobs as
local processes through submitit, on a machine without Slurm.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ...core.atomic import write_text_atomic
from ...core.errors import FairbenchError
from ...core.progress import CellProgress
from ...core.protocol import digest
from ..cell import cell_id, run_cell
from ..outdir import CELLS_DIR
from ..plan import Cell
from ..results import load_records
from . import Finished, gpus_per_task, require, task_error, worker_pythonpath

POLL_S = 0.5


def cell_file(cell: Cell, config: dict) -> Path:
    return Path(config["out"]) / CELLS_DIR / f"{digest([cell_id(cell, s, config) for s in cell.evaluators])}.jsonl"


def run_cell_to_file(cell: Cell, config: dict) -> str:
    """A job's body: the cell's records, written whole to its cell file, whose path it returns."""
    import json

    path = cell_file(cell, config)
    write_text_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in run_cell(cell, config)))
    return str(path)


def task_resources(config: dict) -> tuple[float, float]:
    """(GPUs, CPUs) of each job; ``slurm.cluster=local`` runs the jobs on this machine."""
    settings = config["slurm"]
    gpus = gpus_per_task(config, settings["gpus_per_node"], on_this_machine=settings["cluster"] == "local")
    return gpus, settings["cpus_per_task"]


def _executor(submitit, config: dict):
    settings = config["slurm"]
    cluster = settings["cluster"] or "slurm"
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise FairbenchError(
            "launcher=slurm finds no Slurm here (no sbatch on PATH); slurm.cluster=local runs "
            "the same jobs as local processes"
        )
    executor = submitit.AutoExecutor(folder=Path(config["out"]) / "slurm", cluster=cluster)
    gpus, _ = task_resources(config)
    parameters = {
        "name": "fairbench",
        "timeout_min": int(settings["time"]),
        "gpus_per_node": gpus,
        "cpus_per_task": settings["cpus_per_task"],
        "slurm_array_parallelism": settings["array_parallelism"],
    }
    if settings["mem_gb"] is not None:
        parameters["mem_gb"] = settings["mem_gb"]
    if settings["partition"]:
        parameters["slurm_partition"] = settings["partition"]
    if settings["account"]:
        parameters["slurm_account"] = settings["account"]
    executor.update_parameters(**parameters)
    return executor


@contextmanager
def _worker_path() -> Iterator[None]:
    """Jobs inherit the driver's environment: give them a PYTHONPATH that finds this fairbench."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = worker_pythonpath()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def launch(cells: list[Cell], config: dict, progress: CellProgress) -> Iterator[Finished]:
    submitit = require("slurm")
    executor = _executor(submitit, config)
    with _worker_path():
        jobs = executor.map_array(run_cell_to_file, cells, [config] * len(cells))
    pending = dict(zip(jobs, cells))
    try:
        while pending:
            finished = [job for job in pending if job.done()]
            if not finished:
                progress.set_running(sum(job.state == "RUNNING" for job in pending))
                time.sleep(POLL_S)
                continue
            for job in finished:
                cell = pending.pop(job)
                error = job.exception()
                if error is not None:
                    yield Finished(cell, None, task_error(error))
                    continue
                path = Path(job.result())
                yield Finished(cell, load_records(path))
                path.unlink(missing_ok=True)  # its records are in results.jsonl now
    finally:
        for job in pending:
            job.cancel(check=False)
