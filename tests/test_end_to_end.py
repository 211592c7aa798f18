"""The ``ci`` suite end to end through the CLI: records, tables, determinism and resuming."""

import json
import subprocess

import pandas as pd
import pytest
from conftest import checkout_env, fairbench_command

from fairbench.evaluation.metrics import METRICS
from fairbench.report.tables import COLUMNS


@pytest.fixture(scope="module")
def ci_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ci")
    procs = [
        subprocess.run(
            fairbench_command("run", "suite=ci", f"out={root / name}"),
            cwd=root,
            env=checkout_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        for name in ("a", "b")
    ]
    return root, procs


def records(folder):
    return [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]


def test_run_prints_the_table_and_writes_records(ci_runs):
    root, procs = ci_runs
    assert procs[0].returncode == 0, procs[0].stderr
    assert "deo_mean" in procs[0].stdout and "dm+cobra" in procs[0].stdout
    recs = records(root / "a")
    assert [r["method"] for r in recs] == ["random", "dm", "dm+fairdd", "dm+cobra"]
    for r in recs:
        assert r["status"] == "ok" and r["device"] == "cpu"
        assert set(METRICS) <= set(r["metrics"]) and len(r["metrics"]["acc"]["runs"]) == 2
        assert r["config"]["method"]["hparams"].get("iterations", 20) == 20
        assert {"distill_s", "iter_ms", "eval_s", "fairbench_version", "git_commit", "eval_seeds"} <= set(r)
    board = pd.read_csv(root / "a" / "leaderboard.csv")
    assert list(board.columns) == COLUMNS and len(board) == 4
    assert (root / "a" / "leaderboard.md").read_text().startswith("| dataset")


def test_two_runs_give_identical_metrics(ci_runs):
    root, _ = ci_runs
    assert [r["metrics"] for r in records(root / "a")] == [r["metrics"] for r in records(root / "b")]


def test_rerun_into_the_same_folder_skips_finished_cells(ci_runs, fairbench_cli):
    root, _ = ci_runs
    before = (root / "a" / "results.jsonl").read_text()
    proc = fairbench_cli("run", "suite=ci", f"out={root / 'a'}")
    assert proc.returncode == 0, proc.stderr
    assert (root / "a" / "results.jsonl").read_text() == before


def test_leaderboard_rerenders_from_records(ci_runs, fairbench_cli):
    root, _ = ci_runs
    (root / "b" / "leaderboard.csv").unlink()
    proc = fairbench_cli("leaderboard", str(root / "b"))
    assert proc.returncode == 0 and "dm+fairdd" in proc.stdout
    assert len(pd.read_csv(root / "b" / "leaderboard.csv")) == 4
