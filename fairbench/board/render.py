"""``fairbench leaderboard render``: the entries as README tables, a static HTML page and LaTeX.

One table per (dataset, IPC). A row is a (method, evaluator, protocol) of the verified entries,
showing what fairbench *measured* (every evaluation run of every distillation seed, each once),
beside what the submitter reported (``reported acc``). Each mean carries the half-width of its 95%
interval. Each shown metric is ranked in tiers (:mod:`fairbench.report.ranks`: rows a Holm-corrected
Welch test over evaluation runs does not separate from the best share its rank), using the metric's
direction (``acc`` and ``worst_group_acc`` higher is better, the gaps lower); the headline metrics
get a rank column, and bold marks every row of a column's first tier. Where a row pools several
distillation seeds, ``acc sd seeds / eval`` shows the spread across seeds apart from that of
evaluation runs on one set. Entries older than a metric show it blank and are not ranked on it.

Published numbers from papers appear as extra rows, marked ``reported``, where fairbench measured
the same (dataset, IPC, method); they never take part in the best-value marking. They come from
:func:`published_numbers`, a list of dicts ``{dataset, ipc, method, acc, deo_max, deo_mean, source}``
(missing metrics as None), read from ``registry/reported/*.yaml`` by :mod:`fairbench.report.reported`.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.atomic import write_text_atomic
from ..core.errors import FairbenchError
from ..report.plots import FORMATS, write_frame_plots, write_sweep_plots
from ..report.ranks import HEADLINE, INTERVAL, TEST
from ..report.reported import reported_cells
from ..report.tables import GROUP_COLUMNS, add_ranks, group_rows, metric_runs, pooled_columns, run_at
from .entries import read_entries
from .manifest import MAX_NAME

SHOWN = ["acc", "deo_max", "deo_mean", "worst_group_acc", "eo_mean", "dp_mean"]
RANK_SUFFIX = " rank"
METRIC_COLUMNS = [c for m in SHOWN for c in ([m, m + RANK_SUFFIX] if m in HEADLINE else [m])]
SPREAD = "acc sd seeds / eval"
TABLE_COLUMNS = ["method", "evaluator", "protocol", *METRIC_COLUMNS, SPREAD, "reported acc", "runs", "source"]
CAPTION = f"{TEST}; {INTERVAL}; bold: every row of a column's first tier"
NOTES_FILE = "notes.md"  # the maintainer's words on the tables, kept beside the entries


def published_numbers() -> list[dict]:
    """Published numbers as ``{dataset, ipc, method, evaluator, acc, deo_max, deo_mean, ..., source}``."""
    cells = reported_cells().drop(columns=["suites"])
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in cells.to_dict("records")
    ]


def _pooled(entries: list[dict]) -> dict[tuple, tuple[list[dict], dict[tuple, dict]]]:
    """(dataset, ipc, method, evaluator, protocol) → (its entries, {(seed, eval seed): measured run}),
    each measured run once; a run carries ``group_acc`` where its entry measured it."""
    rows: dict[tuple, tuple[list[dict], dict[tuple, dict]]] = {}
    for entry in entries:
        members, runs = rows.setdefault(
            (entry["dataset"], entry["ipc"], entry["method"], entry["evaluator"], entry["protocol_id"]), ([], {})
        )
        members.append(entry)
        measured = entry["measured"]
        for j, seed in enumerate(measured["eval_seeds"]):
            runs.setdefault((entry["seed"], seed), run_at(measured, j))
    return rows


def source_label(submission) -> str:
    """The row's source: the submission's name, else its paper; text, one line, however the entry
    was edited (a name that is a dict or holds a newline is a stranger's, not a reason to crash)."""
    if not isinstance(submission, dict):
        return ""
    for key in ("name", "paper"):
        value = submission.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())[:MAX_NAME]
    return ""


def measured_frame(entries: list[dict]) -> pd.DataFrame:
    """One row per (dataset, ipc, method, evaluator, protocol), measured runs pooled once each,
    ranked within each (dataset, ipc) on every shown metric."""
    rows, row_runs = [], []
    for (dataset, ipc, method, evaluator, protocol), (members, runs) in _pooled(entries).items():
        seeds = sorted({seed for seed, _ in runs})
        by_seed = [[run for (s, _), run in runs.items() if s == seed] for seed in seeds]
        reported = [v for e in members for v in e["reported"]["metrics"]["acc"]["runs"]]
        submission = members[0].get("submission", {})
        row = (
            {
                "dataset": dataset,
                "ipc": ipc,
                "method": method,
                "evaluator": evaluator,
                "protocol": protocol,
                "reported acc": float(np.mean(reported)),
                "runs": len(runs),
                "source": source_label(submission),
            }
            | (members[0].get("sweep") or {})
            | pooled_columns(by_seed)
        )
        rows.append(row)
        row_runs.append(metric_runs(by_seed))
    return add_ranks(pd.DataFrame(rows), row_runs, ["dataset", "ipc"], SHOWN)


def measured_groups(entries: list[dict]) -> pd.DataFrame:
    """Each row's measured per-group accuracies, long format (:data:`fairbench.report.tables.GROUP_COLUMNS`)."""
    rows = []
    for key, (members, runs) in _pooled(entries).items():
        rows += group_rows(
            dict(zip(("dataset", "ipc", "method", "evaluator", "protocol"), key)),
            [entry["measured"] for entry in members],
            list(runs.values()),
        )
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _fmt(value, std=None) -> str:
    if _missing(value):
        return "–"
    return f"{value:.2f}" + (f" ± {std:.2f}" if not _missing(std) else "")


def _spread(row) -> str:
    """The spread of acc across seeds / of evaluation runs on one set."""
    return " / ".join(_fmt(row[f"acc_{kind}_std"]) for kind in ("seed", "eval"))


def table_rows(table: pd.DataFrame, reported: list[dict], bold) -> list[list[str]]:
    """Display rows of one (dataset, ipc) table: measured rows, each mean ± its 95% interval, the
    first tier of every column marked, then the published rows of the methods it measured."""
    rows = []
    for _, row in table.iterrows():
        cells = [row["method"], row["evaluator"], row["protocol"]]
        for metric in SHOWN:
            text = _fmt(row[metric], row[f"{metric}_ci95"])
            rank = row[f"{metric}_rank"]
            cells.append(bold(text) if not _missing(rank) and rank == 1 else text)
            if metric in HEADLINE:
                cells.append("–" if _missing(rank) else str(rank))
        cells += [_spread(row), _fmt(row["reported acc"]), str(row["runs"]), row["source"]]
        rows.append(cells)
    methods = set(table["method"])
    for paper in reported:
        if paper["method"] in methods:
            rows.append(
                [
                    paper["method"],
                    "reported",
                    "–",
                    *(_fmt(paper.get(m)) if not c.endswith(RANK_SUFFIX) else "–" for m, c in _metric_of_columns()),
                    "–",
                    "–",
                    "–",
                    paper.get("source", ""),
                ]
            )
    return rows


def _metric_of_columns():
    """(metric, column) of each metric column of a table."""
    return [(c.removesuffix(RANK_SUFFIX), c) for c in METRIC_COLUMNS]


def _tables(frame: pd.DataFrame, reported: list[dict]):
    for (dataset, ipc), table in frame.groupby(["dataset", "ipc"], sort=True):
        papers = [r for r in reported if r["dataset"] == dataset and r["ipc"] == ipc]
        yield dataset, ipc, table.sort_values("acc", ascending=False).reset_index(drop=True), papers


def sweep_figures(plots: Path, dataset: str, ipc: int) -> list[Path]:
    """The sweep figures of one (dataset, IPC) in ``plots`` (``sweep-<key>-<dataset>-ipc<ipc>...``)."""
    found = [*plots.glob(f"sweep-*-{dataset}-ipc{ipc}.svg"), *plots.glob(f"sweep-*-{dataset}-ipc{ipc}-*.svg")]
    return sorted(set(found))


def markdown(frame: pd.DataFrame, reported: list[dict], plots: Path | None = None, notes: str = "") -> str:
    """The README tables; each (dataset, IPC) with its trade-off plot, and its group bars where
    ``plots`` holds them; the maintainer's ``notes`` (Markdown) between the legend and the tables."""
    lines = [
        "# fairbench leaderboard",
        "",
        "Every number is fairbench's own measurement of a verified submission (`fairbench verify`: fresh "
        "evaluation seeds, test-contact check): the mean over evaluation runs of all seeds ± the half-width "
        "of its 95% interval. Ranks are tiers: rows the runs do not separate from the best share its rank, "
        "and **bold** marks every row of a column's first tier (accuracies higher, gaps lower). "
        "`acc sd seeds / eval`: the spread of acc across distillation seeds and of evaluation runs on one set. "
        "`reported acc`: what the submitter claimed; `reported` rows: published numbers. Rows of different "
        "protocols are never pooled; `–`: not measured (entries older than a metric).",
        "",
    ]
    if notes.strip():
        lines += [notes.strip(), ""]
    for dataset, ipc, table, papers in _tables(frame, reported):
        lines += [
            f"## {dataset}, IPC {ipc}",
            "",
            f"*{CAPTION}.*",
            "",
            "| " + " | ".join(TABLE_COLUMNS) + " |",
            "|" + "---|" * len(TABLE_COLUMNS),
        ]
        lines += [
            "| " + " | ".join(_markdown_escape(c).replace("\x00", "**").replace("\x01", "**") for c in r) + " |"
            for r in table_rows(table, papers, lambda t: f"\x00{t}\x01")
        ]
        lines += ["", f"![accuracy against DEO_A](plots/{dataset}-ipc{ipc}-tradeoff.svg)"]
        if plots is not None and (plots / f"{dataset}-ipc{ipc}-groups.svg").is_file():
            lines.append(f"![accuracy per group](plots/{dataset}-ipc{ipc}-groups.svg)")
        if plots is not None:  # a sweep's figures, one per swept key
            lines += [f"![{p.stem}](plots/{p.name})" for p in sweep_figures(plots, dataset, ipc)]
        lines.append("")
    return "\n".join(lines) + "\n"


_LATEX = {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$"}
_MARKDOWN_SPECIAL = "\\`*_[]<>|#!"


def _latex_escape(text: str) -> str:
    return "".join(_LATEX.get(c) or ("\\" + c if c in "&%$#_{}" else c) for c in str(text))


def _markdown_escape(text: str) -> str:
    """A table cell as literal text: Markdown's specials backslash-escaped (``|`` would end the
    cell, ``<`` open raw HTML), ``&`` as an entity, one line."""
    text = " ".join(str(text).split())
    return "".join("\\" + c if c in _MARKDOWN_SPECIAL else "&amp;" if c == "&" else c for c in text)


_LATEX_CAPTION = _latex_escape(CAPTION).replace("α", r"$\alpha$")


def latex(frame: pd.DataFrame, reported: list[dict]) -> str:
    """booktabs tables, one per (dataset, IPC), best values in bold."""
    blocks = []
    columns = TABLE_COLUMNS[:-1]
    for dataset, ipc, table, papers in _tables(frame, reported):
        rows = [r[:-1] for r in table_rows(table, papers, lambda t: f"\x00{t}\x01")]
        body = [
            " & ".join(_latex_escape(c).replace("\x00", r"\textbf{").replace("\x01", "}") for c in r) + r" \\"
            for r in rows
        ]
        blocks.append(
            "\n".join(
                [
                    r"\begin{table}[t]",
                    r"\centering",
                    rf"\caption{{{_latex_escape(dataset)}, IPC {ipc}. {_LATEX_CAPTION}.}}",
                    r"\begin{tabular}{" + "l" * 3 + "r" * (len(columns) - 3) + "}",
                    r"\toprule",
                    " & ".join(_latex_escape(c) for c in columns) + r" \\",
                    r"\midrule",
                    *body,
                    r"\bottomrule",
                    r"\end{tabular}",
                    r"\end{table}",
                ]
            )
        )
    return "\n\n".join(blocks) + "\n"


_SORT_SCRIPT = """
document.querySelectorAll('table.board th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var up = th.dataset.up !== '1'; th.dataset.up = up ? '1' : '0';
    var key = function (tr) { var t = tr.cells[th.cellIndex].textContent; var v = parseFloat(t);
                              return isNaN(v) ? t : v; };
    Array.from(body.rows).sort(function (a, b) { var x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); }).forEach(function (tr) { body.appendChild(tr); });
  });
});
"""


def page(frame: pd.DataFrame, reported: list[dict], plots: Path, notes: str = "") -> str:
    """A self-contained HTML page: sortable tables (click a header), the plots inlined, the
    maintainer's ``notes`` as their Markdown source in a preformatted block."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>fairbench leaderboard</title><style>",
        "body{font-family:sans-serif;max-width:90em;margin:auto;padding:1em}table{border-collapse:collapse;"
        "font-size:.85em}th,td{padding:.25em .5em;border-bottom:1px solid #ddd;text-align:right;"
        "white-space:nowrap}th{cursor:pointer;background:#f4f4f4;white-space:normal}"
        "td:nth-child(-n+3){text-align:left}div.scroll{overflow-x:auto}img.tradeoff{width:45%}"
        "img.groups{width:100%}.caption{font-size:.9em;color:#444}pre.notes{font-size:.8em;white-space:pre-wrap}",
        "</style></head><body><h1>fairbench leaderboard</h1>",
        "<p>fairbench's own measurements of verified submissions, each mean ± the half-width of its 95% "
        "interval; rows the runs do not separate from the best share its rank, and bold marks every row of a "
        "column's first tier (accuracies higher, gaps lower). Click a column header to sort.</p>",
    ]
    if notes.strip():  # Markdown source, kept as written: its tables stay aligned in a monospace block
        parts.append(f"<pre class='notes'>{html.escape(notes.strip())}</pre>")
    for dataset, ipc, table, papers in _tables(frame, reported):
        parts.append(
            f"<h2>{html.escape(dataset)}, IPC {ipc}</h2><p class='caption'>{html.escape(CAPTION)}.</p>"
            "<div class='scroll'><table class='board'><thead><tr>"
        )
        parts += [f"<th>{html.escape(c)}</th>" for c in TABLE_COLUMNS]
        parts.append("</tr></thead><tbody>")
        for row in table_rows(table, papers, lambda t: f"\x00{t}\x01"):
            cells = (html.escape(c).replace("\x00", "<b>").replace("\x01", "</b>") for c in row)
            parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append("</tbody></table></div><p>")
        for kind in ("tradeoff", "groups"):
            png = plots / f"{dataset}-ipc{ipc}-{kind}.png"
            if png.is_file():
                data = base64.b64encode(png.read_bytes()).decode()
                parts.append(f"<img class='{kind}' alt='{kind}' src='data:image/png;base64,{data}'>")
        parts.append("</p>")
    parts.append(f"<script>{_SORT_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"


def render_leaderboard(root: str | Path) -> list[Path]:
    """``root/README.md``, ``root/index.html``, ``root/leaderboard.tex`` and ``root/plots/`` from
    ``root/entries/``, with ``root/notes.md`` (what the maintainer says of the tables: their budgets,
    what was measured of them) under the legend where it exists."""
    root = Path(root)
    entries = read_entries(root)
    if not entries:
        raise FairbenchError(f"no entries in {root / 'entries'}; add one with fairbench leaderboard add BUNDLE")
    frame = measured_frame(entries)
    reported = published_numbers()
    plots = root / "plots"
    for stale in plots.glob("*.*"):  # plots/ is rebuilt from the entries: no figure of a removed row stays
        if stale.suffix[1:] in FORMATS:
            stale.unlink()
    written = write_frame_plots(frame, plots, measured_groups(entries))
    written += write_sweep_plots(frame, plots)  # entries of a sweep (``sweep`` in an entry) get its figures
    notes = (root / NOTES_FILE).read_text() if (root / NOTES_FILE).is_file() else ""
    for name, text in (
        ("README.md", markdown(frame, reported, plots, notes)),
        ("leaderboard.tex", latex(frame, reported)),
        ("index.html", page(frame, reported, plots, notes)),
    ):
        write_text_atomic(root / name, text)
        written.append(root / name)
    return written
