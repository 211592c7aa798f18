"""Cross-architecture leaderboard: a row per evaluator, and the summary across evaluators."""

import pandas as pd
import pytest

from fairbench.evaluation.metrics import METRICS
from fairbench.report.tables import (
    COLUMNS,
    SUMMARY_COLUMNS,
    across_evaluators,
    leaderboard_frame,
    render_report,
    write_leaderboard,
)


def record(evaluator, method, acc, seed=0):
    metrics = {m: {"mean": acc, "std": 0.0, "runs": [acc - 1, acc + 1]} for m in METRICS}
    return {
        "status": "ok",
        "dataset": "cmnist-mini",
        "ipc": 10,
        "seed": seed,
        "evaluator": evaluator,
        "method": method,
        "metrics": metrics,
        "distill_s": 1.0,
        "iter_ms": 10.0 if method == "dm" else 15.0,
        "device": "cpu",
    }


RECORDS = [
    record("convnet", "dm", 20),
    record("resnet18", "dm", 30),
    record("timm:resnet18", "dm", 40),
    record("convnet", "dm+fairdd", 80),
    record("resnet18", "dm+fairdd", 70),
    record("timm:resnet18", "dm+fairdd", 60, seed=0),
    record("timm:resnet18", "dm+fairdd", 62, seed=1),
]


def test_one_row_per_evaluator_and_method():
    frame = leaderboard_frame(RECORDS)
    assert len(frame) == 6 and list(frame.columns) == COLUMNS
    timm_fair = frame[(frame.evaluator == "timm:resnet18") & (frame.method == "dm+fairdd")].iloc[0]
    assert timm_fair["acc"] == pytest.approx(61) and timm_fair["runs"] == 4  # two seeds pooled
    assert timm_fair["overhead"] == pytest.approx(1.5)  # 15 ms over dm's 10 ms


def test_summary_weights_every_evaluator_equally():
    summary = across_evaluators(leaderboard_frame(RECORDS))
    assert list(summary.columns) == SUMMARY_COLUMNS and list(summary.method) == ["dm", "dm+fairdd"]
    assert summary.set_index("method").loc["dm", "acc"] == pytest.approx(30)
    # timm:resnet18 counts once (mean 61 over its two seeds), not once per seed
    assert summary.set_index("method").loc["dm+fairdd", "deo_mean"] == pytest.approx((80 + 70 + 61) / 3)
    assert summary.set_index("method").loc["dm", "evaluators"] == "convnet, resnet18, timm:resnet18"


def test_written_and_printed(tmp_path):
    frame = write_leaderboard(tmp_path, RECORDS)
    assert len(pd.read_csv(tmp_path / "leaderboard_across_evaluators.csv")) == 2
    assert (tmp_path / "leaderboard_across_evaluators.md").read_text().startswith("| dataset")
    report = render_report(frame)
    assert "mean over evaluators" in report and report.count("dm+fairdd") == 4
    assert "mean over evaluators" not in render_report(frame[frame.evaluator == "convnet"])


def run_record(protocol, seed=0, eval_seeds=(0, 1), accs=(10.0, 20.0), iter_ms=5.0, device="cpu", timing_device="cpu"):
    metrics = {m: {"mean": sum(accs) / len(accs), "std": 0.0, "runs": list(accs)} for m in METRICS}
    return {
        "status": "ok",
        "dataset": "cmnist-mini",
        "ipc": 10,
        "seed": seed,
        "evaluator": "convnet",
        "method": "dm",
        "metrics": metrics,
        "eval_seeds": list(eval_seeds),
        "protocol_id": protocol,
        "protocol": {"method": {"id": "dm"}, "evaluator": {"name": "convnet"}},
        "distill_s": 1.0,
        "iter_ms": iter_ms,
        "device": device,
        "timing_device": timing_device,
    }


def test_a_mixed_folder_gives_one_row_per_protocol():
    frame = leaderboard_frame(
        [run_record("aaaaaaaaaa", accs=(10.0, 20.0)), run_record("bbbbbbbbbb", accs=(70.0, 80.0))]
    )
    assert sorted(frame.protocol) == ["aaaaaaaaaa", "bbbbbbbbbb"]
    assert sorted(frame.acc) == [15.0, 75.0]  # never pooled into one row of 45
    assert "protocol" in render_report(frame).splitlines()[0]


def test_a_rerun_with_more_evaluations_counts_each_run_once():
    first = run_record("aaaaaaaaaa", eval_seeds=(0, 1), accs=(10.0, 20.0))
    again = run_record("aaaaaaaaaa", eval_seeds=(0, 1, 2), accs=(10.0, 20.0, 60.0))  # num_eval 2 → 3
    row = leaderboard_frame([first, again]).iloc[0]
    assert row["runs"] == 3 and row["acc"] == pytest.approx(30.0)
    assert row["acc_std"] == pytest.approx(pd.Series([10.0, 20.0, 60.0]).std(ddof=0))


def test_timings_come_only_from_the_measuring_device():
    measured = run_record(
        "aaaaaaaaaa", eval_seeds=(0, 1), iter_ms=5.0, timing_device="cuda (H200)", device="cuda (H200)"
    )
    reused_elsewhere = run_record(
        "aaaaaaaaaa", eval_seeds=(2, 3), iter_ms=None, device="cpu", timing_device="cuda (H200)"
    )
    reused_elsewhere["distill_s"] = None
    row = leaderboard_frame([reused_elsewhere, measured]).iloc[0]
    assert row["iter_ms"] == 5.0 and row["timing_device"] == "cuda (H200)" and row["runs"] == 4
    alone = leaderboard_frame([reused_elsewhere]).iloc[0]
    assert pd.isna(alone["iter_ms"]) and alone["timing_device"] is None
