"""Figures and rendered tables: the Pareto front, best-value marking by direction, reported rows,
the plots a run writes, and the synthetic-set grid."""

import pandas as pd
import torch

from fairbench.plots import pareto_front, write_frame_plots
from fairbench.render import latex, markdown, measured_frame, table_rows
from fairbench.show import group_makeup


def test_the_pareto_front_keeps_only_undominated_points():
    acc = [80, 70, 90, 60, 85]
    deo = [10, 5, 30, 40, 10]
    # (60, 40) is beaten by everything; (80, 10) by (85, 10), which ties on DEO with higher accuracy
    assert pareto_front(acc, deo) == [1, 4, 2]


def entry(method, acc, deo, worst, protocol="p1", seed=0):
    runs = {"acc": [acc - 1, acc + 1], "deo_max": [deo + 5] * 2, "deo_mean": [deo] * 2, "suff_max": [0, 0],
            "suff_mean": [0, 0], "worst_group_acc": [worst] * 2}
    metrics = {m: {"mean": sum(r) / 2, "std": 0.0, "runs": r} for m, r in runs.items()}
    return {"dataset": "cmnist", "ipc": 10, "method": method, "evaluator": "convnet", "protocol_id": protocol,
            "seed": seed, "reported": {"metrics": metrics}, "submission": {"name": "team"},
            "measured": {"metrics": metrics, "eval_seeds": [11, 12]}}


def test_best_values_are_marked_by_the_metric_direction():
    frame = measured_frame([entry("dm", 30, 90, 5), entry("dm+fairdd", 90, 10, 60), entry("dm+cobra", 85, 8, 70)])
    rows = {r[0]: r for r in table_rows(frame.set_index("method", drop=False), [], lambda t: f"*{t}*")}
    acc, deo_mean, worst = 3, 5, 6
    assert rows["dm+fairdd"][acc].startswith("*90.00") and not rows["dm+cobra"][acc].startswith("*")
    assert rows["dm+cobra"][deo_mean].startswith("*8.00") and not rows["dm"][deo_mean].startswith("*")
    assert rows["dm+cobra"][worst].startswith("*70.00")


def test_rows_of_two_protocols_and_seeds_pool_only_within_a_protocol():
    frame = measured_frame([entry("dm", 30, 90, 5, "p1", seed=0), entry("dm", 50, 90, 5, "p1", seed=1),
                            entry("dm", 80, 90, 5, "p2")])
    assert sorted(zip(frame.protocol, frame.acc, frame.runs)) == [("p1", 40.0, 4), ("p2", 80.0, 2)]


def test_reported_rows_appear_beside_measured_methods_only():
    frame = measured_frame([entry("dm", 30, 90, 5), entry("dm+fairdd", 90, 10, 60)])
    reported = [{"dataset": "cmnist", "ipc": 10, "method": "dm+fairdd", "acc": 94.61, "deo_max": 17.04,
                 "deo_mean": 7.95, "source": "FairDD Table 1"},
                {"dataset": "cmnist", "ipc": 10, "method": "mtt", "acc": 92.0, "deo_max": 25.7, "deo_mean": 14.86,
                 "source": "FairDD Table 1"}]
    text = markdown(frame, reported)
    assert "| dm+fairdd | reported | – | 94.61 | 17.04 | 7.95 |" in text and "mtt" not in text
    assert "**90.00 ± 1.00**" in text                      # the published 94.61 is not marked best
    assert r"\textbf{90.00 $\pm$ 1.00}" in latex(frame, reported)


def test_frame_plots_are_png_and_svg(tmp_path):
    frame = pd.DataFrame({"dataset": ["d"] * 2, "ipc": [10] * 2, "method": ["dm", "dm+fairdd"],
                          "evaluator": ["convnet"] * 2, "protocol": ["a", "b"], "acc": [30.0, 80.0],
                          "acc_std": [1.0, 1.0], "deo_mean": [90.0, 10.0], "deo_mean_std": [1.0, 1.0],
                          "worst_group_acc": [5.0, 60.0]})
    paths = write_frame_plots(frame, tmp_path)
    assert sorted(p.name for p in paths) == ["d-ipc10-groups.png", "d-ipc10-groups.svg",
                                             "d-ipc10-tradeoff.png", "d-ipc10-tradeoff.svg"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and b"<svg" in paths[1].read_bytes()[:500]


def test_group_makeup_names_the_large_groups_and_sums_the_rest():
    counts = torch.tensor([[90, 1, 1, 1, 1, 1, 1, 1, 1, 2], [0, 50, 50, 0, 0, 0, 0, 0, 0, 0]])
    assert group_makeup(counts, list("abcdefghij")) == ["a 90% · 9 others 10%", "b 50% · c 50%"]
