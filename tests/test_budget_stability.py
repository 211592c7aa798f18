"""benchmarks/budget_stability.py: a budget is stable only when doubling it moves no row beyond
its interval; on hand-made records where one row moves and one does not."""

import importlib.util
import json

from conftest import REPO

spec = importlib.util.spec_from_file_location("budget_stability", REPO / "benchmarks" / "budget_stability.py")
budget_stability = importlib.util.module_from_spec(spec)
spec.loader.exec_module(budget_stability)

STEADY = [70.0, 72.0, 74.0, 71.0, 73.0]


def record(method, iterations, acc_runs):
    metric = {"runs": acc_runs}
    return {"status": "ok", "method": method, "iterations": iterations,
            "metrics": {"acc": metric, "deo_mean": {"runs": [40.0, 42.0, 41.0, 43.0, 39.0]},
                        "worst_group_acc": {"runs": [60.0, 61.0, 62.0, 59.0, 63.0]}}}  # fmt: skip


def test_a_row_moving_beyond_its_interval_makes_the_budget_unstable(tmp_path, capsys, monkeypatch):
    lines = [
        record("random", 0, STEADY),
        record("steady", 100, STEADY),
        record("steady", 200, [v + 0.5 for v in STEADY]),
        record("climbing", 100, STEADY),
        record("climbing", 200, [v + 6 for v in STEADY]),
        record("climbing", 400, [v + 6.5 for v in STEADY]),
        record("steady", 400, [v + 0.4 for v in STEADY]),
        {"status": "failed", "method": "broken", "iterations": 100},
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    rows = budget_stability.read_runs([path])
    assert set(rows) == {"random", "steady", "climbing"}
    moved = {(m, metric): (move, ci) for m, metric, move, ci in budget_stability.moves(rows, 100)}
    assert moved[("climbing", "acc")][0] == 6.0 and moved[("climbing", "acc")][1] < 6.0
    assert moved[("steady", "acc")][0] == 0.5 < moved[("steady", "acc")][1]
    monkeypatch.setattr("sys.argv", ["budget_stability.py", str(path)])
    budget_stability.main()
    out = capsys.readouterr().out
    assert "100 -> 200 iterations: not stable: doubling moves climbing acc by 6.00" in out
    assert "steady acc" not in out.split("100 -> 200")[1].split("\n")[0]
    assert "200 -> 400 iterations: stable" in out
