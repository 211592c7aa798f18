import errno
import os
import pathlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The smallest ci run that still distills and evaluates: one iteration, one epoch, a width-4 net.
TINY_CI = [
    "suite=ci",
    "ipc=[2]",
    "num_eval=1",
    "eval.epochs=1",
    "models.convnet.width=4",
    "distill.iterations=1",
    "distill.real_batch=4",
]

REPO = Path(__file__).resolve().parent.parent
needs_compiler = pytest.mark.skipif(
    not (shutil.which("c++") or shutil.which("g++")), reason="torch.compile on a CPU needs a C++ compiler"
)


@pytest.fixture(autouse=True)
def private_dataset_cache(tmp_path_factory, monkeypatch):
    """Every test (and the fairbench processes it starts) gets its own empty preprocessing cache,
    never the user's ``~/.cache/fairbench``."""
    cache = tmp_path_factory.mktemp("fairbench-cache")
    monkeypatch.setenv("FAIRBENCH_CACHE", str(cache))
    return cache


@pytest.fixture
def fairbench_cli(tmp_path):
    """Run ``python -m fairbench ARGS`` in a scratch folder; returns the completed process."""

    def run(*args, cwd=None, timeout=600):
        return subprocess.run(
            fairbench_command(*args),
            cwd=cwd or tmp_path,
            env=checkout_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


def fairbench_command(*args):
    return [sys.executable, "-m", "fairbench", *args]


def checkout_env():
    """The subprocess imports this checkout's fairbench, whatever is installed."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def refuse_lookups_under(monkeypatch, folder: Path, lookup: str) -> None:
    """Root ignores mode bits, so a folder this user may not enter is simulated where fairbench
    looks: ``Path.<lookup>`` (``exists``, ``is_file``) raises what the OS would (EACCES) for paths
    inside ``folder``."""
    real = getattr(pathlib.Path, lookup)

    def refused(path):
        if folder in path.parents:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(pathlib.Path, lookup, refused)
