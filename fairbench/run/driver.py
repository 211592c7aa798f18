"""Running a plan: the driver. It checks everything before any compute, then hands the cells still
to run to a launcher (local loop, Ray, Slurm), and alone appends their records to results.jsonl.

Before any compute: the plan, the datasets, every network against its images, each cell's
preparation (MTT's experts), then the out folder (writable, locked, repaired, its protocols named,
the resume policy applied; see ``outdir.py``). Then the cells run through
:func:`fairbench.run.cell.run_cell`, one record per (cell, evaluator) appended as each cell finishes,
with a progress line per cell. Tables are written once at the end, and also after each cell when
the run is local (a crash mid-suite still leaves tables of what finished).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

from ..core.atomic import check_writable, why_not_written
from ..core.device import configure_backends, resolve_device
from ..core.errors import FairbenchError
from ..core.progress import CellProgress
from ..core.protocol import digest, protocol_id
from ..data import DatasetSplits
from ..report.tables import write_leaderboard
from .cell import cell_id as make_cell_id
from .cell import resolved_config, splits_for
from .fit import check_network_fits, ensemble_runs
from .launchers import get_launcher
from .outdir import describe_holdings, locked, repaired_records, reusable
from .plan import Cell, check_cells_data, make_plan, protocol_deviations
from .preparation import check_cell_memory, check_cells_ready, prepare_cells
from .results import RESULTS_FILE, append_record


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run; carries the out folder so the message can say how to resume."""

    def __init__(self, out: Path):
        super().__init__(str(out))
        self.out = out


def out_dir_for(config: dict) -> Path:
    if config["out"]:
        return Path(config["out"])
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{Path(config['suite']).stem}-{stamp}"


def _check_networks_fit(cells: list[Cell], datasets: dict[str, DatasetSplits], config: dict, device) -> None:
    """Every evaluator and distiller network against its dataset's image shape and, when the
    driver runs the cells itself (``device`` not None; a Ray task or Slurm job checks its own
    before its compute), against the device's memory: each evaluator's weights ``num_eval`` times
    over when the runs train as an ensemble, and each cell's step; all before any distillation: a
    misfit should cost seconds, not the distillations that come before it."""
    checked = set()
    runs = ensemble_runs(config["ensemble"], config["num_eval"], device) if device is not None else 1
    for cell in cells:
        train = datasets[cell.dataset].train
        for spec in filter(None, [cell.net, *cell.evaluators]):
            key = digest([cell.dataset, spec, spec in cell.evaluators])
            if key not in checked:
                count = runs if spec in cell.evaluators else 1
                check_network_fits(spec, train.image_shape, train.num_classes, count, device)
                checked.add(key)
        if device is not None:
            check_cell_memory(cell, train, device)


def prepare(cells: list[Cell], datasets: dict, device, config: dict, log=lambda msg: None) -> None:
    """Everything the cells need before they run, in the driver: each base's preparation step
    (MTT's experts), once per distinct set, then the checks that the data can serve every cell.
    The one place the driver calls preparation from. With ``device`` None (Ray, Slurm) only the
    data is checked: the steps need the device, so each cell's job makes them where it runs."""
    trains = {name: splits.train for name, splits in datasets.items()}
    check_cells_data(cells, trains)
    if device is None:
        return
    for line in prepare_cells(cells, trains, device, config, log):
        log(f"fairbench: {line}")
    check_cells_ready(cells, trains, device, config)


def _with_absolute_paths(config: dict, out: Path) -> dict:
    """The config cells run with: paths absolute, so a worker's working folder does not matter."""
    return {
        **config,
        "out": str(out.resolve()),
        "data_root": str(Path(config["data_root"]).resolve()),
        "experts_dir": str(Path(config["experts_dir"]).resolve()),
    }


def _still_to_run(cells: list[Cell], config: dict, done: set[str]) -> list[Cell]:
    """Each cell with only the evaluators it still lacks; cells with none left out."""
    todo = []
    for cell in cells:
        specs = [spec for spec in cell.evaluators if make_cell_id(cell, spec, config) not in done]
        if specs:
            todo.append(replace(cell, evaluators=specs))
    return todo


def _append(out: Path, record: dict) -> None:
    try:
        append_record(out, record)
    except OSError as error:
        raise FairbenchError(
            f"cannot append to {out / RESULTS_FILE}: {why_not_written(error)}; every record "
            f"before this one is kept, and a rerun into out={out} resumes"
        ) from None


def _files_written(out: Path, appended: int) -> str:
    tables = sorted(p.name for p in out.glob("leaderboard*") if p.suffix in (".csv", ".md"))
    synsets = len(list((out / "synsets").glob("*.safetensors")))
    return (
        f"fairbench: files: {out}/results.jsonl ({appended} records added), "
        + ", ".join(f"{out}/{name}" for name in tables)
        + f", {out}/synsets/ ({synsets} synthetic sets)"
    )


def run_suite(config: dict, log=lambda msg: None) -> tuple[Path, object, list[str]]:
    """Run every cell of ``config`` not already recorded in its out folder.

    Returns (out, leaderboard, failures). A cell whose distillation diverges is recorded with
    ``status: failed`` and its reason, and the suite goes on; the leaderboard skips it. A cell whose
    task fails (Ray, Slurm) is named in ``failures`` and not recorded, so a rerun retries it.
    """
    cells = make_plan(config)
    # under ray/slurm the device is the workers': checked, and preparation run, where cells run
    device = None if config["launcher"] != "local" else resolve_device(config["device"])
    if device is not None:
        configure_backends(device)  # before the experts: their CUDA context on this very GPU
    launcher = get_launcher(config["launcher"])
    out = out_dir_for(config)
    cell_config = {
        **_with_absolute_paths(config, out),
        "run_config": {k: v for k, v in config.items() if k != "out"},
    }  # as the user gave it
    datasets = {cell.dataset: splits_for(cell, cell_config) for cell in cells}
    _check_networks_fit(cells, datasets, config, device)
    check_writable(out)  # after the checks that write nothing, before the experts train
    prepare(cells, datasets, device, cell_config, log)
    try:
        with locked(out):
            records = repaired_records(out, log)
            ids = {
                make_cell_id(c, spec, config): protocol_id(resolved_config(c, spec, config))
                for c in cells
                for spec in c.evaluators
            }
            describe_holdings(records, set(ids.values()), log)
            done = reusable(records, set(ids), config["resume"], log)
            todo = _still_to_run(cells, config, done)
            log(
                f"fairbench: {len(cells)} cells on {device or config['device'] + ' (checked where each runs)'}, "
                f"{len(todo)} to run with launcher={config['launcher']}; "
                f"results in {out}"
            )
            deviations = protocol_deviations(config, cells)
            log(
                f"fairbench: suite {config['suite']}: "
                + (
                    "differs from the registry's protocol in: " + "; ".join(deviations)
                    if deviations
                    else "the registry's protocol, unchanged"
                )
            )
            status = CellProgress(len(todo), log)
            failures: list[str] = []
            appended = 0
            for finished in launcher.launch(todo, cell_config, status) if todo else ():
                fresh = [r for r in finished.records or [] if r["cell_id"] not in done]
                for record in fresh:
                    _append(out, record)
                    records.append(record)
                    appended += 1
                    if record["status"] == "ok":
                        done.add(record["cell_id"])
                reason = finished.error or next((r.get("reason") for r in fresh if r["status"] != "ok"), None)
                if reason is not None:
                    failures.append(f"{finished.cell.label}: {reason}")
                status.finished(finished.cell.label, finished.records, finished.error)
                if config["launcher"] == "local":
                    write_leaderboard(out, records)
            frame = write_leaderboard(out, records)
    except KeyboardInterrupt:
        raise RunInterrupted(out) from None
    log(_files_written(out, appended))
    return out, frame, failures
