"""Where the declarative registry and the suite files live.

They sit at the top of the repository, so they read as data and an edited suite takes effect at
once in a checkout or an editable install. Every built install (wheel, ``--user``, ``pip install
.``) carries them inside the package as ``fairbench/resources/registry`` and
``fairbench/resources/suites`` (``pyproject.toml`` maps those package folders onto the top-level
ones), read through :mod:`importlib.resources`. An install that has neither says so.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from .errors import FairbenchError

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the folder of the fairbench package
SOURCE_TREE = PACKAGE_DIR.parent  # a checkout's root, or site-packages


@cache
def data_home() -> Path:
    """The folder holding ``registry/`` and ``suites/``: the package's resources, else the checkout."""
    shipped = Path(str(files("fairbench").joinpath("resources")))
    for home in (shipped, SOURCE_TREE):
        if (home / "registry").is_dir() and (home / "suites").is_dir():
            return home
    raise FairbenchError(
        f"this fairbench install lacks its registry/ and suites/ folders (looked in {shipped} "
        f"and {SOURCE_TREE}); reinstall it with pip, or run it from a checkout"
    )


def registry_dir() -> Path:
    return data_home() / "registry"


def suites_dir() -> Path:
    return data_home() / "suites"
