"""Figures people read: the accuracy-fairness trade-off, group accuracies, synthetic image grids.

Every figure is written as PNG and SVG. Figures are built on matplotlib's object API
(``Figure``, no pyplot), so nothing here touches the global backend or needs a display.

- trade-off: test accuracy against DEO_A (``deo_mean``) for one (dataset, IPC), one point per
  row labelled with its method; the Pareto front (no other row has higher accuracy *and* lower
  DEO_A) is drawn as a step line.
- group accuracies: for each row, overall accuracy beside the worst group's accuracy (records
  hold ``worst_group_acc``; per-group accuracies would need a ``group_acc`` metric).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

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
    front = [i for i in range(len(acc))
             if not any((acc[j] >= acc[i]) and (deo[j] <= deo[i]) and (acc[j] > acc[i] or deo[j] < deo[i])
                        for j in range(len(acc)))]
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
    ax.errorbar(deo, acc, xerr=frame.get("deo_mean_std"), yerr=frame.get("acc_std"), fmt="o", capsize=3,
                color="tab:blue", ecolor="lightgray")
    front = pareto_front(acc, deo)
    ax.step(deo[front], acc[front], where="post", color="tab:red", lw=1.2, label="Pareto front")
    ax.scatter(deo[front], acc[front], s=90, facecolors="none", edgecolors="tab:red")
    for x, y, label in zip(deo, acc, labels):
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("DEO_A (%) — lower is fairer")
    ax.set_ylabel("accuracy (%) — higher is better")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return figure


def group_bars_figure(frame: pd.DataFrame, title: str) -> Figure:
    figure = Figure(figsize=(max(4.5, 1.1 * len(frame) + 2), 3.8))
    ax = figure.subplots()
    x = np.arange(len(frame))
    ax.bar(x - 0.2, frame["acc"], 0.4, label="overall accuracy", color="tab:blue")
    ax.bar(x + 0.2, frame["worst_group_acc"], 0.4, label="worst group's accuracy", color="tab:orange")
    ax.set_xticks(x, row_labels(frame), rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return figure


def write_frame_plots(frame: pd.DataFrame, folder: Path) -> list[Path]:
    """The trade-off and group-accuracy figures of each (dataset, ipc) of a leaderboard frame."""
    paths = []
    for (dataset, ipc), table in frame.groupby(["dataset", "ipc"], sort=False):
        table = table.reset_index(drop=True)
        name = f"{dataset}-ipc{ipc}"
        paths += save(tradeoff_figure(table, f"{dataset}, IPC {ipc}"), Path(folder) / f"{name}-tradeoff")
        paths += save(group_bars_figure(table, f"{dataset}, IPC {ipc}"), Path(folder) / f"{name}-groups")
    return paths


def write_run_plots(out: str | Path, records: list[dict]) -> list[Path]:
    """``out/plots/``: the figures of a run folder, beside its tables (``fairbench run`` calls it)."""
    from .leaderboard import leaderboard_frame

    return write_frame_plots(leaderboard_frame(records), Path(out) / "plots")


def synset_figure(images: np.ndarray, labels: np.ndarray, class_names: list[str],
                  makeup: list[str]) -> Figure:
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
        axes[r][0].text(-0.15, 0.5, f"{class_names[c]}\n{makeup[c]}", transform=axes[r][0].transAxes,
                        ha="right", va="center", fontsize=6)
    figure.subplots_adjust(left=0.22, top=0.93, wspace=0.05, hspace=0.1)
    return figure
