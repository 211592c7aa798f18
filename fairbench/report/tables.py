"""Leaderboard tables rendered from result records: CSV, Markdown and the terminal.

A row is a (dataset, ipc, evaluator, method, protocol) cell. ``protocol`` is the record's protocol
id (its resolved configuration minus seeds and run counts, :mod:`fairbench.core.protocol`), so two runs
in one folder that differ in hyperparameters, evaluation settings or suite stay apart, each row
naming its protocol. The evaluation runs of all distillation seeds of a row are pooled, so
``acc_std`` covers both sources of variance; an evaluation run is counted once however many
records repeat it (a rerun with a larger ``num_eval`` re-records the earlier seeds): runs are told
apart by (protocol, distillation seed, evaluation seed). Failed cells are left out.

Timings come only from the device that measured them (``timing_device``), once per synthetic set;
a row whose sets were timed on several devices shows the device with most measurements.

``overhead`` is what fairness costs: the method's mean time per distillation iteration over its
base's (``dm+wbary`` over ``dm``), for the same dataset and IPC, compared only between timings
from the same device; it is blank where the base was not timed on that device.

Each headline metric (acc, deo_mean, worst_group_acc) gets a 95% interval (``*_ci95``) and a rank
among the rows of the same dataset, IPC and evaluator (``*_rank``: rows the runs do not separate
from the best share its rank, :mod:`fairbench.report.ranks`); ``seeds`` counts the distillation
seeds pooled, and ``*_seed_std`` / ``*_eval_std`` split the spread into the one across seeds and
the one of evaluation runs on one set.

Per-group accuracies (records' ``group_acc``) are pooled the same way into a long table, one row
per (leaderboard row, group): ``leaderboard_groups.csv`` and the group-accuracy bars.

The cross-architecture summary has one row per (dataset, ipc, method, protocol of the distilled
set): each metric's mean over the evaluators, every evaluator weighted equally, so a synthetic set
is judged on how well it transfers, not only on the network it was distilled with.
"""

from __future__ import annotations

import logging
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from ..core.atomic import why_not_written, write_text_atomic
from ..core.protocol import protocol_id, protocol_of
from ..evaluation.metrics import METRICS, group_acc_summary, has_metric
from .ranks import HEADLINE, INTERVAL, TEST, rank_columns, seed_columns

log = logging.getLogger(__name__)

KEYS = ["dataset", "ipc", "evaluator", "method", "protocol"]
COLUMNS = KEYS + [
    "acc",
    "acc_std",
    "acc_ci95",
    "acc_rank",
    "deo_max",
    "deo_max_std",
    "deo_mean",
    "deo_mean_std",
    "deo_mean_ci95",
    "deo_mean_rank",
    "suff_max",
    "suff_mean",
    "worst_group_acc",
    "worst_group_acc_ci95",
    "worst_group_acc_rank",
    "eo_max",
    "eo_mean",
    "dp_max",
    "dp_mean",
    "distill_s",
    "iter_ms",
    "overhead",
    "timing_device",
    "runs",
    "seeds",
    *(f"{m}_{spread}" for m in HEADLINE for spread in ("seed_std", "eval_std")),
    "set_protocol",
]
RANKED_WITHIN = ["dataset", "ipc", "evaluator"]  # the rows of a run table that compete for ranks
CAPTION = f"{TEST} (within each dataset, ipc and evaluator); *_ci95: {INTERVAL.removeprefix('± is ')}."
SUMMARY_KEYS = ["dataset", "ipc", "method", "set_protocol"]
SUMMARY_COLUMNS = SUMMARY_KEYS + list(METRICS) + ["evaluators"]
GROUP_COLUMNS = KEYS + ["group", "acc", "acc_std", "runs"]


def record_protocol(record: dict) -> str:
    """A record's protocol id; computed from its resolved config for records older than the key."""
    return record.get("protocol_id") or protocol_id(record.get("config") or {})


def set_protocol(record: dict) -> str:
    """The protocol of a record's synthetic set: its protocol without the evaluator, which the
    summary across evaluators groups by."""
    config = record.get("protocol") or protocol_of(record.get("config") or {})
    return protocol_id({k: v for k, v in config.items() if k != "evaluator"})


def eval_seeds(record: dict) -> list[int]:
    """The evaluation seeds of a record's runs (older records: the harness's ``1000·seed + j``)."""
    runs = len(record["metrics"]["acc"]["runs"])
    return record.get("eval_seeds") or [1000 * record["seed"] + j for j in range(runs)]


def unique_runs(records: list[dict]) -> dict[tuple, dict[int, dict[str, float]]]:
    """(protocol, distillation seed) → {evaluation seed: metrics} with each run once.

    The same evaluation of the same synthetic set recorded twice (a resumed run, a larger
    ``num_eval``) keeps its first record.
    """
    runs: dict[tuple, dict[int, dict]] = defaultdict(dict)
    for record in records:
        key = (record_protocol(record), record["seed"])
        for j, seed in enumerate(eval_seeds(record)):
            runs[key].setdefault(seed, run_at(record, j))
    return runs


def run_at(source: dict, j: int) -> dict:
    """Evaluation run ``j`` of a record or of an entry's measurement (both hold ``metrics`` and,
    unless older than per-group accuracies, ``group_acc``); a metric the source lacks (a record
    older than it) is absent from the run."""
    run = {m: source["metrics"][m]["runs"][j] for m in METRICS if has_metric(source, m)}
    if "group_acc" in source:
        run["group_acc"] = source["group_acc"]["runs"][j]
    return run


def _timings(records: list[dict]) -> dict[tuple, tuple[str, float, float]]:
    """(protocol, seed) → (measuring device, distill_s, iter_ms), once per synthetic set."""
    timings = {}
    for record in records:
        if record.get("iter_ms") is not None:  # None: a reused set measured on another device
            device = record.get("timing_device") or record["device"]
            timings.setdefault(
                (record_protocol(record), record["seed"]), (device, record.get("distill_s"), record["iter_ms"])
            )
    return timings


def _overheads(records: list[dict]) -> dict[tuple, float]:
    """(dataset, ipc, method) → iteration time over the base's, averaged over the devices that ran both."""
    by_set = {}
    for record in records:
        if record.get("iter_ms") is not None:
            device = record.get("timing_device") or record["device"]
            by_set[
                (record["dataset"], record["ipc"], device, record["method"], record_protocol(record), record["seed"])
            ] = record["iter_ms"]
    times: dict[tuple, list[float]] = defaultdict(list)
    for (dataset, ipc, device, method, _, _), value in by_set.items():
        times[(dataset, ipc, device, method)].append(value)
    ratios: dict[tuple, list[float]] = defaultdict(list)
    for (dataset, ipc, device, method), values in times.items():
        base = times.get((dataset, ipc, device, method.partition("+")[0]))
        if base and np.mean(base) > 0:
            ratios[(dataset, ipc, method)].append(float(np.mean(values) / np.mean(base)))
    return {key: float(np.mean(values)) for key, values in ratios.items()}


def _mean(values) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float("nan")


def _rows(records: list[dict]) -> dict[tuple, list[dict]]:
    """The finished records of each leaderboard row, keyed by :data:`KEYS`."""
    rows: dict[tuple, list[dict]] = defaultdict(list)
    for record in records:
        if record.get("status") == "ok":
            rows[
                (record["dataset"], record["ipc"], record["evaluator"], record["method"], record_protocol(record))
            ].append(record)
    return rows


def pooled_columns(by_seed: list[list[dict]]) -> dict:
    """A table row's metric columns over its evaluation runs, grouped by synthetic set (one list
    per distillation seed): ``{metric: mean, metric_std: std}`` over all runs pooled, and for the
    95% interval, and for the headline metrics the spreads across seeds and within a set
    (:func:`fairbench.report.ranks.seed_columns`); run tables and the rendered leaderboard both
    build their rows with it. A metric is pooled over the runs that hold it, NaN where none does
    (records older than the metric)."""
    runs = [run for runs in by_seed for run in runs]
    columns: dict = {"seeds": len(by_seed)}
    for metric in METRICS:
        values = [run[metric] for run in runs if metric in run]
        if values:
            columns[metric], columns[f"{metric}_std"] = float(np.mean(values)), float(np.std(values))
        else:
            columns[metric] = columns[f"{metric}_std"] = float("nan")
        spreads = seed_columns(metric, [[run[metric] for run in runs if metric in run] for runs in by_seed])
        columns |= spreads if metric in HEADLINE else {f"{metric}_ci95": spreads[f"{metric}_ci95"]}
    return columns


def swept_keys(records: list[dict]) -> list[str]:
    """The swept settings of a run's records (``record["sweep"]``), in the order they were swept."""
    return list(dict.fromkeys(key for record in records for key in record.get("sweep") or {}))


def sweep_values_of(members: list[dict], keys: list[str]) -> dict:
    """A row's value of each swept key (None where its cells are the same at several values)."""
    point = members[0].get("sweep") or {}
    return {key: point.get(key) for key in keys}


def metric_runs(by_seed: list[list[dict]]) -> dict[str, list[float]]:
    """``{metric: every run's value}`` of a row, what its ranks are tested on."""
    runs = [run for runs in by_seed for run in runs]
    return {m: [run[m] for run in runs if m in run] for m in METRICS}


def add_ranks(
    frame: pd.DataFrame, runs: list[dict[str, list[float]]], within: list[str], metrics=HEADLINE
) -> pd.DataFrame:
    """``frame`` with each of ``metrics``' rank among the rows sharing ``within``
    (:mod:`fairbench.report.ranks`); ``runs[i]`` is row i's :func:`metric_runs`."""
    frame = frame.copy()
    for metric in metrics:
        frame[f"{metric}_rank"] = pd.array([None] * len(frame), dtype="Int64")
    for _, table in frame.groupby(within, sort=False):
        index = list(table.index)
        for column, ranks in rank_columns([runs[i] for i in index], metrics).items():
            frame.loc[index, column] = pd.array(ranks, dtype="Int64")
    return frame


def leaderboard_frame(records: list[dict], *, every_std: bool = False) -> pd.DataFrame:
    """One row per :data:`KEYS`; a sweep's keys (``record["sweep"]``) are columns after them.
    ``every_std`` keeps every metric's spread (the sweep figures' error bars), not only the table's."""
    records = [r for r in records if r.get("status") == "ok"]
    swept = swept_keys(records)
    overheads = _overheads(records)
    timings = _timings(records)
    out_rows, row_runs = [], []
    for key, members in _rows(records).items():
        by_seed = [list(runs.values()) for runs in unique_runs(members).values()]
        pooled = [run for runs in by_seed for run in runs]
        out = dict(zip(KEYS, key)) | sweep_values_of(members, swept) | pooled_columns(by_seed)
        row_runs.append(metric_runs(by_seed))
        sets = {(out["protocol"], r["seed"]) for r in members}
        timed = [timings[s] for s in sets if s in timings]
        device = Counter(t[0] for t in timed).most_common(1)[0][0] if timed else None
        out["distill_s"] = _mean(t[1] for t in timed if t[0] == device)
        out["iter_ms"] = _mean(t[2] for t in timed if t[0] == device)
        out["timing_device"] = device
        out["overhead"] = overheads.get((out["dataset"], out["ipc"], out["method"]), float("nan"))
        out["runs"] = len(pooled)
        out["set_protocol"] = set_protocol(members[0])
        out_rows.append(out)
    columns = KEYS + swept + COLUMNS[len(KEYS) :]
    if every_std:
        columns += [f"{m}_std" for m in METRICS if f"{m}_std" not in columns]
    if not out_rows:
        return pd.DataFrame(columns=columns)
    return add_ranks(pd.DataFrame(out_rows), row_runs, RANKED_WITHIN).reindex(columns=columns)


def group_rows(row: dict, sources: list[dict], runs: list[dict]) -> list[dict]:
    """The long-format rows of one leaderboard row: per group, its accuracy's mean and spread over
    ``runs`` (pooled by :func:`run_at`); ``sources`` (records or entry measurements) name the
    groups. Empty when no run kept per-group accuracies."""
    pooled = [run["group_acc"] for run in runs if "group_acc" in run]
    if not pooled:
        return []
    groups = next(source["group_acc"]["groups"] for source in sources if "group_acc" in source)
    mean, std = group_acc_summary(pooled)
    return [
        {**row, "group": name, "acc": m, "acc_std": s, "runs": len(pooled)} for name, m, s in zip(groups, mean, std)
    ]


def group_frame(records: list[dict]) -> pd.DataFrame:
    """Each row's per-group accuracies (:data:`GROUP_COLUMNS`), each evaluation run counted once;
    rows whose records predate per-group accuracies are left out."""
    out_rows = []
    for key, members in _rows(records).items():
        pooled = [run for runs in unique_runs(members).values() for run in runs.values()]
        out_rows += group_rows(dict(zip(KEYS, key)), members, pooled)
    return pd.DataFrame(out_rows, columns=GROUP_COLUMNS)


def across_evaluators(frame: pd.DataFrame) -> pd.DataFrame:
    """The mean of every metric over the evaluators of each (dataset, ipc, method, set protocol)."""
    if frame.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    grouped = frame.groupby(SUMMARY_KEYS, sort=False)
    summary = grouped[list(METRICS)].mean()
    summary["evaluators"] = grouped["evaluator"].agg(lambda names: ", ".join(dict.fromkeys(names)))
    return summary.reset_index()[SUMMARY_COLUMNS]


def render(frame: pd.DataFrame, fmt: str = "simple") -> str:
    return tabulate(frame, headers="keys", tablefmt=fmt, showindex=False, floatfmt=".2f")


def write_leaderboard(out_dir: Path, records: list[dict]) -> pd.DataFrame:
    """Write the leaderboard, its summary across evaluators (``leaderboard_across_evaluators``) and
    each row's per-group accuracies in long format (``leaderboard_groups.csv``)."""
    frame = leaderboard_frame(records)
    out_dir = Path(out_dir)
    summary = across_evaluators(frame)
    write_tables(
        out_dir,
        {
            "leaderboard.csv": frame.to_csv(index=False, float_format="%.4f"),
            "leaderboard_groups.csv": group_frame(records).to_csv(index=False, float_format="%.4f"),
            "leaderboard.md": render(frame, "pipe") + f"\n\n{CAPTION}\n",
            "leaderboard_across_evaluators.csv": summary.to_csv(index=False, float_format="%.4f"),
            "leaderboard_across_evaluators.md": render(summary, "pipe") + "\n",
        },
    )
    return frame


def render_report(frame: pd.DataFrame) -> str:
    """The terminal view: the leaderboard, then the summary when several evaluators took part."""
    text = render(frame) + f"\n{CAPTION}"
    if frame["evaluator"].nunique() > 1:
        text += "\n\nmean over evaluators:\n" + render(across_evaluators(frame))
    return text


def _committed(folder: Path) -> bool:
    """Whether ``folder``'s results.jsonl is tracked by git (a committed reference folder)."""
    try:
        found = subprocess.run(
            ["git", "ls-files", "--error-unmatch", "results.jsonl"], cwd=folder, capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return found.returncode == 0


def write_tables(folder: Path, tables: dict[str, str]) -> list[Path]:
    """Write each table (file name -> text) atomically into ``folder``; return the paths written.

    A committed reference folder gets no new files (only tables it already holds are rewritten),
    and a folder that cannot be written is skipped with a note: the tables are still printed.
    """
    folder = Path(folder)
    names = [n for n in tables if (folder / n).is_file()] if _committed(folder) else list(tables)
    written = []
    for name in names:
        try:
            write_text_atomic(folder / name, tables[name])
        except OSError as error:
            log.warning(
                "fairbench: note: tables not written to %s (%s); they are only printed", folder, why_not_written(error)
            )
            return written
        written.append(folder / name)
    return written
