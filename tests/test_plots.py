"""Figures and rendered tables: the Pareto front, best-value marking by direction, reported rows,
the plots a run writes, and the synthetic-set grid."""

import numpy as np
import pandas as pd
import pytest
import torch

from fairbench.board.render import TABLE_COLUMNS, latex, markdown, measured_frame, measured_groups, table_rows
from fairbench.evaluation.metrics import METRICS
from fairbench.report.plots import group_bars_figure, pareto_front, write_frame_plots
from fairbench.report.show import group_makeup
from fairbench.report.tables import group_frame


def test_the_pareto_front_keeps_only_undominated_points():
    acc = [80, 70, 90, 60, 85]
    deo = [10, 5, 30, 40, 10]
    # (60, 40) is beaten by everything; (80, 10) by (85, 10), which ties on DEO with higher accuracy
    assert pareto_front(acc, deo) == [1, 4, 2]


def entry(method, acc, deo, worst, protocol="p1", seed=0):
    runs = {
        "acc": [acc - 1, acc + 1],
        "deo_max": [deo + 5] * 2,
        "deo_mean": [deo] * 2,
        "suff_max": [0, 0],
        "suff_mean": [0, 0],
        "worst_group_acc": [worst] * 2,
    }
    metrics = {m: {"mean": sum(r) / 2, "std": 0.0, "runs": r} for m, r in runs.items()}
    return {
        "dataset": "cmnist",
        "ipc": 10,
        "method": method,
        "evaluator": "convnet",
        "protocol_id": protocol,
        "seed": seed,
        "reported": {"metrics": metrics},
        "submission": {"name": "team"},
        "measured": {"metrics": metrics, "eval_seeds": [11, 12]},
    }


def test_best_values_are_marked_by_the_metric_direction():
    frame = measured_frame([entry("dm", 30, 90, 5), entry("dm+fairdd", 90, 10, 60), entry("dm+cobra", 85, 8, 70)])
    rows = {r[0]: r for r in table_rows(frame.set_index("method", drop=False), [], lambda t: f"*{t}*")}
    acc, deo_mean, worst = (TABLE_COLUMNS.index(c) for c in ("acc", "deo_mean", "worst_group_acc"))
    # 90 ± 1 against 85 ± 1 over two runs each: Welch p = 0.036, Holm-corrected (second of two) still < 0.05
    assert rows["dm+fairdd"][acc].startswith("*90.00") and not rows["dm+cobra"][acc].startswith("*")
    assert rows["dm+cobra"][deo_mean].startswith("*8.00") and not rows["dm"][deo_mean].startswith("*")
    assert rows["dm+cobra"][worst].startswith("*70.00")


def test_rows_of_two_protocols_and_seeds_pool_only_within_a_protocol():
    frame = measured_frame(
        [entry("dm", 30, 90, 5, "p1", seed=0), entry("dm", 50, 90, 5, "p1", seed=1), entry("dm", 80, 90, 5, "p2")]
    )
    assert sorted(zip(frame.protocol, frame.acc, frame.runs)) == [("p1", 40.0, 4), ("p2", 80.0, 2)]


def test_reported_rows_appear_beside_measured_methods_only():
    frame = measured_frame([entry("dm", 30, 90, 5), entry("dm+fairdd", 90, 10, 60)])
    reported = [
        {
            "dataset": "cmnist",
            "ipc": 10,
            "method": "dm+fairdd",
            "acc": 94.61,
            "deo_max": 17.04,
            "deo_mean": 7.95,
            "source": "FairDD Table 1",
        },
        {
            "dataset": "cmnist",
            "ipc": 10,
            "method": "mtt",
            "acc": 92.0,
            "deo_max": 25.7,
            "deo_mean": 14.86,
            "source": "FairDD Table 1",
        },
    ]
    text = markdown(frame, reported)
    # published rows have no rank and no interval
    assert "| dm+fairdd | reported | – | 94.61 | – | 17.04 | 7.95 | – |" in text and "mtt" not in text
    assert "**90.00 ± 12.71**" in text  # the published 94.61 is not in the first tier; ± the 95% CI of 2 runs
    assert r"\textbf{90.00 $\pm$ 12.71}" in latex(frame, reported)


def test_frame_plots_are_png_and_svg(tmp_path):
    frame = pd.DataFrame(
        {
            "dataset": ["d"] * 2,
            "ipc": [10] * 2,
            "method": ["dm", "dm+fairdd"],
            "evaluator": ["convnet"] * 2,
            "protocol": ["a", "b"],
            "acc": [30.0, 80.0],
            "acc_std": [1.0, 1.0],
            "deo_mean": [90.0, 10.0],
            "deo_mean_std": [1.0, 1.0],
            "worst_group_acc": [5.0, 60.0],
        }
    )
    groups = pd.DataFrame(
        [
            {
                "dataset": "d",
                "ipc": 10,
                "evaluator": "convnet",
                "method": m,
                "protocol": p,
                "group": g,
                "acc": 50.0,
                "acc_std": 1.0,
                "runs": 2,
            }
            for m, p in (("dm", "a"), ("dm+fairdd", "b"))
            for g in ("red", "green")
        ]
    )
    paths = write_frame_plots(frame, tmp_path, groups)
    assert sorted(p.name for p in paths) == [
        "d-ipc10-groups.png",
        "d-ipc10-groups.svg",
        "d-ipc10-tradeoff.png",
        "d-ipc10-tradeoff.svg",
    ]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and b"<svg" in paths[1].read_bytes()[:500]
    # records older than per-group accuracies: the trade-off alone
    assert [p.name for p in write_frame_plots(frame, tmp_path / "old")] == [
        "d-ipc10-tradeoff.png",
        "d-ipc10-tradeoff.svg",
    ]


def record(method, seed, eval_seeds, group_runs, protocol="p1"):
    acc = [50.0] * len(group_runs)
    metrics = {m: {"mean": 0.0, "std": 0.0, "runs": acc} for m in METRICS}
    return {
        "status": "ok",
        "dataset": "d",
        "ipc": 10,
        "evaluator": "convnet",
        "method": method,
        "seed": seed,
        "protocol_id": protocol,
        "eval_seeds": eval_seeds,
        "metrics": metrics,
        "group_acc": {"groups": ["red", "green"], "runs": group_runs},
    }


def test_group_accuracies_pool_each_run_once_and_become_one_bar_per_row_and_group():
    records = [
        record("dm", 0, [1, 2], [[90.0, 10.0], [80.0, 20.0]]),
        record("dm", 0, [1, 2, 3], [[90.0, 10.0], [80.0, 20.0], [70.0, 30.0]]),  # num_eval raised
        record("dm+fairdd", 0, [1], [[60.0, None]]),
    ]  # no green test sample
    groups = group_frame(records)
    dm = groups[groups.method == "dm"].set_index("group")
    assert dm.loc["red", "acc"] == pytest.approx(80.0) and dm.loc["green", "acc"] == pytest.approx(20.0)
    assert (dm.runs == 3).all() and dm.loc["red", "acc_std"] == pytest.approx(np.std([90, 80, 70]))
    fair = groups[groups.method == "dm+fairdd"].set_index("group")
    assert fair.loc["red", "acc"] == 60.0 and np.isnan(fair.loc["green", "acc"])
    (ax,) = group_bars_figure(groups, "d").axes
    heights = [bar.get_height() for bar in ax.patches]
    assert heights[:2] == [pytest.approx(80.0), pytest.approx(20.0)] and heights[2] == 60.0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["red", "green"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["dm", "dm+fairdd"]


def test_entries_carry_measured_group_accuracies_to_the_bars():
    entries = [entry("dm", 30, 90, 5), entry("dm+fairdd", 90, 10, 60)]
    entries[1]["measured"]["group_acc"] = {"groups": ["red", "green"], "runs": [[95.0, 85.0], [93.0, 87.0]]}
    groups = measured_groups(entries)  # the dm entry predates per-group accuracies: no bars
    assert list(zip(groups.method, groups.group, groups.acc)) == [
        ("dm+fairdd", "red", 94.0),
        ("dm+fairdd", "green", 86.0),
    ]


def test_group_makeup_names_the_large_groups_and_sums_the_rest():
    counts = torch.tensor([[90, 1, 1, 1, 1, 1, 1, 1, 1, 2], [0, 50, 50, 0, 0, 0, 0, 0, 0, 0]])
    assert group_makeup(counts, list("abcdefghij")) == ["a 90% · 9 others 10%", "b 50% · c 50%"]
