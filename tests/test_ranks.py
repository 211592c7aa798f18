"""Tier ranks on hand-made runs: two rows the runs cannot separate share rank 1, two that are
clearly worse get ranks of their own; in run tables, ``fairbench compare`` and the rendered
leaderboard."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from fairbench.board.render import TABLE_COLUMNS, markdown, measured_frame, table_rows
from fairbench.cli import main
from fairbench.report.ranks import TEST, ci95, holm, seed_columns, tier_ranks
from fairbench.report.tables import leaderboard_frame

# acc runs: A and B overlap (a tie), C and D are far below and apart from each other
RUNS = {
    "A": [80.0, 82.0, 78.0, 81.0, 79.0],
    "B": [79.0, 81.5, 78.5, 80.0, 80.5],
    "C": [60.0, 61.0, 59.0, 60.5, 59.5],
    "D": [40.0, 41.0, 39.0, 40.5, 39.5],
}
GAPS = {
    "A": [30.0, 31, 29, 30, 30],
    "B": [10.0, 11, 9, 10, 10],
    "C": [10.5, 9.5, 11, 10, 9],
    "D": [50.0, 51, 49, 50, 50],
}


def test_tied_rows_share_a_rank_and_separated_rows_do_not():
    assert tier_ranks(list(RUNS.values()), higher_is_better=True) == [1, 1, 3, 4]
    assert tier_ranks(list(GAPS.values()), higher_is_better=False) == [3, 1, 1, 4]  # gaps: lower is better


def test_a_tier_is_never_holed():
    """A noisy middle row that escapes separation pulls in the steady row above it."""
    leader, steady, noisy = [90.0, 90.5, 89.5], [80.0, 80.2, 79.8], [85.0, 40.0, 95.0]
    assert tier_ranks([leader, steady, noisy], True) == [1, 1, 1]
    assert tier_ranks([leader, steady], True) == [1, 2]


def test_single_runs_and_missing_metrics():
    assert tier_ranks([[70.0], [60.0], [70.0]], True) == [1, 3, 1]  # no variance: the mean decides
    assert tier_ranks([[1.0, 2.0], [], [float("nan")]], True) == [1, None, None]


def test_holm_and_the_interval_match_their_textbook_values():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    runs = RUNS["A"]
    low, high = stats.t.interval(0.95, len(runs) - 1, loc=np.mean(runs), scale=stats.sem(runs))
    assert ci95(runs) == pytest.approx((high - low) / 2)


def test_spread_across_seeds_is_reported_apart_from_evaluation_noise():
    """Two seeds whose sets differ by 10 points, each evaluated with a 1-point spread."""
    columns = seed_columns("acc", [[70.0, 71.0, 69.0], [80.0, 81.0, 79.0]])
    assert columns["acc_seed_std"] == pytest.approx(np.std([70, 80], ddof=1))
    assert columns["acc_eval_std"] == pytest.approx(1.0)
    assert columns["acc_ci95"] == pytest.approx(ci95([70.0, 80.0]))  # over the seeds' means
    one = seed_columns("acc", [[70.0, 71.0, 69.0]])
    assert np.isnan(one["acc_seed_std"]) and one["acc_ci95"] == pytest.approx(ci95([70, 71, 69]))


def record(method, acc, gap, folder_seed=0):
    runs = {"acc": acc, "deo_mean": gap, "worst_group_acc": [a - 20 for a in acc]}
    runs |= {m: gap for m in ("deo_max", "suff_max", "suff_mean")}
    return {
        "status": "ok",
        "cell_id": f"{method}-{folder_seed}",
        "protocol_id": f"p-{method}",
        "dataset": "cmnist-mini",
        "ipc": 10,
        "seed": 0,
        "evaluator": "convnet",
        "method": method,
        "eval_seeds": list(range(len(acc))),
        "metrics": {m: {"mean": float(np.mean(v)), "std": float(np.std(v)), "runs": list(v)} for m, v in runs.items()},
    }


RECORDS = [record(name, RUNS[name], GAPS[name]) for name in RUNS]


def test_run_tables_rank_within_dataset_ipc_and_evaluator():
    frame = leaderboard_frame(RECORDS).set_index("method")
    assert frame["acc_rank"].tolist() == [1, 1, 3, 4] and frame["deo_mean_rank"].tolist() == [3, 1, 1, 4]
    assert frame.loc["A", "acc_ci95"] == pytest.approx(ci95(RUNS["A"]))
    assert np.isnan(frame.loc["A", "eo_mean"])  # these hand-made records predate EO: absent, not a crash


def test_compare_ranks_both_sides_together(tmp_path, capsys):
    for side, records in (("a", RECORDS[:2]), ("b", RECORDS[2:])):
        (tmp_path / side).mkdir()
        (tmp_path / side / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    report = tmp_path / "verdicts.json"
    main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json", str(report)])
    out = capsys.readouterr().out
    assert TEST in out and "acc rank" in out
    ranks = {(r["side"], r["method"]): r["acc_rank"] for r in json.loads(report.read_text())["ranks"]}
    assert ranks == {("baseline", "A"): 1, ("baseline", "B"): 1, ("now", "C"): 3, ("now", "D"): 4}


def entry(method):
    measured = {"metrics": record(method, RUNS[method], GAPS[method])["metrics"], "eval_seeds": list(range(5))}
    return {
        "dataset": "cmnist-mini",
        "ipc": 10,
        "method": method,
        "evaluator": "convnet",
        "protocol_id": f"p-{method}",
        "seed": 0,
        "reported": measured,
        "submission": {"name": "team"},
        "measured": measured,
    }


def test_the_rendered_leaderboard_bolds_the_whole_first_tier():
    frame = measured_frame([entry(name) for name in RUNS])
    rows = {r[0]: r for r in table_rows(frame, [], lambda t: f"*{t}*")}
    acc, rank = TABLE_COLUMNS.index("acc"), TABLE_COLUMNS.index("acc rank")
    assert [rows[m][rank] for m in "ABCD"] == ["1", "1", "3", "4"]
    assert [rows[m][acc].startswith("*") for m in "ABCD"] == [True, True, False, False]
    assert rows["A"][acc] == f"*{np.mean(RUNS['A']):.2f} ± {ci95(RUNS['A']):.2f}*"
    assert TEST in markdown(frame, [])
