"""Odd inputs to ``fairbench run``: a plugin that raises, exits or hangs fails its cell, not the suite.

In-process (``main``), with the plugin registries restored after each test (test_plugins's fixture).
"""

import json
import textwrap

import pytest
from conftest import refuse_lookups_under
from test_plugins import isolated_registries  # noqa: F401 (a fixture)

from fairbench.cli import main

PLUGIN = """
import time
import fairbench


@fairbench.register_base("{name}")
class Broken(fairbench.Distiller):
    defaults = {{"iterations": 1}}

    def distill(self, train, ipc, ctx):
        {body}
"""
pytestmark = pytest.mark.usefixtures("isolated_registries")
TINY = ["suite=ci", "num_eval=1", "eval.epochs=1", "distill.iterations=1"]


def plugin(tmp_path, name, body):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(PLUGIN.format(name=name, body=body)))
    return path


def test_a_plugin_that_raises_or_hangs_fails_its_cell_and_the_suite_goes_on(tmp_path, capsys):
    """One run of two cells: a plugin base that raises, then one that never returns (cell_timeout),
    which still runs after the first failed."""
    raising = plugin(tmp_path, "raising", "raise ZeroDivisionError('plugin bug')")
    hanging = plugin(tmp_path, "hanging", "time.sleep(600)")
    out = tmp_path / "out"
    argv = [*TINY, "methods=[raising,hanging]", f"plugins=[{raising},{hanging}]", "cell_timeout=2", f"out={out}"]
    assert main(["run", *argv]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "2 cells failed" in err
    assert "ZeroDivisionError: plugin bug (traceback in" in err and "timed out: cell_timeout=2 s ran out" in err
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["method"], r["status"]) for r in records] == [("raising", "failed"), ("hanging", "failed")]
    (log,) = (out / "logs").glob("*.traceback.txt")
    assert "Traceback (most recent call last)" in log.read_text() and "plugin bug" in log.read_text()


@pytest.mark.parametrize("command", [["list", "methods"], ["run", "--dry-run"]])
def test_a_plugin_that_calls_sys_exit_at_import_is_one_line(tmp_path, capsys, command):
    path = tmp_path / "exits.py"
    path.write_text("import sys\nsys.exit(3)\n")
    assert main([*command, f"plugins=[{path}]"]) == 2
    assert capsys.readouterr().err == f"fairbench: error: plugin '{path}' called sys.exit(3) while it was imported\n"


@pytest.mark.parametrize("value", ["0", "-1", "true", "soon"])
def test_cell_timeout_must_be_a_positive_number(capsys, value):
    assert main(["run", "--dry-run", f"cell_timeout={value}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cell_timeout takes a positive number" in err


# --- 5. run settings and data files ---------------------------------------------------------


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("seeds=[100000000000000000000]", "seeds must lie in 0..4294967295"),
        ("seeds=[-1]", "seeds must lie in"),
        ("out=123", "out takes a folder path, got 123"),
        ("out=true", "out takes a folder path, got True"),
        ("out=[a,b]", "out takes a folder path, got ['a', 'b']"),
    ],
)
def test_run_settings_that_used_to_pass_dry_run_then_crash(capsys, override, fragment):
    assert main(["run", "--dry-run", override]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err


@pytest.mark.parametrize("value", ["maybe", "1", "[true]"])
def test_distill_compile_takes_true_or_false(capsys, value):
    assert main(["run", "--dry-run", f"distill.compile={value}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "compile=" in err and "bool" in err, err


def test_distill_compile_is_accepted_and_planned(capsys):
    assert main(["run", "--dry-run", "suite=ci", "distill.compile=true"]) == 0


def _idx(path, magic: bytes, dims: tuple, payload: bytes, gz=False):
    import gzip
    import struct

    raw = magic + struct.pack(f">{len(dims)}i", *dims) + payload
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw)[:-12] + b"garbage-tail")
    else:
        path.write_bytes(raw)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda p: _idx(p, bytes([0, 0, 0x08, 1]), (4,), bytes(4), gz=True), "cannot read idx file"),
        (lambda p: _idx(p, bytes([0, 0, 0x08, 1]), (-4,), b""), "dimensions (-4,)"),
        (lambda p: _idx(p, bytes([0, 0, 0x08, 1]), (0,), b""), "dimensions (0,)"),
        (lambda p: _idx(p, bytes([0, 0, 0x0D, 1]), (4,), bytes(16)), "idx file of float32 values"),
        (lambda p: _idx(p, bytes([0, 0, 0x08, 3]), (), b""), "truncated or corrupt idx file"),
    ],
    ids=["corrupt gz", "negative dimension", "zero dimension", "float images", "short header"],
)
def test_a_damaged_idx_file_is_one_line_naming_it(tmp_path, capsys, make, fragment):
    from fairbench.data.idx import read_idx

    make(tmp_path / "train-images-idx3-ubyte")
    path = next(tmp_path.glob("train-images-idx3-ubyte*"))
    with pytest.raises(Exception) as refused:
        read_idx(path)
    assert type(refused.value).__name__ == "FairbenchError" and fragment in str(refused.value)
    assert str(path) in str(refused.value) and "\n" not in str(refused.value)


def test_num_eval_an_ensemble_cannot_hold_is_refused_before_any_distillation(tmp_path, capsys):
    """10^7 ConvNets of 24,714 weights need at least 3.6 TiB, more than any test machine has."""
    out = tmp_path / "out"
    assert main(["run", "suite=ci", "methods=[random]", "num_eval=10000000", "ensemble=true", f"out={out}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "GiB" in err and "num_eval" in err and not out.exists()


def test_show_refuses_an_output_it_would_misname(tmp_path, capsys):
    assert main(["show", str(tmp_path / "set.safetensors"), "-o", str(tmp_path / "x.jpg")]) == 2
    err = capsys.readouterr().err
    assert "name the output x.png" in err and not list(tmp_path.iterdir())


def test_an_out_name_over_255_bytes_is_one_line(tmp_path):
    from fairbench.core.atomic import check_writable
    from fairbench.core.errors import FairbenchError

    with pytest.raises(FairbenchError, match="cannot write to out=.*: File name too long"):
        check_writable(tmp_path / ("x" * 300) / "run")


def test_a_disk_that_fills_while_a_set_is_written_is_one_line_naming_the_file(tmp_path, monkeypatch):
    import torch
    from safetensors import SafetensorError

    from fairbench.core.errors import FairbenchError
    from fairbench.distill import SyntheticSet, synsets

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })")

    monkeypatch.setattr(synsets, "save_file", full)
    path = tmp_path / "synsets" / "a.safetensors"
    with pytest.raises(FairbenchError, match=f"cannot write the synthetic set {path}: the disk is full"):
        synsets.save_synset(path, SyntheticSet(torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.long)), {})
    assert list((tmp_path / "synsets").iterdir()) == []  # no temporary file left


@pytest.mark.parametrize(
    "setting, fragment",
    [
        ("models.convnet.width=0", "models.convnet.width=0 is invalid; it must be a positive integer"),
        ("models.convnet.depth=-1", "models.convnet.depth=-1 is invalid; it must be a positive integer"),
    ],
)
def test_a_network_size_that_cannot_build_is_refused_at_dry_run(capsys, setting, fragment):
    assert main(["run", "suite=ci", setting, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err


@pytest.mark.parametrize("key", ["data_root", "experts_dir"])
def test_a_data_root_or_experts_dir_behind_a_folder_this_user_cannot_enter_is_one_line(
    tmp_path, monkeypatch, capsys, key
):
    locked = tmp_path / "locked"
    refuse_lookups_under(monkeypatch, locked, "exists")
    assert main(["run", "suite=ci", f"{key}={locked / 'data'}", "--dry-run"]) == 2
    assert capsys.readouterr().err == f"fairbench: error: {key}={locked / 'data'} cannot be opened: permission denied\n"


@pytest.mark.parametrize("key", ["data_root", "experts_dir"])
def test_a_data_root_or_experts_dir_that_is_a_file_is_one_line(tmp_path, capsys, key):
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    assert main(["run", "suite=ci", f"{key}={path}", "--dry-run"]) == 2
    assert (
        capsys.readouterr().err
        == f"fairbench: error: {key}={path} is a file, not a folder; give the folder that holds (or will hold) it\n"
    )


def test_a_plugin_that_raises_fails_its_cell_again_on_the_rerun(tmp_path, capsys):
    """A rerun into the same out= retries the failed cell: it fails alone again, its record appended
    after the first failure's, and the exit is 1, not a traceback."""
    raising = plugin(tmp_path, "raising", "raise ZeroDivisionError('plugin bug')")
    argv = ["run", *TINY, "methods=[random,raising]", f"plugins=[{raising}]", f"out={tmp_path / 'out'}"]
    assert main(argv) == 1
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "1 cells failed" in err and "ZeroDivisionError: plugin bug" in err
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [(r["method"], r["status"]) for r in records] == [
        ("random", "ok"),
        ("raising", "failed"),
        ("raising", "failed"),
    ]
    (log,) = (tmp_path / "out" / "logs").glob("*.traceback.txt")  # one per cell: its latest attempt
    assert "plugin bug" in log.read_text()


def refuse_writes_under(monkeypatch, folder):
    """Root ignores mode bits, so a read-only folder is simulated where fairbench writes: the
    atomic writer raises what the OS would (EROFS) for paths inside ``folder``."""
    import errno

    import fairbench.core.atomic as atomic

    write = atomic.write_text_atomic

    def read_only(path, text):
        if folder in [path, *path.parents]:
            raise OSError(errno.EROFS, "Read-only file system")
        write(path, text)

    monkeypatch.setattr(atomic, "write_text_atomic", read_only)


def test_a_read_only_experts_dir_is_one_line_before_any_expert_trains(tmp_path, monkeypatch, capsys):
    from test_zoo import TINY as ZOO_TINY

    experts = tmp_path / "experts"
    refuse_writes_under(monkeypatch, experts)
    out = tmp_path / "out"
    assert main(["run", *ZOO_TINY, "methods=[mtt]", f"experts_dir={experts}", f"out={out}"]) == 2
    (line,) = capsys.readouterr().err.splitlines()[-1:]
    assert line.startswith(f"fairbench: error: cannot write to experts_dir={experts}/cmnist-mini-")
    assert "it is read-only; choose another experts_dir= (nothing was computed)" in line
    assert not list(experts.rglob("*.pt")) and not (out / "results.jsonl").exists()


def test_a_read_only_experts_dir_that_holds_every_expert_is_only_read(tmp_path, monkeypatch):
    from fairbench.distill.experts import make_experts

    (tmp_path / "expert_0.pt").write_bytes(b"made by an earlier run")
    refuse_writes_under(monkeypatch, tmp_path)

    def no_net():
        raise AssertionError("no expert may train: every one is there")

    assert make_experts(tmp_path, 1, None, None, {}, no_net, "cpu") == 0


def test_a_disk_that_fills_while_experts_are_written_names_the_file_and_keeps_the_earlier_ones(tmp_path, monkeypatch):
    import errno

    import torch

    import fairbench.distill.experts as experts
    from fairbench.core.errors import FairbenchError

    monkeypatch.setattr(experts, "train_expert", lambda *args: torch.zeros(2, 3))
    save = torch.save

    def full_after_one(obj, path):
        if list(tmp_path.glob("expert_*.pt")):
            raise OSError(errno.ENOSPC, "No space left on device")
        save(obj, path)

    monkeypatch.setattr(experts.torch, "save", full_after_one)
    with pytest.raises(FairbenchError, match=r"cannot write expert trajectory .*expert_1.pt: the disk is full"):
        experts.make_experts(tmp_path, 2, None, None, {}, lambda: torch.nn.Linear(1, 1), "cpu")
    assert [p.name for p in tmp_path.iterdir()] == ["expert_0.pt"]  # no partial file of expert 1
