"""Leaderboard tables rendered from result records: CSV, Markdown and the terminal.

A row is a (dataset, ipc, evaluator, method) cell; the evaluation runs of all its distillation
seeds are pooled, so ``acc_std`` covers both sources of variance. Failed cells are left out.

``overhead`` is what fairness costs: the method's mean time per distillation iteration over its
base's (``dm+wbary`` over ``dm``), for the same dataset and IPC, compared only between records
from the same device; it is blank where the base was not run on that device.

The cross-architecture summary has one row per (dataset, ipc, method): each metric's mean over the
evaluators, every evaluator weighted equally, so a synthetic set is judged on how well it
transfers, not only on the network it was distilled with.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from .metrics import METRICS
from .outdir import write_tables

KEYS = ["dataset", "ipc", "evaluator", "method"]
COLUMNS = KEYS + ["acc", "acc_std", "deo_max", "deo_max_std", "deo_mean", "deo_mean_std",
                  "suff_max", "suff_mean", "worst_group_acc", "distill_s", "iter_ms", "overhead", "runs"]
SUMMARY_KEYS = ["dataset", "ipc", "method"]
SUMMARY_COLUMNS = SUMMARY_KEYS + list(METRICS) + ["evaluators"]


def _overheads(records: list[dict]) -> dict[tuple, float]:
    """(dataset, ipc, method) → iteration time over the base's, averaged over the devices that ran both."""
    times: dict[tuple, list[float]] = defaultdict(list)
    for record in records:
        if record.get("iter_ms") is not None:   # None: a reused set measured on another device
            key = (record["dataset"], record["ipc"], record.get("timing_device", record["device"]), record["method"])
            times[key].append(record["iter_ms"])
    ratios: dict[tuple, list[float]] = defaultdict(list)
    for (dataset, ipc, device, method), values in times.items():
        base = times.get((dataset, ipc, device, method.partition("+")[0]))
        if base and np.mean(base) > 0:
            ratios[(dataset, ipc, method)].append(float(np.mean(values) / np.mean(base)))
    return {key: float(np.mean(values)) for key, values in ratios.items()}


def leaderboard_frame(records: list[dict]) -> pd.DataFrame:
    records = [r for r in records if r.get("status") == "ok"]
    overheads = _overheads(records)
    pooled: dict[tuple, dict] = {}
    for record in records:
        row = pooled.setdefault(tuple(record[k] for k in KEYS),
                                {"runs": {m: [] for m in METRICS}, "distill_s": [], "iter_ms": []})
        for metric in METRICS:
            row["runs"][metric] += record["metrics"][metric]["runs"]
        if record.get("iter_ms") is not None:
            row["distill_s"].append(record["distill_s"])
            row["iter_ms"].append(record["iter_ms"])
    rows = []
    for key, row in pooled.items():
        out = dict(zip(KEYS, key))
        for metric, runs in row["runs"].items():
            out[metric] = float(np.mean(runs))
            out[f"{metric}_std"] = float(np.std(runs))
        out["distill_s"] = float(np.mean(row["distill_s"])) if row["distill_s"] else float("nan")
        out["iter_ms"] = float(np.mean(row["iter_ms"])) if row["iter_ms"] else float("nan")
        out["overhead"] = overheads.get((out["dataset"], out["ipc"], out["method"]), float("nan"))
        out["runs"] = len(row["runs"]["acc"])
        rows.append(out)
    return pd.DataFrame(rows, columns=COLUMNS) if rows else pd.DataFrame(columns=COLUMNS)


def across_evaluators(frame: pd.DataFrame) -> pd.DataFrame:
    """The mean of every metric over the evaluators of each (dataset, ipc, method)."""
    if frame.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    grouped = frame.groupby(SUMMARY_KEYS, sort=False)
    summary = grouped[list(METRICS)].mean()
    summary["evaluators"] = grouped["evaluator"].agg(lambda names: ", ".join(names))
    return summary.reset_index()[SUMMARY_COLUMNS]


def render(frame: pd.DataFrame, fmt: str = "simple") -> str:
    return tabulate(frame, headers="keys", tablefmt=fmt, showindex=False, floatfmt=".2f")


def write_leaderboard(out_dir: Path, records: list[dict]) -> pd.DataFrame:
    """Write the leaderboard and its summary across evaluators (``leaderboard_across_evaluators``)."""
    frame = leaderboard_frame(records)
    out_dir = Path(out_dir)
    summary = across_evaluators(frame)
    write_tables(out_dir, {
        "leaderboard.csv": frame.to_csv(index=False, float_format="%.4f"),
        "leaderboard.md": render(frame, "pipe") + "\n",
        "leaderboard_across_evaluators.csv": summary.to_csv(index=False, float_format="%.4f"),
        "leaderboard_across_evaluators.md": render(summary, "pipe") + "\n"})
    return frame


def render_report(frame: pd.DataFrame) -> str:
    """The terminal view: the leaderboard, then the summary when several evaluators took part."""
    text = render(frame)
    if frame["evaluator"].nunique() > 1:
        text += "\n\nmean over evaluators:\n" + render(across_evaluators(frame))
    return text
