"""One cell of a plan, run start to finish: the single function every launcher calls.

``run_cell(cell, config)`` distills the cell's synthetic set (or reads back the one an earlier run
made), evaluates it with each of the cell's evaluators and returns one record per evaluator. It
appends nothing: the driver, the one process holding the out folder's lock, writes the records,
so Ray tasks and Slurm jobs never race on results.jsonl. Its one side effect is the cell's
content-addressed synthetic set in ``out/synsets`` (written atomically; two writers of one set
write the same bytes). It takes and returns plain picklable values, so a Ray task or a Slurm job
runs it as it is, and everything it reads comes from its arguments: ``config`` carries absolute
paths (``out``, ``data_root``, ``experts_dir``), so a worker's own working folder does not matter.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import torch

from ..core.device import configure_backends, resolve_device, task_device
from ..core.errors import DistillationDiverged, first_line
from ..core.progress import progress
from ..core.protocol import digest, protocol_id, protocol_of
from ..core.provenance import device_label, git_commit, machine_fingerprint
from ..core.version import __version__
from ..data import DatasetSplits, GroupDataset, load_dataset
from ..distill import SyntheticSet, build_distiller
from ..distill.provenance import method_provenance
from ..distill.synsets import SUFFIX, SynsetUnreadable, load_synset, save_synset
from ..evaluation.evaluate import evaluate_synthetic
from ..evaluation.metrics import group_acc_runs, summarize_runs
from .plan import Cell, resolved_config
from .preparation import cell_context, check_cell_memory, prepare_cell

log = logging.getLogger(__name__)


def cell_id(cell: Cell, spec: dict, config: dict) -> str:
    return digest(resolved_config(cell, spec, config))


@lru_cache(maxsize=4)
def _splits(name: str, params_json: str, data_root: str, download: bool) -> DatasetSplits:
    """A dataset's splits, loaded once per process (a worker running many cells reads them once)."""
    return load_dataset(name, data_root, json.loads(params_json), download=download)


def _split_key(cell: Cell, config: dict) -> tuple:
    return cell.dataset, json.dumps(cell.dataset_params, sort_keys=True), str(config["data_root"]), config["download"]


def splits_for(cell: Cell, config: dict) -> DatasetSplits:
    return _splits(*_split_key(cell, config))


@lru_cache(maxsize=2)
def _train_on(device: str, *key) -> GroupDataset:
    return _splits(*key).train.to(device)


def train_on_device(cell: Cell, config: dict, device: torch.device) -> GroupDataset:
    """The cell's train split on ``device``: one copy per process and dataset, shared by every
    cell (and preparation step) the process runs, not one copy per cell."""
    return _train_on(str(device), *_split_key(cell, config))


def is_remote(config: dict) -> bool:
    """Whether this cell runs as a Ray task or a Slurm job, on a machine the driver did not check."""
    return config.get("launcher", "local") != "local"


def _distill_key(cell: Cell) -> dict:
    return {
        "dataset": cell.dataset,
        "dataset_params": cell.dataset_params,
        "method": cell.method,
        "hparams": cell.hparams,
        "net": cell.net,
        "ipc": cell.ipc,
        "seed": cell.seed,
    }


def _reuse(path: Path, device: torch.device) -> tuple[SyntheticSet, dict] | None:
    """The set an earlier run left at ``path``, or None when there is none or it cannot be read
    (then it is set aside as ``*.corrupt``, named in a warning, and made again)."""
    if not path.is_file():
        return None
    try:
        syn, metadata = load_synset(path)
    except SynsetUnreadable as error:
        aside = path.with_name(path.name + ".corrupt")
        path.replace(aside)
        log.warning("fairbench: warning: %s; set aside as %s and distilled again", error, aside.name)
        return None
    stats = metadata["stats"]
    if metadata.get("timing_device") != device_label(device):
        stats = {key: None for key in stats}
    return syn, {**stats, "timing_device": metadata.get("timing_device"), "distill_reused": True}


def _distill(cell: Cell, splits: DatasetSplits, device: torch.device, config: dict) -> tuple[SyntheticSet, dict, str]:
    """The cell's synthetic set, its timing stats and its file (relative to ``out``).

    A set an earlier run made is read back from ``out/synsets``; its timings are kept only when
    this run's device is the one that measured them, so no record claims another device's speed.
    """
    relative = f"synsets/{digest(_distill_key(cell))}{SUFFIX}"
    path = Path(config["out"]) / relative
    reused = _reuse(path, device)
    if reused:
        return (*reused, relative)
    here = device_label(device)
    torch.manual_seed(cell.seed)
    train = train_on_device(cell, config, device)
    distiller = build_distiller(cell.method, cell.hparams)
    syn = distiller.distill(train, cell.ipc, cell_context(cell, train, device, config)).cpu()
    stats = distiller.stats.as_record()
    save_synset(
        path,
        syn,
        {
            "dataset": cell.dataset,
            "ipc": cell.ipc,
            "method": cell.method,
            "seed": cell.seed,
            "key": _distill_key(cell),
            "stats": stats,
            "timing_device": here,
        },
    )
    return syn, {**stats, "timing_device": here, "distill_reused": False}, relative


def _record(cell: Cell, spec: dict, device: torch.device, config: dict, **outcome) -> dict:
    resolved = resolved_config(cell, spec, config)
    return {
        "cell_id": digest(resolved),
        "dataset": cell.dataset,
        "method": cell.method,
        "ipc": cell.ipc,
        "seed": cell.seed,
        "evaluator": spec["name"],
        "config": resolved,
        "protocol_id": protocol_id(resolved),
        "protocol": protocol_of(resolved),
        "provenance": method_provenance(cell.method),
        **({"sweep": cell.sweep} if cell.sweep else {}),
        # the run config as the user gave it (the driver's cells carry absolute paths)
        "run_config": config.get("run_config") or {k: v for k, v in config.items() if k != "out"},
        **outcome,
        "device": device_label(device),
        "fingerprint": machine_fingerprint(device),
        "fairbench_version": __version__,
        "torch_version": torch.__version__,
        "git_commit": git_commit(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class CellTimedOut(Exception):
    """A cell ran past ``cell_timeout``: that cell fails, the suite goes on."""


@contextmanager
def _time_limit(seconds: float | None):
    """Raise :class:`CellTimedOut` in this thread after ``seconds`` (SIGALRM; only the main thread
    of a POSIX process can take it, where every launcher runs its cells)."""
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise CellTimedOut(f"timed out: cell_timeout={seconds} s ran out")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _failure_log(cell: Cell, config: dict, error: BaseException) -> str:
    """Write the traceback of a plugin's failure to ``out/logs/``; the reason names the file."""
    folder = Path(config["out"]) / "logs"
    path = folder / f"{digest(_distill_key(cell))}.traceback.txt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{cell.label}\n" + "".join(traceback.format_exception(error)))
    except OSError:
        return f"{type(error).__name__}: {first_line(error)}"
    return f"{type(error).__name__}: {first_line(error)} (traceback in {path})"


def run_cell(cell: Cell, config: dict) -> list[dict]:
    """The records of ``cell``: one per evaluator in ``cell.evaluators`` (the driver leaves only
    the evaluators still to run). A diverging distillation, a plugin's method that raises, and a
    cell that runs past ``cell_timeout`` give ``status: failed`` records with the reason (a
    plugin's traceback goes to ``out/logs/``); a built-in method's exception is a bug and stays one.

    As a Ray task or a Slurm job it checks its device itself (a worker without its GPU fails
    with one line, before any compute), checks the cell fits the device's memory and makes what
    its base prepares (MTT's experts) there, on the worker's GPU."""
    device = task_device(config["device"]) if is_remote(config) else resolve_device(config["device"])
    configure_backends(device)
    splits = splits_for(cell, config)
    if is_remote(config):
        check_cell_memory(cell, splits.train, device)
        prepare_cell(cell, train_on_device(cell, config, device), device, config)
    try:
        with _time_limit(config.get("cell_timeout")):
            return _run_cell(cell, config, device, splits)
    except (DistillationDiverged, CellTimedOut) as error:
        reason = str(error)
    except Exception as error:
        if method_provenance(cell.method)["source"] != "plugin":
            raise
        reason = _failure_log(cell, config, error)
    return [_record(cell, spec, device, config, status="failed", reason=reason) for spec in cell.evaluators]


def _run_cell(cell: Cell, config: dict, device: torch.device, splits: DatasetSplits) -> list[dict]:
    syn, stats, synset = _distill(cell, splits, device, config)
    # what the distiller saw of the groups, where it is not the truth (group_noise, group_known)
    seen = {"distiller_groups": splits.distiller_groups} if splits.distiller_groups else {}
    records = []
    for spec in cell.evaluators:
        eval_seeds = [1000 * cell.seed + j for j in range(config["num_eval"])]
        start = time.perf_counter()
        evaluation = evaluate_synthetic(
            syn, splits.test, spec, eval_seeds, device, progress=progress, ensemble=config["ensemble"]
        )
        records.append(
            _record(
                cell,
                spec,
                device,
                config,
                status="ok",
                eval_seeds=eval_seeds,
                metrics=summarize_runs(evaluation.runs),
                group_acc=group_acc_runs(evaluation.runs, splits.test.group_names),
                **stats,
                synset=synset,
                eval_s=time.perf_counter() - start,
                eval_path=evaluation.path,
                eval_path_reason=evaluation.reason,
                **seen,
            )
        )
    return records
