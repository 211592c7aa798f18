"""The package's shape and its promised signatures, checked the way the field checks them.

- import-linter (the contracts in pyproject.toml): each folder imports only the folders below it,
  and no modules of one folder import each other in a circle;
- ruff: lint and format;
- mypy: the public face (``fairbench``'s exports, ``fairbench.testing``, the ``register_*``
  signatures), as a user's type checker sees it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["core", "data", "models", "training", "distill", "evaluation", "report", "run", "board", "regress"]
TOP_MODULES = {"__init__.py", "__main__.py", "cli.py", "testing.py"}


def _tool(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        pytest.fail(f"{name} is not installed; it is a test dependency (pip install -e '.[test]')")
    return found


def _lint_imports(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [_tool("lint-imports"), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_is_one_folder_per_layer():
    package = ROOT / "fairbench"
    assert {p.name for p in package.glob("*.py")} == TOP_MODULES
    assert {p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS)


def test_the_layer_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def _copy_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "fairbench", tree / "fairbench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_a_planted_upward_import_breaks_the_contract_with_its_chain(tmp_path):
    tree = _copy_tree(tmp_path)
    errors = tree / "fairbench" / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\nfrom ..board import verify  # planted\n")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "fairbench.core is not allowed to import fairbench.board" in result.stdout
    assert "fairbench.core.errors -> fairbench.board.verify" in result.stdout


def test_a_planted_circle_inside_a_folder_breaks_the_contract(tmp_path):
    tree = _copy_tree(tmp_path)
    atomic = tree / "fairbench" / "core" / "atomic.py"
    atomic.write_text(atomic.read_text() + "\nfrom .registry import Registry  # planted\n")
    registry = tree / "fairbench" / "core" / "registry.py"
    registry.write_text(registry.read_text() + "\nfrom .atomic import atomic_path  # planted\n")
    result = _lint_imports(tree)
    assert result.returncode != 0 and "no import circles" in result.stdout
    assert "BROKEN" in result.stdout


def test_ruff_lint_and_format_pass():
    ruff = _tool("ruff")
    lint = subprocess.run(
        [ruff, "check", "fairbench", "tests", "benchmarks", "examples"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    formatted = subprocess.run(
        [ruff, "format", "--check", "fairbench", "tests", "benchmarks", "examples"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_mypy_accepts_the_public_face_and_a_user_of_it(tmp_path):
    """A plugin author's file, typed the way docs/plugins.md writes one, checked against the
    package's own annotations: a changed signature of a public name fails here."""
    user = tmp_path / "user_plugin.py"
    user.write_text(
        textwrap.dedent("""
        import torch
        import fairbench
        from fairbench import (DatasetSplits, DistillContext, Distiller, FairbenchError, GroupDataset,
                               MatchingTerms, SyntheticSet, method_provenance, register_base,
                               register_dataset, register_evaluator, register_variant, run_cell)
        from fairbench.testing import CheckReport, check_method

        @register_variant("typed", kind="mean", description="equal weights")
        def typed(labels: torch.Tensor, groups: torch.Tensor, num_classes: int, num_groups: int) -> MatchingTerms:
            return fairbench.matching_terms("fairdd", labels, groups, num_classes, num_groups)

        report: CheckReport = check_method("dm+typed", overrides={"iterations": 1}, ipc=1, seed=0, device="cpu")
        ok: bool = report.ok
        about: dict = method_provenance("dm+typed")
        version: str = fairbench.__version__
    """)
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--ignore-missing-imports",
            "--follow-imports=silent",
            "--no-error-summary",
            str(user),
            str(ROOT / "fairbench" / "__init__.py"),
            str(ROOT / "fairbench" / "testing.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
