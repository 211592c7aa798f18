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
    assert main(["run", *argv]) == 1  # the rerun retries them, and fails them the same way
    assert "Traceback" not in capsys.readouterr().err


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
