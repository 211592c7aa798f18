"""Odd inputs to ``fairbench run``: a plugin that raises, exits or hangs fails its cell, not the suite.

In-process (``main``), with the plugin registries restored after each test (test_plugins's fixture).
"""

import json
import textwrap

import pytest
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
    from fairbench.core.errors import FairbenchError
    from fairbench.run.outdir import check_writable

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
def test_a_data_root_or_experts_dir_that_is_a_file_is_one_line(tmp_path, capsys, key):
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    assert main(["run", "suite=ci", f"{key}={path}", "--dry-run"]) == 2
    assert (
        capsys.readouterr().err
        == f"fairbench: error: {key}={path} is a file, not a folder; give the folder that holds (or will hold) it\n"
    )
