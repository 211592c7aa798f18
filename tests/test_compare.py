"""The verdicts of ``fairbench compare`` / ``regress`` on hand-made records: rules, directions, matching."""

import json

import pytest

from fairbench.cli import main
from fairbench.evaluation.metrics import HIGHER_IS_BETTER, METRICS, MIN_EFFECT
from fairbench.regress.verdicts import compare_records, metric_verdict

CPU = {
    "device_type": "cpu",
    "cpu": "AMD EPYC",
    "torch": "2.14.1",
    "onednn": "3.12.0",
    "threads": 2,
    "deterministic": True,
}
# dm+fairdd on suite=ci, as committed: the runs of each metric over the two evaluation seeds
FAIRDD_CI = {
    "acc": [49.5, 55.3],
    "deo_max": [100.0, 100.0],
    "deo_mean": [86.0, 79.0],
    "suff_max": [100.0, 100.0],
    "suff_mean": [71.63, 70.35],
    "worst_group_acc": [35.0, 39.0],
}

# what dm (vanilla) measured there: a dm+fairdd whose group weights broke would fall back to it
VANILLA_CI = {
    "acc": [21.2, 22.1],
    "deo_max": [100.0, 100.0],
    "deo_mean": [98.0, 98.0],
    "suff_max": [100.0, 90.0],
    "suff_mean": [56.75, 58.89],
    "worst_group_acc": [10.0, 10.0],
}


def record(method="dm+fairdd", runs=None, fingerprint=CPU, cell_id=None, protocol_id="p1", seeds=(0, 1), **changes):
    runs = {**FAIRDD_CI, **(runs or {})}
    protocol_id = f"{method}/{protocol_id}"  # a method is part of its protocol
    return {
        "cell_id": cell_id or f"{protocol_id}/{len(seeds)}",
        "protocol_id": protocol_id,
        "dataset": "cmnist-mini",
        "method": method,
        "ipc": 10,
        "seed": 0,
        "evaluator": "convnet",
        "status": "ok",
        "eval_seeds": list(seeds),
        "fingerprint": fingerprint,
        "metrics": {m: {"mean": sum(v) / len(v), "runs": v} for m, v in runs.items()},
        **changes,
    }


def verdicts(comparison, metric=None):
    return {(r.cell.split()[1], r.metric): r.verdict for r in comparison.rows if metric in (None, r.metric)}


def test_every_metric_has_a_direction():
    assert set(HIGHER_IS_BETTER) == set(METRICS) == set(MIN_EFFECT)
    assert HIGHER_IS_BETTER["acc"] and HIGHER_IS_BETTER["worst_group_acc"]
    assert not any(HIGHER_IS_BETTER[m] for m in ("deo_max", "deo_mean", "suff_max", "suff_mean"))


def test_same_machine_exact_rule_any_difference_is_changed():
    tiny = {"suff_mean": [71.63, 70.350001]}
    comparison = compare_records([record()], [record(runs=tiny)])
    assert verdicts(comparison)[("dm+fairdd", "suff_mean")] == "changed"
    assert {r.rule for r in comparison.rows} == {"exact"}
    assert verdicts(comparison)[("dm+fairdd", "acc")] == "same"
    assert not comparison.passed
    assert compare_records([record()], [record(runs=tiny)], allow_change=True).passed


def test_other_machine_statistical_rule_tolerates_cross_machine_noise():
    # the cross-machine rerun of suite=ci: dm suff_mean runs moved, dm+cobra suff_max 8.8 apart
    other = {**CPU, "threads": 1}
    moved = {"suff_mean": [56.77, 57.77], "suff_max": [100.0, 91.2]}
    comparison = compare_records(
        [record(runs={"suff_mean": [56.75, 58.89], "suff_max": [100.0, 100.0]})],
        [record(runs=moved, fingerprint=other)],
    )
    assert comparison.passed, comparison.table()
    assert {r.rule for r in comparison.rows} == {"welch"}


def test_deo_mean_twenty_points_worse_is_a_regression_on_any_machine():
    better_baseline = record(runs={"deo_mean": [66.0, 59.0]})
    for fingerprint in (CPU, {**CPU, "cpu": "another CPU"}):
        comparison = compare_records([better_baseline], [record(fingerprint=fingerprint)], allow_change=True)
        assert [(r.cell, r.metric, r.verdict) for r in comparison.failing()] == [
            ("cmnist-mini dm+fairdd ipc10 seed0 convnet", "deo_mean", "worse")
        ]
        assert "dm+fairdd" in comparison.summary() and "deo_mean" in comparison.summary()


def test_fairdd_falling_back_to_vanilla_on_ci_fails_statistically():
    comparison = compare_records([record()], [record(runs=VANILLA_CI, fingerprint={**CPU, "cpu": "another"})])
    assert verdicts(comparison)[("dm+fairdd", "acc")] == "worse"
    assert verdicts(comparison)[("dm+fairdd", "worst_group_acc")] == "worse"
    assert not comparison.passed


@pytest.mark.parametrize(
    "metric,baseline,now,verdict",
    [
        ("deo_mean", [50.0, 52.0], [65.0, 67.0], "worse"),  # a gap rose 15 points, tight runs
        ("deo_mean", [40.0, 100.0], [55.0, 115.0], "ok"),  # the same rise inside a huge spread: not significant
        ("deo_mean", [50.0, 50.0], [55.0, 55.0], "ok"),  # significant, but under the minimum effect
        ("deo_mean", [65.0, 67.0], [50.0, 52.0], "better"),  # a gap fell
        ("acc", [65.0, 67.0], [50.0, 52.0], "worse"),  # accuracy fell
        ("acc", [50.0, 52.0], [65.0, 67.0], "better"),
        ("acc", [60.0], [49.0], "worse"),  # one run a side: the minimum effect alone
        ("acc", [60.0], [51.0], "ok"),
    ],
)
def test_statistical_rule(metric, baseline, now, verdict):
    assert metric_verdict(metric, baseline, now, exact=False)[0] == verdict
    rule = metric_verdict(metric, baseline, now, exact=False)[2]
    assert rule == ("effect" if len(baseline) == 1 else "welch")


def test_nondeterministic_gpu_baseline_is_judged_statistically():
    gpu = {**CPU, "device_type": "cuda", "gpu": "H200", "deterministic": False}
    comparison = compare_records([record(fingerprint=gpu)], [record(fingerprint=gpu, runs={"acc": [49.0, 55.0]})])
    assert comparison.passed and {r.rule for r in comparison.rows} == {"welch"}


def test_matching_by_protocol_names_and_what_is_missing_or_new():
    baseline = [record("dm"), record("dm+fairdd"), record("dm+cobra"), record("random")]
    now = [
        record("dm", seeds=(0, 1, 2), runs={"acc": [49.5, 55.3, 52.0]}),  # num_eval 3: same protocol, new cell id
        record("dm+fairdd", protocol_id="p2"),  # its protocol changed
        record("dm+cobra", status="failed", reason="loss is nan", metrics={}),
        record("dm+wbary"),
    ]
    comparison = compare_records(baseline, now)
    table = verdicts(comparison)
    assert table[("dm", "acc")] == "ok" and {r.rule for r in comparison.rows if "dm " in r.cell} == {"welch"}
    assert table[("dm+fairdd", "(protocol)")] == "changed"
    assert table[("dm+fairdd", "deo_mean")] == "ok"
    assert table[("dm+cobra", "-")] == "failed"
    assert table[("random", "-")] == "missing"
    assert table[("dm+wbary", "-")] == "new"
    assert {r.verdict for r in comparison.failing()} == {"changed", "failed", "missing"}
    assert {r.verdict for r in compare_records(baseline, now, allow_change=True).failing()} == {"failed", "missing"}


def test_failed_baseline_cells_have_nothing_to_regress_from():
    comparison = compare_records([record(status="failed", metrics={})], [record()])
    assert comparison.passed and verdicts(comparison) == {("dm+fairdd", "-"): "new"}


def write_run(folder, records):
    folder.mkdir()
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(folder)


def test_compare_command_prints_the_table_and_writes_reports(tmp_path, capsys):
    a = write_run(tmp_path / "a", [record("dm"), record()])
    b = write_run(tmp_path / "b", [record("dm"), record(runs=VANILLA_CI, fingerprint={**CPU, "threads": 1})])
    markdown, report = tmp_path / "summary.md", tmp_path / "verdicts.json"
    assert main(["compare", a, b, "--markdown", str(markdown), "--json", str(report)]) == 1
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("cell"))
    assert header.split() == ["cell", "metric", "baseline", "now", "Δ", "p", "rule", "verdict"]
    assert "FAILED" in out and "dm+fairdd ipc10 seed0 convnet acc" in out
    verdict_json = json.loads(report.read_text())
    assert not verdict_json["passed"] and len(verdict_json["rows"]) == 2 * len(FAIRDD_CI)  # metrics it lacks: absent
    assert markdown.read_text().startswith(f"## fairbench compare {a} {b}") and "**worse**" in markdown.read_text()
    assert main(["compare", a, a]) == 0


def test_compare_bad_input_is_one_line_exit_2(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope"), str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().startswith("fairbench: error: no results.jsonl")
