"""Running a plan: distill each cell once, evaluate it with each evaluator, record as it goes."""

from __future__ import annotations

import hashlib
import json
import subprocess
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
from .results import append_record, read_records


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


def _device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return str(device)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40"],
                             cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _digest(payload) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
             config: dict) -> tuple[SyntheticSet, dict]:
    """The cell's synthetic set, read back from ``out/synsets`` when an earlier run made it."""
    path = out / "synsets" / f"{_digest(_distill_key(cell))}.pt"
    if path.is_file():
        saved = torch.load(path, map_location="cpu")
        return SyntheticSet(saved["images"], saved["labels"], saved["extras"]), saved["stats"]
    torch.manual_seed(cell.seed)
    train = splits.train.to(device)
    distiller = build_distiller(cell.method, cell.hparams)
    syn = distiller.distill(train, cell.ipc, cell_context(cell, train, device, config)).cpu()
    stats = distiller.stats.as_record()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"images": syn.images, "labels": syn.labels, "extras": syn.extras, "stats": stats,
                "key": _distill_key(cell)}, path)
    return syn, stats


def _check_networks_fit(cells: list[Cell], datasets: dict[str, DatasetSplits]) -> None:
    """Every evaluator and distiller network against its dataset's image shape, before any
    distillation: a misfit should cost seconds, not the distillations that come before it."""
    checked = set()
    for cell in cells:
        train = datasets[cell.dataset].train
        for spec in filter(None, [cell.net, *cell.evaluators]):
            key = _digest([cell.dataset, spec])
            if key not in checked:
                check_fits(spec, train.image_shape, train.num_classes)
                checked.add(key)


def _record(cell: Cell, spec: dict, device: torch.device, cell_id: str, resolved: dict, **outcome) -> dict:
    return {
        "cell_id": cell_id,
        "dataset": cell.dataset, "method": cell.method, "ipc": cell.ipc, "seed": cell.seed,
        "evaluator": spec["name"],
        "provenance": method_provenance(cell.method),
        "config": resolved,
        **outcome,
        "device": _device_label(device),
        "fairbench_version": __version__,
        "torch_version": torch.__version__,
        "git_commit": _git_commit(),
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
    log(f"fairbench: {len(cells)} cells on {_device_label(device)}; results in {out}")
    failures: list[str] = []

    for cell in progress(cells, desc="cells", leave=True):
        pending = []
        for spec in cell.evaluators:
            resolved = {"dataset": {"name": cell.dataset, "params": cell.dataset_params},
                        "method": {"id": cell.method, "hparams": cell.hparams}, "net": cell.net,
                        "ipc": cell.ipc, "seed": cell.seed, "evaluator": spec, "num_eval": config["num_eval"],
                        "suite": config["suite"]}
            cell_id = _digest(resolved)
            if cell_id not in done:
                pending.append((spec, resolved, cell_id))
        if not pending:
            continue
        splits = datasets[cell.dataset]
        try:
            syn, stats = _distill(cell, splits, device, out, config)
        except DistillationDiverged as error:
            failures.append(f"{cell.label}: {error}")
            log(f"fairbench: cell failed, the suite goes on: {cell.label}: {error}")
            for spec, resolved, cell_id in pending:
                record = _record(cell, spec, device, cell_id, resolved, status="failed", reason=str(error))
                append_record(out, record)
                records.append(record)
            continue
        for spec, resolved, cell_id in pending:
            eval_seeds = [1000 * cell.seed + j for j in range(config["num_eval"])]
            start = time.perf_counter()
            evaluation = evaluate_synthetic(syn, splits.test, spec, eval_seeds, device, progress=progress,
                                            ensemble=config["ensemble"])
            eval_s = time.perf_counter() - start
            record = _record(cell, spec, device, cell_id, resolved, status="ok", eval_seeds=eval_seeds,
                             metrics=_metrics(evaluation.runs), **stats, eval_s=eval_s,
                             eval_path=evaluation.path, eval_path_reason=evaluation.reason)
            append_record(out, record)
            records.append(record)
            write_leaderboard(out, records)
    return out, write_leaderboard(out, records), failures
