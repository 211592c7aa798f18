"""Sweeps (``fairbench run -m key=a,b,c``, ``range(...)``, a suite's ``sweep:`` block): each
combination its own protocol and row, invalid values refused before compute, resume after a kill."""

import csv
import json
import shlex
import signal
import subprocess
import time

import pytest
from conftest import REPO, checkout_env, fairbench_command

from fairbench.core.errors import FairbenchError
from fairbench.run.config import resolve_run_config
from fairbench.run.plan import describe_plan, make_plan
from fairbench.run.sweep import expand_range, split_top_level, sweep_values

# suite=ci-sized cells cut to almost nothing: what is tested is the bookkeeping, not the numbers
TINY = ["suite=ci", "ipc=[2]", "distill.iterations=1", "eval.epochs=1", "num_eval=1", "models.convnet.width=8"]


def test_values_ranges_and_lists():
    assert split_top_level("0.8,[1,2],'a,b'") == ["0.8", "[1,2]", "'a,b'"]
    assert expand_range("range(0,10,5)", "k") == [0, 5]
    assert expand_range("range(3)", "k") == [0, 1, 2]
    assert expand_range("range(0.8,1.0,0.05)", "k") == [0.8, 0.85, 0.9, 0.95]
    assert sweep_values("k", "0.1,range(1,3),drop") == [0.1, 1, 2, "drop"]
    assert sweep_values("k", [0, 5]) == [0, 5]
    with pytest.raises(FairbenchError, match="lists 0.8 more than once"):
        sweep_values("k", "0.8,0.8")
    with pytest.raises(FairbenchError, match="step must not be 0"):
        expand_range("range(0,1,0)", "k")


def test_product_one_protocol_each_and_unaffected_cells_once():
    config = resolve_run_config(
        [*TINY, "methods=[dm,dm+cobra]", "dataset.rho=0.5,0.9", "distill.dm+cobra.warmup_epochs=range(0,4,2)"],
        multirun=True,
    )
    cells = make_plan(config)
    # dm is the same at every warm-up value: 2 rho x (1 dm + 2 cobra)
    assert len(cells) == 6
    points = [(c.method, c.sweep["dataset.rho"], c.sweep["distill.dm+cobra.warmup_epochs"]) for c in cells]
    assert ("dm", 0.5, None) in points and ("dm+cobra", 0.9, 2) in points
    assert {c.dataset_params["rho"] for c in cells} == {0.5, 0.9}
    assert {c.hparams["warmup_epochs"] for c in cells if c.method == "dm+cobra"} == {0, 2}
    # the grid keys keep their meaning under -m: a comma list is their list
    assert resolve_run_config([*TINY, "ipc=1,2"], multirun=True)["ipc"] == [1, 2]


def test_suite_sweep_block_and_the_command_line_wins(tmp_path):
    suite = tmp_path / "mine.yaml"
    suite.write_text("methods: [dm]\nsweep:\n  dataset.rho: [0.5, 0.9]\n  eval.epochs: 'range(1,3)'\n")
    cells = make_plan(resolve_run_config([f"suite={suite}", "distill.iterations=1"]))
    assert sorted((c.sweep["dataset.rho"], c.evaluators[0]["train"]["epochs"]) for c in cells) == [
        (0.5, 1),
        (0.5, 2),
        (0.9, 1),
        (0.9, 2),
    ]
    fixed = make_plan(resolve_run_config([f"suite={suite}", "dataset.rho=0.7"]))
    assert {c.dataset_params["rho"] for c in fixed} == {0.7} and len(fixed) == 2


def test_dry_run_shows_swept_columns_and_invalid_values_are_refused(fairbench_cli):
    config = resolve_run_config([*TINY, "methods=[dm]", "dataset.rho=0.5,0.9"], multirun=True)
    shown = describe_plan(config, make_plan(config))  # what --dry-run prints
    header = next(line for line in shown.splitlines() if line.startswith("dataset "))
    assert "dataset.rho" in header.split()
    assert "sweep: dataset.rho in [0.5, 0.9]" in shown
    refused = fairbench_cli("run", *TINY, "-m", "dataset.rho=0.5,1.5", "--dry-run")
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert lines[0] == (
        "fairbench: error: sweep dataset.rho=1.5: dataset 'cmnist-mini': rho must lie in (0, 1], got 1.5"
    )


@pytest.mark.parametrize(
    "bad, named",
    [
        ("distill.iterations=5,-1", "sweep distill.iterations=-1"),
        ("device=cpu,cuda", "cannot sweep 'device'"),
        ("dataset.group_unknown=drop,guess", "group_unknown='guess' is not a policy"),
        ("dataset.severity=0,6", "cifar10s"),
    ],
)
def test_invalid_sweep_values_are_refused_before_compute(bad, named):
    datasets = ["datasets=[cifar10s]"] if "severity" in bad else []
    with pytest.raises(FairbenchError) as refused:
        make_plan(resolve_run_config([*TINY, *datasets, bad], multirun=True))
    assert named in str(refused.value)


def _records(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_a_sweep_resumes_after_a_kill(tmp_path):
    out = tmp_path / "out"
    args = ["run", *TINY, "methods=[dm+fairdd]", "-m", "dataset.group_noise=0,0.5", f"out={out}"]
    first = subprocess.Popen(
        fairbench_command(*args), env=checkout_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    results = out / "results.jsonl"
    while first.poll() is None and time.monotonic() < deadline:
        if results.is_file() and results.read_text().count("\n") >= 1:
            break
        time.sleep(0.01)
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=120)
    done = len(_records(out))
    assert first.returncode == 130 and done == 1, err  # stopped after the first combination
    resume = err.strip().splitlines()[-1].strip()
    assert " -m " in f" {resume} "  # the printed command sweeps again
    second = subprocess.run(
        fairbench_command(*shlex.split(resume)[1:]), env=checkout_env(), capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stderr
    assert "2 cells on cpu, 1 to run" in second.stderr
    records = _records(out)
    assert len(records) == 2 and len({r["protocol_id"] for r in records}) == 2
    assert sorted(r["sweep"]["dataset.group_noise"] for r in records) == [0, 0.5]
    seen = {r["sweep"]["dataset.group_noise"]: r.get("distiller_groups", {}).get("noise") for r in records}
    assert seen == {0: None, 0.5: 0.5}  # what the distiller saw, recorded
    with open(out / "leaderboard.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(float(r["dataset.group_noise"]) for r in rows) == [0.0, 0.5]
    assert (out / "plots" / "sweep-dataset.group_noise-cmnist-mini-ipc2.png").is_file()


@pytest.mark.parametrize(
    "dataset, swept, key",
    [
        ("cmnist-mini", "dataset.separation=0,0.5", "separation"),
        ("cifar10s", "dataset.severity=range(0,6,5)", "severity"),
    ],
)
def test_separation_dials_sweep_from_the_command_line(dataset, swept, key):
    config = resolve_run_config([*TINY, f"datasets=[{dataset}]", "methods=[dm+fairdd]", swept], multirun=True)
    values = sorted(str(c.dataset_params.get(key, "default")) for c in make_plan(config))
    assert values == (["0.0", "0.5"] if key == "separation" else ["5", "default"])  # 0 is the default: not in params


def test_rendered_leaderboard_draws_a_sweep_figure_from_entries(tmp_path):
    from fairbench.board.render import render_leaderboard

    entries = tmp_path / "entries"
    entries.mkdir()
    source = sorted((REPO / "leaderboard" / "entries").glob("cmnist-mini-ipc10-dm*+fairdd-*.json"))[0]
    for value in (0.0, 0.5):  # two entries of one sweep: other protocols, other values
        entry = json.loads(source.read_text())
        entry["protocol_id"] = f"{entry['protocol_id'][:8]}{int(value * 10):02d}"
        entry["sweep"] = {"dataset.group_noise": value}
        (entries / f"e{value}.json").write_text(json.dumps(entry))
    written = render_leaderboard(tmp_path)
    figure = tmp_path / "plots" / "sweep-dataset.group_noise-cmnist-mini-ipc10.svg"
    assert figure in written
    assert "plots/sweep-dataset.group_noise-cmnist-mini-ipc10.svg" in (tmp_path / "README.md").read_text()
