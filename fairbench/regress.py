"""``fairbench regress``: rerun a baseline's recorded protocol from scratch and compare cell by cell.

A baseline is a run folder (its ``results.jsonl``) or a folder of leaderboard entries (``*.json``
holding fairbench records). Every record carries ``run_config``, the whole resolved run
configuration it was made with; the rerun groups the records by it and runs each distinct one
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

from .atomic import write_text_atomic
from .config import RUN_DEFAULTS, merge_settings, parse_overrides, validate
from .errors import FairbenchError
from .results import RESULTS_FILE, read_records


def load_baseline(path: str | Path) -> list[dict]:
    """The records of a run folder, or those found in a folder of leaderboard entries."""
    path = Path(path)
    if not path.is_dir():
        raise FairbenchError(f"baseline '{path}' is not a folder; pass a run folder (with {RESULTS_FILE}) "
                             "or a folder of leaderboard entries (*.json)")
    if (path / RESULTS_FILE).is_file():
        records = read_records(path)
    else:
        records = [r for entry in sorted(path.glob("*.json")) for r in _entry_records(entry)]
    if not records:
        raise FairbenchError(f"baseline '{path}' holds no fairbench records: no {RESULTS_FILE}, "
                             "and no *.json entry with records")
    return records


def _entry_records(path: Path) -> list[dict]:
    """Every fairbench record inside one leaderboard entry, wherever the entry nests them.

    The entry format belongs to the leaderboard; a record is recognised by its own fields
    (``cell_id``, ``metrics``), so this reader keeps working while entries gain other fields.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FairbenchError(f"{path}: not a readable JSON entry ({str(error).splitlines()[0]})") from None
    return _records_in(data)


def _records_in(item) -> list[dict]:
    if isinstance(item, dict):
        if "cell_id" in item and isinstance(item.get("metrics"), dict):
            return [item]
        item = list(item.values())
    if isinstance(item, list):
        return [record for value in item for record in _records_in(value)]
    return []


def rerun_configs(records: list[dict], overrides: list[str]) -> list[dict]:
    """The distinct run configurations of ``records``, each checked and with ``overrides`` on top.

    A configuration this installation cannot run (an unknown method, plugin or run key) raises
    :class:`FairbenchError` here, before anything runs.
    """
    from .plan import make_plan

    if any(arg.startswith("suite=") for arg in overrides):
        raise FairbenchError("regress reruns the baseline's recorded configuration; suite= does not apply "
                             "(make a new baseline with: fairbench run suite=NAME out=DIR)")
    _, dotlist = parse_overrides(overrides)
    distinct: dict[str, dict] = {}
    for record in records:
        if not isinstance(record.get("run_config"), dict):
            raise FairbenchError(f"baseline record {record.get('cell_id', '?')} has no run_config (made by an "
                                 "older fairbench): it cannot be rerun; make a new baseline with fairbench run")
        distinct.setdefault(json.dumps(record["run_config"], sort_keys=True), record["run_config"])
    configs = []
    for recorded in distinct.values():
        settings = {k: v for k, v in recorded.items() if k != "suite"}
        config = validate(merge_settings(RUN_DEFAULTS, settings, dotlist=dotlist)) | {"suite": recorded.get("suite")}
        make_plan(config)
        configs.append(config)
    return configs


def fresh_out(out: str | None, count: int) -> list[Path]:
    """One empty folder per configuration under ``out`` (default ``runs/regress-<time>``)."""
    root = Path(out) if out else Path("runs") / f"regress-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folders = [root] if count == 1 else [root / f"config-{i + 1}" for i in range(count)]
    for folder in folders:
        if (folder / RESULTS_FILE).exists():
            raise FairbenchError(f"{folder} already holds {RESULTS_FILE}; regress always recomputes, "
                                 "so pass a new out=DIR")
    return folders


def rerun(configs: list[dict], folders: list[Path], log=lambda msg: None) -> tuple[list[dict], list[str]]:
    """Run every configuration into its fresh folder; return all new records and the failures."""
    from .harness import run_suite

    records, failures = [], []
    for config, folder in zip(configs, folders):
        out, _, failed = run_suite({**config, "out": str(folder)}, log=log)
        records += read_records(out)
        failures += failed
    return records, failures


def update_baseline(baseline: str | Path, records: list[dict]) -> None:
    """Replace a run-folder baseline's records with ``records`` and re-render its tables."""
    from .leaderboard import write_leaderboard

    baseline = Path(baseline)
    if not (baseline / RESULTS_FILE).is_file():
        raise FairbenchError(f"--update rewrites a run-folder baseline; {baseline} has no {RESULTS_FILE} "
                             "(leaderboard entries are written by the leaderboard's own commands)")
    write_text_atomic(baseline / RESULTS_FILE, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    write_leaderboard(baseline, records)


def regress_command(baseline: str, overrides: list[str], *, update: bool = False, markdown: str | None = None,
                    json_path: str | None = None, log=lambda msg: None, **options) -> int:
    """``fairbench regress``: rerun, compare, report; with ``update``, rewrite the baseline. The exit code."""
    from .compare import compare_records, publish

    records = load_baseline(baseline)
    configs = rerun_configs(records, overrides)
    folders = fresh_out(configs[0]["out"], len(configs))
    log(f"fairbench regress: {len(records)} baseline records, {len(configs)} configuration(s) rerun into "
        f"{', '.join(map(str, folders))}")
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
    log(f"fairbench regress: updated {baseline} with {len(now)} records from {', '.join(map(str, folders))}; "
        f"{len(moved)} of {len(comparison.rows)} rows moved: "
        + ("; ".join(f"{r.cell} {r.metric} {r.verdict}" for r in moved) or "none"))
    return 0
