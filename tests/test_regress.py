"""``fairbench regress`` end to end on one tiny run: rerun, verdicts, exit codes, ``--update``.

The baseline is ``suite=ci`` cut to two methods at IPC 2, two iterations and two evaluation epochs
of a narrow ConvNet; every
rerun happens in this process, on this machine, so the exact rule applies.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import checkout_env, fairbench_command

from fairbench.cli import main
from fairbench.core.errors import FairbenchError
from fairbench.distill.base import Distiller
from fairbench.evaluation.metrics import METRICS
from fairbench.regress.rerun import load_baseline, rerun_configs

TINY = [
    "suite=ci",
    "methods=[dm,dm+fairdd]",
    "ipc=[2]",
    "distill.iterations=2",
    "distill.real_batch=8",
    "eval.epochs=2",
    "models.convnet.width=8",
]
FAIRDD_CELL = "cmnist-mini dm+fairdd ipc2 seed0 convnet"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("regress") / "baseline"
    assert main(["run", *TINY, f"out={folder}"]) == 0
    return folder


def records(folder):
    return [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]


def copy_of(baseline, folder, edit=lambda record: None):
    """The baseline's records (not its synthetic sets) in ``folder``, each passed through ``edit``."""
    folder.mkdir()
    edited = records(baseline)
    for record in edited:
        edit(record)
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in edited))
    return folder


def regress(baseline, tmp_path, *options):
    report = tmp_path / "verdicts.json"
    code = main(["regress", str(baseline), f"out={tmp_path / 'now'}", "--json", str(report), *options])
    return code, json.loads(report.read_text())


def test_regress_passes_against_its_own_baseline(baseline, tmp_path, capsys):
    summary = tmp_path / "summary.md"
    code, report = regress(baseline, tmp_path, "--markdown", str(summary))
    assert code == 0, capsys.readouterr()
    assert report["passed"] and {(r["rule"], r["verdict"]) for r in report["rows"]} == {("exact", "same")}
    assert len(report["rows"]) == 2 * len(METRICS)
    assert summary.read_text().startswith(f"## fairbench regress {baseline}")
    out = capsys.readouterr().out
    assert FAIRDD_CELL in out and f"passed: {2 * len(METRICS)} same" in out
    rerun = records(tmp_path / "now")
    assert [r["cell_id"] for r in rerun] == [r["cell_id"] for r in records(baseline)]
    assert not any(r["distill_reused"] for r in rerun)  # recomputed, never resumed


def test_a_baseline_twenty_points_better_on_fairdd_deo_mean_fails_naming_it(baseline, tmp_path, capsys):
    def better(record):
        if record["method"] == "dm+fairdd":
            deo = record["metrics"]["deo_mean"]
            deo["runs"] = [v - 20 for v in deo["runs"]]
            deo["mean"] -= 20

    code, report = regress(copy_of(baseline, tmp_path / "better", better), tmp_path)
    assert code == 1
    failing = [(r["cell"], r["metric"]) for r in report["rows"] if r["verdict"] not in ("same", "ok")]
    assert failing == [(FAIRDD_CELL, "deo_mean")]
    assert f"{FAIRDD_CELL} deo_mean" in capsys.readouterr().out.splitlines()[-1]


def test_a_distiller_change_fails_on_its_own_cells(baseline, tmp_path, monkeypatch):
    """FairDD's group weights silently replaced by vanilla's: only dm+fairdd's metrics move."""
    init = Distiller.__init__

    def vanilla_weights(self, hparams, aggregation="vanilla"):
        init(self, hparams, "vanilla" if aggregation == "fairdd" else aggregation)

    monkeypatch.setattr(Distiller, "__init__", vanilla_weights)
    code, report = regress(baseline, tmp_path)
    assert code == 1
    moved = {r["cell"] for r in report["rows"] if r["verdict"] != "same"}
    assert moved == {FAIRDD_CELL}


def test_update_rewrites_the_baseline_and_says_what_changed(baseline, tmp_path, capsys):
    def shifted(record):
        if record["method"] == "dm":
            record["metrics"]["acc"]["runs"][0] += 1.0

    moved = copy_of(baseline, tmp_path / "moved", shifted)
    assert main(["regress", str(moved), f"out={tmp_path / 'now'}", "--update"]) == 0
    err = capsys.readouterr().err
    assert f"updated {moved}" in err and "cmnist-mini dm ipc2 seed0 convnet acc changed" in err
    assert records(moved) == records(tmp_path / "now")
    assert (moved / "leaderboard.csv").is_file()
    assert main(["compare", str(moved), str(tmp_path / "now")]) == 0


@pytest.mark.parametrize(
    "edit,fragment",
    [
        (lambda r: r["run_config"].update(methods=["dm+nope"]), "unknown method 'dm+nope'"),
        (lambda r: r["run_config"].update(colour="red"), "unknown run key 'colour'"),
        (lambda r: r.pop("run_config"), "has no run_config"),
    ],
)
def test_a_baseline_this_installation_cannot_rerun_is_exit_2(baseline, tmp_path, capsys, edit, fragment):
    broken = copy_of(baseline, tmp_path / "broken", edit)
    assert main(["regress", str(broken), f"out={tmp_path / 'now'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("fairbench: error:") and fragment in err[-1]
    assert not (tmp_path / "now").exists()


def test_regress_never_writes_into_a_folder_with_results(baseline, tmp_path, capsys):
    shutil.copytree(baseline, tmp_path / "now")
    assert main(["regress", str(baseline), f"out={tmp_path / 'now'}"]) == 2
    assert "regress always recomputes" in capsys.readouterr().err


def test_missing_baseline_is_one_line_exit_2(tmp_path):
    proc = subprocess.run(
        fairbench_command("regress", str(tmp_path / "nope")),
        cwd=tmp_path,
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip() == f"fairbench: error: baseline '{tmp_path / 'nope'}' is not a folder; pass a run "
        "folder (with results.jsonl) or a folder of leaderboard entries (*.json)"
    )


def test_the_committed_leaderboard_entries_are_a_baseline():
    """``fairbench regress leaderboard/entries``: every committed entry becomes a record of its
    verified runs, and its protocol is rebuilt from run keys with the entry's own id."""
    root = Path(__file__).resolve().parent.parent / "leaderboard" / "entries"
    entries = sorted(root.glob("*.json"))
    records = load_baseline(root)
    assert len(records) == len(entries) > 0
    configs = rerun_configs(records, [])
    assert len(configs) == len(records)
    first = json.loads(entries[0].read_text())
    assert records[0]["protocol_id"] == first["protocol_id"]
    assert records[0]["metrics"] == first["measured"]["metrics"]
    assert configs[0]["methods"] == [first["method"]] and configs[0]["seeds"] == [first["seed"]]


def test_an_entry_whose_protocol_cannot_be_rebuilt_is_refused_before_any_compute(tmp_path):
    root = Path(__file__).resolve().parent.parent / "leaderboard" / "entries"
    entry = json.loads(sorted(root.glob("*.json"))[0].read_text())
    entry["protocol_id"] = "0000000000"
    (tmp_path / "e.json").write_text(json.dumps(entry))
    with pytest.raises(FairbenchError, match="its protocol 0000000000 cannot be rebuilt here"):
        rerun_configs(load_baseline(tmp_path), [])


def test_a_folder_with_something_other_than_entries_is_refused(tmp_path):
    (tmp_path / "notes.json").write_text(json.dumps({"reported": {"acc": 94.61}}))
    with pytest.raises(FairbenchError, match="not a fairbench-entry/1 entry"):
        load_baseline(tmp_path)
