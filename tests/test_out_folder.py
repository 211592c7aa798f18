"""The out folder as a database: faults and bad folders, each answered in one line before any compute.

Tests run as root, where a chmod does not stop writes, so a read-only or full disk is simulated by
a writer that raises what the OS would (EROFS, ENOSPC).
"""

import errno
import json
import logging
import os
import shutil
import subprocess

import pytest
from conftest import TINY_CI, checkout_env, fairbench_command

import fairbench.core.atomic as atomic
import fairbench.report.tables as tables
import fairbench.run.outdir as outdir
from fairbench import __version__
from fairbench.cli import main
from fairbench.core.errors import FairbenchError
from fairbench.distill.synsets import load_synset
from fairbench.run.cell import run_cell
from fairbench.run.config import resolve_run_config
from fairbench.run.driver import run_suite
from fairbench.run.plan import make_plan
from fairbench.run.results import drop_torn_last_line, read_records

TINY = TINY_CI + [
    "methods=[random,dm]",
]


def tiny(out, *extra):
    return resolve_run_config(TINY + [f"out={out}", *extra])


def record(cell_id="c1", status="ok", **extra):
    return {
        "cell_id": cell_id,
        "status": status,
        "dataset": "d",
        "method": "m",
        "ipc": 1,
        "seed": 0,
        "evaluator": "convnet",
        "fairbench_version": __version__,
        "git_commit": "abc",
        **extra,
    }


def write_lines(folder, *lines):
    (folder / "results.jsonl").write_text("".join(lines))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "out"
    run_suite(tiny(out))
    return out


def no_compute(monkeypatch):
    def refuse(*args):
        raise AssertionError("a cell ran")

    monkeypatch.setattr("fairbench.run.launchers.local.run_cell", refuse)


# --- results.jsonl: torn, damaged, not records ---------------------------------------------------


def test_a_torn_last_line_is_dropped_with_a_warning_and_cut_off(tmp_path, caplog):
    whole = json.dumps(record()) + "\n"
    write_lines(tmp_path, whole, '{"cell_id": "c2", "sta')
    with caplog.at_level(logging.WARNING):
        assert [r["cell_id"] for r in read_records(tmp_path)] == ["c1"]
    assert "last line is cut off" in caplog.text and "results.jsonl" in caplog.text
    assert drop_torn_last_line(tmp_path)
    assert (tmp_path / "results.jsonl").read_text() == whole


def test_damage_before_the_last_line_names_the_line_and_the_repair(tmp_path):
    write_lines(tmp_path, json.dumps(record()) + "\n", "{garbage\n", json.dumps(record("c2")) + "\n")
    with pytest.raises(FairbenchError, match=r"results.jsonl:2: .*delete it"):
        read_records(tmp_path)


@pytest.mark.parametrize("line", ["[1, 2]", '{"status": "ok"}', "3"])
def test_valid_json_that_is_not_a_record_names_the_line(tmp_path, line):
    write_lines(tmp_path, json.dumps(record()) + "\n", line + "\n")
    with pytest.raises(FairbenchError, match=r"results.jsonl:2: valid JSON but not a fairbench record"):
        read_records(tmp_path)


# --- resume policy and what the folder holds -----------------------------------------------------


def test_resume_policies(caplog):
    old = record("c1", fairbench_version="0.0.1", git_commit="old")
    logged = []
    assert outdir.reusable([record("c1")], {"c1"}, "same-version", logged.append) == {"c1"}
    assert f"fairbench {__version__} at commit abc" in logged[0]
    with pytest.raises(FairbenchError, match="another version .*0.0.1 at commit old.*resume=always"):
        outdir.reusable([old], {"c1"}, "same-version", logged.append)
    assert outdir.reusable([old], {"c1"}, "always", logged.append) == {"c1"}
    assert "fairbench 0.0.1 at commit old" in logged[-1]
    with pytest.raises(FairbenchError, match="resume=never"):
        outdir.reusable([record("c1")], {"c1"}, "never", logged.append)
    assert outdir.reusable([record("c1", status="failed")], {"c1"}, "never", logged.append) == set()


def test_the_protocols_a_folder_holds_are_named(finished_run, tmp_path):
    out = shutil.copytree(finished_run, tmp_path / "out")
    logged = []
    run_suite(tiny(out, "eval.epochs=2", "methods=[random]"), log=logged.append)
    text = "\n".join(logged)
    assert "holds 2 finished records of 2 protocols; 0 of them are this run's" in text
    assert "other protocol" in text and "(1 ep)" in text
    records = read_records(out)
    assert len({r["protocol_id"] for r in records}) == 3 and len({r["cell_id"] for r in records}) == 3


# --- the lock ------------------------------------------------------------------------------------


def test_a_second_run_into_a_locked_folder_names_the_holder_and_exits_2(finished_run):
    before = (finished_run / "results.jsonl").read_text()
    with outdir.locked(finished_run):
        proc = subprocess.run(
            fairbench_command("run", *TINY, f"out={finished_run}"),
            env=checkout_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("fairbench: error: out=") and "in use by process" in line
    assert str(os.getpid()) in line
    assert (finished_run / "results.jsonl").read_text() == before
    assert not (finished_run / outdir.LOCK_INFO).exists()


# --- folders that cannot take the results --------------------------------------------------------


@pytest.mark.parametrize("code, why", [(errno.EROFS, "read-only"), (errno.ENOSPC, "the disk is full")])
def test_a_read_only_or_full_out_is_one_line_before_any_compute(tmp_path, monkeypatch, capsys, code, why):
    def failing_write(path, text):
        raise OSError(code, "simulated")

    monkeypatch.setattr(atomic, "write_text_atomic", failing_write)
    no_compute(monkeypatch)
    assert main(["run", *TINY, f"out={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("fairbench: error: cannot write to out=") and why in err[-1]
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_out_pointing_at_a_file_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("mine\n")
    no_compute(monkeypatch)
    assert main(["run", *TINY, f"out={tmp_path / 'file'}"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "mine\n"


def test_a_full_disk_during_an_append_keeps_earlier_records(tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls = []

    def full_after_one(out_dir, rec):
        if calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        calls.append(rec)
        real_append(out_dir, rec)

    from fairbench.run import driver as harness

    real_append = harness.append_record
    monkeypatch.setattr(harness, "append_record", full_after_one)
    with pytest.raises(FairbenchError, match="cannot append to .*results.jsonl: the disk is full"):
        run_suite(tiny(out))
    assert [r["method"] for r in read_records(out)] == ["random"]
    monkeypatch.setattr(harness, "append_record", real_append)
    run_suite(tiny(out))
    assert [r["method"] for r in read_records(out)] == ["random", "dm"]


def test_leaderboard_of_a_read_only_folder_prints_and_skips_the_write(finished_run, monkeypatch, capsys, caplog):
    def read_only(path, text):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tables, "write_text_atomic", read_only)
    with caplog.at_level(logging.WARNING):
        assert main(["leaderboard", str(finished_run)]) == 0
    assert "dm" in capsys.readouterr().out
    assert "tables not written" in caplog.text and "read-only" in caplog.text


def test_leaderboard_adds_no_file_to_a_committed_folder(finished_run, tmp_path):
    folder = tmp_path / "reference"
    folder.mkdir()
    for name in ("results.jsonl", "leaderboard.csv", "leaderboard.md"):
        (folder / name).write_bytes((finished_run / name).read_bytes())
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], cwd=folder, check=True)
    subprocess.run(git + ["add", "."], cwd=folder, check=True)
    subprocess.run(git + ["commit", "-qm", "reference"], cwd=folder, check=True)
    assert main(["leaderboard", str(folder)]) == 0
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert status == ""


# --- a damaged synthetic set ---------------------------------------------------------------------


def test_a_truncated_synset_is_named_set_aside_and_made_again(finished_run, caplog):
    config = {**tiny(finished_run), "out": str(finished_run)}
    [path] = [p for p in (finished_run / "synsets").glob("*.safetensors") if load_synset(p)[1]["method"] == "dm"]
    images = load_synset(path)[0].images
    torn = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(torn)
    [cell] = [c for c in make_plan(config) if c.method == "dm"]
    with caplog.at_level(logging.WARNING):
        [again] = run_cell(cell, config)
    assert str(path) in caplog.text and "set aside" in caplog.text
    assert path.with_name(path.name + ".corrupt").read_bytes() == torn
    assert again["status"] == "ok" and again["distill_reused"] is False
    assert load_synset(path)[0].images.equal(images)


def test_an_unreadable_expert_is_named_and_set_aside(tmp_path):
    from fairbench.distill.experts import load_experts, missing_experts

    (tmp_path / "expert_0.pt").write_bytes(b"PK\x03\x04 cut off")
    with pytest.raises(
        FairbenchError, match=r"expert_0.pt: not a readable expert trajectory .*preparation step makes it again"
    ):
        load_experts(tmp_path, 1, "cpu")
    assert (tmp_path / "expert_0.pt.corrupt").is_file() and missing_experts(tmp_path, 1)
