"""``evaluators=[...]`` through the CLI: every synthetic set on every evaluator, a row each, the summary."""

import json

import pandas as pd
import pytest


def test_cross_architecture_run(fairbench_cli, tmp_path):
    evaluators = ["convnet", "mlp", "resnet18-bn", "timm:test_vit"]
    proc = fairbench_cli(
        "run",
        "suite=ci",
        "methods=[random,dm]",
        f"evaluators=[{','.join(evaluators)}]",
        "models.convnet.width=8",
        "models.resnet18-bn.width=4",
        "models.mlp.width=16",
        "distill.iterations=2",
        "eval.epochs=3",
        "ensemble=true",
        f"out={tmp_path / 'out'}",
    )
    assert proc.returncode == 0, proc.stderr
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert sorted(zip(board.method, board.evaluator)) == sorted((m, e) for m in ["random", "dm"] for e in evaluators)
    summary = pd.read_csv(tmp_path / "out" / "leaderboard_across_evaluators.csv")
    assert list(summary.method) == ["random", "dm"]
    for method, row in summary.set_index("method").iterrows():
        assert row["acc"] == pytest.approx(board[board.method == method]["acc"].mean(), abs=1e-3)
    assert "mean over evaluators" in proc.stdout
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert {(r["evaluator"], r["eval_path"], r["eval_path_reason"]) for r in records} == {
        (e, "ensemble", None) for e in evaluators
    }
