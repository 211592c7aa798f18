"""Finding a dataset's native files, with one wording for what is missing and where to get it."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import DataNotFoundError


def missing(path: Path, how_to_get: str) -> DataNotFoundError:
    """The error for a missing file or folder; it also names the highest folder that is absent,
    so a mistyped ``data_root`` reads as such rather than as one missing file."""
    absent = path
    while not absent.parent.exists() and absent.parent != absent:
        absent = absent.parent
    note = f" ({absent} does not exist)" if absent != path else ""
    return DataNotFoundError(f"{path} not found{note}; {how_to_get}")


def require_file(path: Path, how_to_get: str) -> Path:
    if not path.is_file():
        raise missing(path, how_to_get)
    return path


def require_dir(path: Path, how_to_get: str) -> Path:
    if not path.is_dir():
        raise missing(path, how_to_get)
    return path
