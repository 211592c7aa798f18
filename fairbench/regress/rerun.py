"""``fairbench regress``: rerun a baseline's recorded protocol from scratch and compare cell by cell.

A baseline is a run folder (its ``results.jsonl``) or a folder of leaderboard entries
(``leaderboard/entries``: each entry's verified runs, under a run configuration rebuilt from its
protocol and checked to give the entry's protocol id). Every record carries ``run_config``, the
whole resolved run configuration it was made with; the rerun groups the records by it and runs each distinct one
again, with the command line's ``key=value`` settings on top (``device=cuda``, ``out=DIR``), into a
fresh out folder: nothing is resumed from the baseline's records or its synthetic sets, so a copy
of the baseline can never pass by reprinting itself.

``--update`` writes the rerun's records over a run-folder baseline (and re-renders its tables), the
way to move a baseline on purpose after a reviewed change.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from ..board.entries import entry_record, read_entry_files
from ..core.atomic import write_text_atomic
from ..core.errors import FairbenchError
from ..core.protocol import protocol_id
from ..report.tables import write_leaderboard
from ..run.config import RUN_DEFAULTS, merge_settings, parse_overrides, validate
from ..run.driver import run_suite
from ..run.plan import make_plan, resolved_config
from ..run.results import RESULTS_FILE, read_records
from .verdicts import compare_records, publish


def load_baseline(path: str | Path) -> list[dict]:
    """The records of a run folder, or those found in a folder of leaderboard entries."""
    path = Path(path)
    if not path.is_dir():
        raise FairbenchError(
            f"baseline '{path}' is not a folder; pass a run folder (with {RESULTS_FILE}) "
            "or a folder of leaderboard entries (*.json)"
        )
    if (path / RESULTS_FILE).is_file():
        records = read_records(path)
    else:
        records = [entry_record(entry) for entry in read_entry_files(path)]
    if not records:
        raise FairbenchError(
            f"baseline '{path}' holds no fairbench records: no {RESULTS_FILE}, and no *.json leaderboard entry"
        )
    return records


def rerun_configs(records: list[dict], overrides: list[str]) -> list[dict]:
    """The distinct run configurations of ``records``, each checked and with ``overrides`` on top.

    A configuration this installation cannot run (an unknown method, plugin or run key) raises
    :class:`FairbenchError` here, before anything runs.
    """
    if any(arg.startswith("suite=") for arg in overrides):
        raise FairbenchError(
            "regress reruns the baseline's recorded configuration; suite= does not apply "
            "(make a new baseline with: fairbench run suite=NAME out=DIR)"
        )
    _, dotlist = parse_overrides(overrides)
    distinct: dict[str, dict] = {}
    for record in records:
        if not isinstance(record.get("run_config"), dict):
            raise FairbenchError(
                f"baseline record {record.get('cell_id', '?')} has no run_config (made by an "
                "older fairbench): it cannot be rerun; make a new baseline with fairbench run"
            )
        distinct.setdefault(json.dumps(record["run_config"], sort_keys=True), record["run_config"])
    configs = []
    for key, recorded in distinct.items():
        settings = {k: v for k, v in recorded.items() if k != "suite"}
        config = validate(merge_settings(RUN_DEFAULTS, settings, dotlist=dotlist)) | {"suite": recorded.get("suite")}
        made_by = [r for r in records if json.dumps(r["run_config"], sort_keys=True) == key]
        _check_protocols(made_by, make_plan(config), config)
        configs.append(config)
    return configs


def _check_protocols(records: list[dict], cells: list, config: dict) -> None:
    """Refuse a configuration whose plan does not rebuild the protocol its records were made under
    (a leaderboard entry whose protocol run keys cannot express, or a registry that changed)."""
    planned = {protocol_id(resolved_config(cell, spec, config)) for cell in cells for spec in cell.evaluators}
    for record in records:
        if record.get("protocol_id") not in planned | {None}:
            raise FairbenchError(
                f"baseline record {record['dataset']} {record['method']} ipc{record['ipc']} seed{record['seed']}: "
                f"its protocol {record['protocol_id']} cannot be rebuilt here (the rerun's would be "
                f"{', '.join(sorted(planned))}); rerun it with the fairbench version and registry that made it"
            )


def fresh_out(out: str | None, count: int) -> list[Path]:
    """One empty folder per configuration under ``out`` (default ``runs/regress-<time>``)."""
    root = Path(out) if out else Path("runs") / f"regress-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folders = [root] if count == 1 else [root / f"config-{i + 1}" for i in range(count)]
    for folder in folders:
        if (folder / RESULTS_FILE).exists():
            raise FairbenchError(
                f"{folder} already holds {RESULTS_FILE}; regress always recomputes, so pass a new out=DIR"
            )
    return folders


def rerun(configs: list[dict], folders: list[Path], log=lambda msg: None) -> tuple[list[dict], list[str]]:
    """Run every configuration into its fresh folder; return all new records and the failures."""
    records, failures = [], []
    for config, folder in zip(configs, folders):
        out, _, failed = run_suite({**config, "out": str(folder)}, log=log)
        records += read_records(out)
        failures += failed
    return records, failures


def update_baseline(baseline: str | Path, records: list[dict]) -> None:
    """Replace a run-folder baseline's records with ``records`` and re-render its tables."""
    baseline = Path(baseline)
    if not (baseline / RESULTS_FILE).is_file():
        raise FairbenchError(
            f"--update rewrites a run-folder baseline; {baseline} has no {RESULTS_FILE} "
            "(leaderboard entries are written by the leaderboard's own commands)"
        )
    write_text_atomic(baseline / RESULTS_FILE, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    write_leaderboard(baseline, records)


def regress_command(
    baseline: str,
    overrides: list[str],
    *,
    update: bool = False,
    markdown: str | None = None,
    json_path: str | None = None,
    log=lambda msg: None,
    **options,
) -> int:
    """``fairbench regress``: rerun, compare, report; with ``update``, rewrite the baseline. The exit code."""
    records = load_baseline(baseline)
    configs = rerun_configs(records, overrides)
    folders = fresh_out(configs[0]["out"], len(configs))
    log(
        f"fairbench regress: {len(records)} baseline records, {len(configs)} configuration(s) rerun into "
        f"{', '.join(map(str, folders))}"
    )
    now, failures = rerun(configs, folders, log)
    comparison = compare_records(records, now, **options)
    code = publish(comparison, f"fairbench regress {baseline}", markdown, json_path)
    if not update:
        return code
    if failures:
        log(f"fairbench regress: {len(failures)} cells failed, so {baseline} is left as it was")
        return 1
    update_baseline(baseline, now)
    moved = [r for r in comparison.rows if r.verdict not in ("same", "ok")]
    log(
        f"fairbench regress: updated {baseline} with {len(now)} records from {', '.join(map(str, folders))}; "
        f"{len(moved)} of {len(comparison.rows)} rows moved: "
        + ("; ".join(f"{r.cell} {r.metric} {r.verdict}" for r in moved) or "none")
    )
    return 0
