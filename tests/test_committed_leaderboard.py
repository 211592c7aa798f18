"""The committed leaderboard/ is what its entries render to: nobody edits a table by hand."""

import shutil
from pathlib import Path

from fairbench.board.entries import read_entries
from fairbench.board.render import render_leaderboard

BOARD = Path(__file__).resolve().parents[1] / "leaderboard"


def test_the_committed_tables_are_the_rendering_of_the_committed_entries(tmp_path):
    shutil.copytree(BOARD / "entries", tmp_path / "entries")
    shutil.copy(BOARD / "notes.md", tmp_path / "notes.md")
    render_leaderboard(tmp_path)
    for name in ("README.md", "leaderboard.tex"):
        assert (tmp_path / name).read_text() == (BOARD / name).read_text(), (
            f"leaderboard/{name} is not its entries' rendering: run fairbench leaderboard render"
        )
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(p.name for p in (BOARD / "plots").iterdir())


def test_every_committed_entry_was_measured_with_fresh_runs_and_no_test_contact():
    entries = read_entries(BOARD)
    assert entries
    for entry in entries:
        measured = entry["measured"]
        assert len(measured["eval_seeds"]) >= 3
        assert not set(measured["eval_seeds"]) & set(entry["reported"]["eval_seeds"])
        assert measured["contact"]["flagged"] is False
        assert len(measured["group_acc"]["runs"]) == len(measured["eval_seeds"])


def test_every_committed_entry_is_a_protocol_its_registered_suite_defines():
    """The board's suite (quickstart-long) still makes each committed row: `fairbench run
    suite=quickstart-long` reproduces the table, and `leaderboard add` needs no protocols=any."""
    from fairbench.board.protocols import suite_of

    for entry in read_entries(BOARD):
        assert suite_of({"protocol": entry["protocol"], "protocol_id": entry["protocol_id"]}) == "quickstart-long"
