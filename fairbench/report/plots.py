"""Figures people read: the accuracy-fairness trade-off, group accuracies, synthetic image grids.

Every figure is written as PNG and SVG. Figures are built on matplotlib's object API
(``Figure``, no pyplot), so nothing here touches the global backend or needs a display.

- trade-off: test accuracy against DEO_A (``deo_mean``) for one (dataset, IPC), one point per
  row labelled with its method; the Pareto front (no other row has higher accuracy *and* lower
  DEO_A) is drawn as a step line.
- group accuracies: each group's test accuracy, one bar per row in each group, with the spread
  over evaluation runs: a fair set lifts the minority groups' bars, not only the mean.
- sweeps: for each swept key (a column of a sweep's leaderboard), each metric against the swept
  value, one line per method, error bars the spread over evaluation runs; a row that is the same
  at every value (``dm`` under a sweep of ``distill.dm+cobra.warmup_epochs``) is a dashed level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from adjustText import adjust_text
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..evaluation.metrics import METRICS
from .tables import COLUMNS, group_frame, leaderboard_frame

FORMATS = ("png", "svg")


def save(figure: Figure, stem: Path) -> list[Path]:
    """``stem.png`` and ``stem.svg``."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(f"{stem.name}.{fmt}") for fmt in FORMATS]
    for path in paths:
        figure.savefig(path, dpi=150, bbox_inches="tight")
    return paths


def pareto_front(acc, deo) -> list[int]:
    """Indices of the points no other point beats on both axes (higher acc, lower deo), by deo."""
    acc, deo = np.asarray(acc, float), np.asarray(deo, float)
    front = [
        i
        for i in range(len(acc))
        if not any(
            (acc[j] >= acc[i]) and (deo[j] <= deo[i]) and (acc[j] > acc[i] or deo[j] < deo[i]) for j in range(len(acc))
        )
    ]
    return sorted(front, key=lambda i: (deo[i], -acc[i]))


def row_labels(frame: pd.DataFrame) -> list[str]:
    """Method names, with the evaluator and protocol added only where they tell rows apart."""
    labels = []
    for _, row in frame.iterrows():
        label = row["method"]
        if frame["evaluator"].nunique() > 1:
            label += f" ({row['evaluator']})"
        if (frame["method"] == row["method"]).sum() > frame["evaluator"].nunique():
            label += f" [{row['protocol']}]"
        labels.append(label)
    return labels


def tradeoff_figure(frame: pd.DataFrame, title: str) -> Figure:
    figure = Figure(figsize=(5.5, 4.2))
    ax = figure.subplots()
    labels = row_labels(frame)
    acc, deo = frame["acc"].to_numpy(float), frame["deo_mean"].to_numpy(float)
    ax.errorbar(
        deo,
        acc,
        xerr=frame.get("deo_mean_std"),
        yerr=frame.get("acc_std"),
        fmt="o",
        capsize=3,
        color="tab:blue",
        ecolor="lightgray",
    )
    front = pareto_front(acc, deo)
    ax.step(deo[front], acc[front], where="post", color="tab:red", lw=1.2, label="Pareto front")
    ax.scatter(deo[front], acc[front], s=90, facecolors="none", edgecolors="tab:red")
    ax.set_xlabel("DEO_A (%) — lower is fairer")
    ax.set_ylabel("accuracy (%) — higher is better")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    texts = [ax.text(x, y, label, fontsize=8) for x, y, label in zip(deo, acc, labels)]
    # close rows (dm+fairdd and dm+cobra) would print their labels over each other: adjustText moves
    # them apart, with a thin line back to their point; deterministic for the same figure
    FigureCanvasAgg(figure).draw()
    adjust_text(texts, x=deo, y=acc, ax=ax, arrowprops={"arrowstyle": "-", "color": "gray", "lw": 0.5})
    return figure


def group_bars_figure(groups: pd.DataFrame, title: str) -> Figure:
    """``groups``: long-format per-group accuracies (``leaderboard.GROUP_COLUMNS``) of one
    (dataset, ipc); one bar per leaderboard row in each group, error bars the runs' spread."""
    per_row = list(groups.groupby(["evaluator", "method", "protocol"], sort=False))
    rows = pd.DataFrame([key for key, _ in per_row], columns=["evaluator", "method", "protocol"])
    names = list(dict.fromkeys(groups["group"]))
    # wide enough that each bar stays readable when index.html shows the figure at page width
    figure = Figure(figsize=(min(14.0, max(7.0, 0.3 * len(names) * len(rows) + 2.5)), 5.0))
    ax = figure.subplots()
    width = 0.8 / len(rows)
    x = np.arange(len(names))
    for k, (label, (_, bars)) in enumerate(zip(row_labels(rows), per_row)):
        bars = bars.set_index("group").reindex(names)
        ax.bar(
            x - 0.4 + (k + 0.5) * width,
            bars["acc"],
            width,
            yerr=bars["acc_std"],
            capsize=2,
            label=label,
            error_kw={"elinewidth": 0.8, "ecolor": "dimgray"},
        )
    ax.set_xticks(
        x, names, rotation=20 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center", fontsize=8
    )
    ax.set_xlabel("group")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=7, ncols=min(len(rows), 4), loc="upper left", bbox_to_anchor=(0, -0.22))
    return figure


def write_frame_plots(frame: pd.DataFrame, folder: Path, groups: pd.DataFrame | None = None) -> list[Path]:
    """The trade-off figure of each (dataset, ipc) of a leaderboard frame, and its group-accuracy
    bars where ``groups`` (long format, ``leaderboard.GROUP_COLUMNS``) has rows for it."""
    paths = []
    for (dataset, ipc), table in frame.groupby(["dataset", "ipc"], sort=False):
        table = table.reset_index(drop=True)
        name = f"{dataset}-ipc{ipc}"
        paths += save(tradeoff_figure(table, f"{dataset}, IPC {ipc}"), Path(folder) / f"{name}-tradeoff")
        bars = None if groups is None else groups[(groups["dataset"] == dataset) & (groups["ipc"] == ipc)]
        if bars is not None and not bars.empty:
            paths += save(
                group_bars_figure(bars, f"{dataset}, IPC {ipc}: accuracy per group"), Path(folder) / f"{name}-groups"
            )
    return paths


def sweep_columns(frame: pd.DataFrame) -> list[str]:
    """The swept keys of a leaderboard frame: its columns that are not the table's own."""
    own = set(COLUMNS) | {f"{m}_std" for m in METRICS}
    return [c for c in frame.columns if c not in own and "." in c]


def sweep_figure(frame: pd.DataFrame, key: str, title: str) -> Figure:
    """Each metric of ``frame`` (one dataset, IPC and evaluator) against ``key``'s values."""
    metrics = [m for m in METRICS if m in frame.columns]
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    figure = Figure(figsize=(4.0 * cols, 3.2 * rows + 0.6))
    axes = figure.subplots(rows, cols, squeeze=False).flatten()
    values = list(dict.fromkeys(frame.loc[frame[key].notna(), key].tolist()))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    values = sorted(values, key=float) if numeric else values
    where = {v: float(v) if numeric else float(i) for i, v in enumerate(values)}  # categorical: in sweep order
    for method, lines in frame.groupby("method", sort=False):
        at = lines[lines[key].notna()].copy()
        level = lines[lines[key].isna()]
        at["_x"] = [where[v] for v in at[key]]
        at = at.sort_values("_x")
        for ax, metric in zip(axes, metrics):
            if not at.empty:
                ax.errorbar(at["_x"], at[metric], yerr=at.get(f"{metric}_std"), marker="o", capsize=3, label=method)
            elif not level.empty and values:
                ax.axhline(float(level[metric].mean()), ls="--", lw=1, color="gray", label=f"{method} (all values)")
    for ax, metric in zip(axes, metrics):
        ax.set_xlabel(key)
        ax.set_ylabel(f"{metric} (%)")
        ax.set_xticks(list(where.values()), [str(v) for v in values])
        ax.grid(alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_axis_off()
    axes[0].legend(fontsize=7, loc="best")
    figure.suptitle(title)
    return figure


def write_sweep_plots(frame: pd.DataFrame, folder: Path) -> list[Path]:
    """``folder/sweep-<key>-<dataset>-ipc<ipc>``: the sweep figure of each swept key of ``frame``
    (a leaderboard frame with every metric's spread), per (dataset, IPC, evaluator)."""
    paths = []
    for key in sweep_columns(frame):
        tables = list(frame.groupby(["dataset", "ipc", "evaluator"], sort=False))
        for (dataset, ipc, evaluator), table in tables:
            if table[key].notna().any():
                # one figure per value of the other swept keys; a row the same at every value of
                # one of them (None there) belongs to each of its figures
                others = [k for k in sweep_columns(frame) if k != key and table[k].notna().any()]
                combos = table[others].dropna().drop_duplicates().itertuples(index=False) if others else [()]
                for fixed in combos:
                    part = table
                    for k, v in zip(others, fixed):
                        part = part[(part[k] == v) | part[k].isna()]
                    suffix = "".join(f"-{k}={v}" for k, v in zip(others, fixed))
                    where = f"{dataset}, IPC {ipc}, {evaluator}" + "".join(f", {k}={v}" for k, v in zip(others, fixed))
                    name = f"sweep-{key}-{dataset}-ipc{ipc}" + (f"-{evaluator}" if len(tables) > 1 else "") + suffix
                    paths += save(sweep_figure(part, key, f"{where}: against {key}"), Path(folder) / name)
    return paths


def write_run_plots(out: str | Path, records: list[dict]) -> list[Path]:
    """``out/plots/``: the figures of a run folder, beside its tables (``fairbench run`` calls it),
    and a sweep figure per swept key."""
    folder = Path(out) / "plots"
    paths = write_frame_plots(leaderboard_frame(records), folder, group_frame(records))
    return paths + write_sweep_plots(leaderboard_frame(records, every_std=True), folder)


def synset_figure(images: np.ndarray, labels: np.ndarray, class_names: list[str], makeup: list[str]) -> Figure:
    """One row per class of [0, 1] images (N, C, H, W), each row titled with the class's group
    make-up in the real training data."""
    classes = sorted(set(labels.tolist()))
    per_row = max(int((labels == c).sum()) for c in classes)
    cols = min(per_row, 20)
    figure = Figure(figsize=(0.6 * cols + 2.8, 0.65 * len(classes) + 0.4))
    axes = figure.subplots(len(classes), cols, squeeze=False)
    for r, c in enumerate(classes):
        row = images[labels == c][:cols]
        for k in range(cols):
            ax = axes[r][k]
            ax.set_axis_off()
            if k < len(row):
                image = row[k].transpose(1, 2, 0)
                ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        axes[r][0].text(
            -0.15,
            0.5,
            f"{class_names[c]}\n{makeup[c]}",
            transform=axes[r][0].transAxes,
            ha="right",
            va="center",
            fontsize=6,
        )
    figure.subplots_adjust(left=0.22, top=0.93, wspace=0.05, hspace=0.1)
    return figure
