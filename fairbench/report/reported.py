"""Numbers the papers report, kept as registry data beside fairbench's measurements.

``registry/reported/<paper>.yaml`` holds one paper's cells: (dataset, ipc, method) under its
evaluator, the metrics the paper gives, and a ``source`` citing where each number comes from. Its
``suites`` (fnmatch patterns) name the suites whose protocol is the paper's, so a cell of another
protocol (COBRA's 2,600-iteration DM, say) is never shown beside FairDD's number.

:func:`reported_rows` takes a leaderboard frame or result records and returns the reported values
for the cells they hold; the CLI and the leaderboard print them beside the measured ones.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pandas as pd

from ..core.errors import FairbenchError
from ..core.registry import entries
from ..evaluation.metrics import METRICS
from .tables import render

CELL_KEYS = ["dataset", "ipc", "evaluator", "method"]
REPORTED_COLUMNS = CELL_KEYS + list(METRICS) + ["paper", "source"]


def reported_cells() -> pd.DataFrame:
    """Every reported cell of every paper, one row each, with the paper's ``suites`` patterns."""
    rows = []
    for name, paper in entries("reported").items():
        where = f"registry/reported/{name}.yaml"
        for cell in paper.get("cells") or []:
            unknown = set(cell) - set(CELL_KEYS) - set(METRICS) - {"source"}
            if unknown or not cell.get("source"):
                raise FairbenchError(
                    f"{where}: a cell needs dataset, ipc, method, its metrics and a source; got {cell}"
                )
            rows.append(
                {
                    "evaluator": paper.get("evaluator", "convnet"),
                    **cell,
                    "paper": paper["paper"],
                    "suites": tuple(paper.get("suites") or ()),
                }
            )
    return pd.DataFrame(rows, columns=REPORTED_COLUMNS + ["suites"])


def _applies(patterns: tuple, suite: str | None) -> bool:
    return suite is None or any(fnmatch(suite, p) for p in patterns)


def reported_rows(table: pd.DataFrame | list[dict], suite: str | None = None) -> pd.DataFrame:
    """The reported values for the (dataset, ipc, evaluator, method) cells of ``table``.

    ``table`` is a leaderboard frame (its ``suite`` column, where it has one, decides which papers'
    protocols apply) or a list of records (each names its suite in ``config.suite``). ``suite``
    overrides both; None with neither means every paper applies. Columns: the cell keys, the
    metrics (NaN where the paper gives none), ``paper`` and ``source``.
    """
    if isinstance(table, list):
        cells = pd.DataFrame(
            [
                {**{k: r[k] for k in CELL_KEYS}, "suite": (r.get("config") or {}).get("suite")}
                for r in table
                if r.get("status", "ok") == "ok"
            ],
            columns=CELL_KEYS + ["suite"],
        )
    else:
        cells = table.copy()
        if "suite" not in cells:
            cells["suite"] = None
    if suite is not None:
        cells["suite"] = suite
    reported = reported_cells()
    if cells.empty or reported.empty:
        return pd.DataFrame(columns=REPORTED_COLUMNS)
    cells = cells[CELL_KEYS + ["suite"]].drop_duplicates()
    merged = cells.merge(reported, on=CELL_KEYS)
    merged = merged.loc[[_applies(p, s) for p, s in zip(merged["suites"], merged["suite"])]]
    return merged[REPORTED_COLUMNS].drop_duplicates().reset_index(drop=True)


def render_reported(frame: pd.DataFrame, suite: str) -> str:
    """The reported cells matching ``frame``'s, as a table to print under the measured one, or ""
    when no paper reports any of them. ``suite`` is a suite name or a suite file's path."""
    rows = reported_rows(frame, suite=Path(suite).stem)
    if rows.empty:
        return ""
    shown = rows.dropna(axis=1, how="all")
    return "reported (the papers' numbers; source column cites each):\n" + render(shown)
