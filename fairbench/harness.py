"""Running a plan: distill each cell once, evaluate it with each evaluator, record as it goes."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .data import DatasetSplits, load_dataset
from .distill import SyntheticSet, build_distiller
from .errors import DistillationDiverged, FairbenchError
from .evaluate import check_fits, evaluate_synthetic
from .leaderboard import write_leaderboard
from .metrics import METRICS
from .plan import Cell, check_cells_data, make_plan
from .plugins import method_provenance
from .prepare import cell_context
from .progress import progress
from .protocol import digest, protocol_id, protocol_of
from .provenance import device_label, git_commit, machine_fingerprint
from .results import append_record, read_records
from .synsets import SUFFIX, load_synset, save_synset


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise FairbenchError(f"unknown device '{name}'; choose from: auto, cpu, cuda, cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FairbenchError("device=cuda asked for, but torch sees no CUDA GPU; use device=cpu")
    return device


def out_dir_for(config: dict) -> Path:
    if config["out"]:
        return Path(config["out"])
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{Path(config['suite']).stem}-{stamp}"


def _distill_key(cell: Cell) -> dict:
    return {"dataset": cell.dataset, "dataset_params": cell.dataset_params, "method": cell.method,
            "hparams": cell.hparams, "net": cell.net, "ipc": cell.ipc, "seed": cell.seed}


def check_cells_ready(cells: list[Cell], datasets: dict, device: torch.device, config: dict) -> None:
    """Fail before anything runs when a cell's data cannot serve it or it needs something the run
    does not make (what ``fairbench prepare`` makes)."""
    check_cells_data(cells, {name: splits.train for name, splits in datasets.items()})
    for cell in cells:
        train = datasets[cell.dataset].train
        build_distiller(cell.method, cell.hparams).check_ready(train, cell_context(cell, train, device, config))


def _distill(cell: Cell, splits: DatasetSplits, device: torch.device, out: Path,
             config: dict) -> tuple[SyntheticSet, dict, str]:
    """The cell's synthetic set, its timing stats and its file (relative to ``out``).

    A set an earlier run made is read back from ``out/synsets``; its timings are kept only when
    this run's device is the one that measured them, so no record claims another device's speed.
    """
    relative = f"synsets/{digest(_distill_key(cell))}{SUFFIX}"
    path = out / relative
    here = device_label(device)
    if path.is_file():
        syn, metadata = load_synset(path)
        stats = metadata["stats"]
        if metadata.get("timing_device") != here:
            stats = {key: None for key in stats}
        return syn, {**stats, "timing_device": metadata.get("timing_device"), "distill_reused": True}, relative
    torch.manual_seed(cell.seed)
    train = splits.train.to(device)
    distiller = build_distiller(cell.method, cell.hparams)
    syn = distiller.distill(train, cell.ipc, cell_context(cell, train, device, config)).cpu()
    stats = distiller.stats.as_record()
    save_synset(path, syn, {"dataset": cell.dataset, "ipc": cell.ipc, "method": cell.method, "seed": cell.seed,
                            "key": _distill_key(cell), "stats": stats, "timing_device": here})
    return syn, {**stats, "timing_device": here, "distill_reused": False}, relative


def _check_networks_fit(cells: list[Cell], datasets: dict[str, DatasetSplits]) -> None:
    """Every evaluator and distiller network against its dataset's image shape, before any
    distillation: a misfit should cost seconds, not the distillations that come before it."""
    checked = set()
    for cell in cells:
        train = datasets[cell.dataset].train
        for spec in filter(None, [cell.net, *cell.evaluators]):
            key = digest([cell.dataset, spec])
            if key not in checked:
                check_fits(spec, train.image_shape, train.num_classes)
                checked.add(key)


def _record(cell: Cell, spec: dict, device: torch.device, cell_id: str, resolved: dict, config: dict,
            **outcome) -> dict:
    return {
        "cell_id": cell_id,
        "dataset": cell.dataset, "method": cell.method, "ipc": cell.ipc, "seed": cell.seed,
        "evaluator": spec["name"],
        "provenance": method_provenance(cell.method),
        "config": resolved,
        "protocol_id": protocol_id(resolved),
        "protocol": protocol_of(resolved),
        "run_config": {k: v for k, v in config.items() if k != "out"},
        **outcome,
        "device": device_label(device),
        "fingerprint": machine_fingerprint(device),
        "fairbench_version": __version__,
        "torch_version": torch.__version__,
        "git_commit": git_commit(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _metrics(runs: list[dict]) -> dict:
    return {m: {"mean": float(np.mean([r[m] for r in runs])), "std": float(np.std([r[m] for r in runs])),
                "runs": [r[m] for r in runs]} for m in METRICS}


def run_suite(config: dict, log=lambda msg: None) -> tuple[Path, "object", list[str]]:
    """Run every cell of ``config`` not already recorded in its out folder.

    Returns (out, leaderboard, failures). A cell whose distillation diverges is recorded with
    ``status: failed`` and its reason, and the suite goes on; the leaderboard skips it.
    """
    cells = make_plan(config)
    device = resolve_device(config["device"])
    datasets = {}
    for cell in cells:
        if cell.dataset not in datasets:
            datasets[cell.dataset] = load_dataset(cell.dataset, config["data_root"], cell.dataset_params,
                                                  download=config["download"])
    _check_networks_fit(cells, datasets)
    check_cells_ready(cells, datasets, device, config)
    out = out_dir_for(config)
    out.mkdir(parents=True, exist_ok=True)
    records = read_records(out, missing_ok=True)
    done = {r["cell_id"] for r in records if r.get("status") == "ok"}
    log(f"fairbench: {len(cells)} cells on {device_label(device)}; results in {out}")
    failures: list[str] = []

    for cell in progress(cells, desc="cells", leave=True):
        pending = []
        for spec in cell.evaluators:
            resolved = {"dataset": {"name": cell.dataset, "params": cell.dataset_params},
                        "method": {"id": cell.method, "hparams": cell.hparams}, "net": cell.net,
                        "ipc": cell.ipc, "seed": cell.seed, "evaluator": spec, "num_eval": config["num_eval"],
                        "suite": config["suite"]}
            cell_id = digest(resolved)
            if cell_id not in done:
                pending.append((spec, resolved, cell_id))
        if not pending:
            continue
        splits = datasets[cell.dataset]
        try:
            syn, stats, synset = _distill(cell, splits, device, out, config)
        except DistillationDiverged as error:
            failures.append(f"{cell.label}: {error}")
            log(f"fairbench: cell failed, the suite goes on: {cell.label}: {error}")
            for spec, resolved, cell_id in pending:
                record = _record(cell, spec, device, cell_id, resolved, config, status="failed",
                                 reason=str(error))
                append_record(out, record)
                records.append(record)
            continue
        for spec, resolved, cell_id in pending:
            eval_seeds = [1000 * cell.seed + j for j in range(config["num_eval"])]
            start = time.perf_counter()
            evaluation = evaluate_synthetic(syn, splits.test, spec, eval_seeds, device, progress=progress,
                                            ensemble=config["ensemble"])
            eval_s = time.perf_counter() - start
            record = _record(cell, spec, device, cell_id, resolved, config, status="ok", eval_seeds=eval_seeds,
                             metrics=_metrics(evaluation.runs), **stats, synset=synset, eval_s=eval_s,
                             eval_path=evaluation.path, eval_path_reason=evaluation.reason)
            append_record(out, record)
            records.append(record)
            write_leaderboard(out, records)
    return out, write_leaderboard(out, records), failures
