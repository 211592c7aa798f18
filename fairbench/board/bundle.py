"""Submission bundles on disk: a folder or a ``.zip`` holding ``manifest.json`` and ``synsets/``.

The manifest (format ``fairbench-bundle/1``) lists one *cell* per synthetic set × evaluation
protocol, with what the submitter claims; the synthetic sets are safetensors files (never pickles,
:mod:`fairbench.distill.synsets`), each named in the manifest with its SHA-256. Everything here is about
reading and writing that layout; what goes into a manifest is :mod:`fairbench.board.submit`'s concern
and what is checked is :mod:`fairbench.board.verify`'s.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ..core.atomic import atomic_path
from ..core.errors import FairbenchError

FORMAT = "fairbench-bundle/1"
MANIFEST = "manifest.json"
CELL_KEYS = (
    "dataset",
    "dataset_params",
    "ipc",
    "method",
    "seed",
    "evaluator",
    "synset",
    "synset_sha256",
    "protocol_id",
    "protocol",
    "claimed",
    "eval_seeds",
    "provenance",
)


class BundleUnreadable(FairbenchError):
    """A bundle whose layout or manifest cannot be read (``fairbench verify`` exits 2)."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bundle(out: Path, manifest: dict, files: dict[str, Path]) -> Path:
    """Write ``manifest`` and ``files`` (bundle path → source file) as a folder, or as a zip when
    ``out`` ends in ``.zip``; all or nothing, and never over an existing path."""
    out = Path(out)
    if out.exists():
        raise FairbenchError(f"{out} exists; name a new folder or .zip for the bundle")
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    if out.suffix == ".zip":
        with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(MANIFEST, text)
            for name, source in files.items():
                archive.write(source, name)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (staging / MANIFEST).write_text(text)
        for name, source in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staging / name)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _safe_member(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts


@contextmanager
def open_bundle(path: str | Path) -> Iterator[tuple[dict, Path]]:
    """The manifest and a folder holding the bundle's files (a zip is unpacked to a temporary one)."""
    path = Path(path)
    if path.is_dir():
        yield _manifest(path), path
        return
    if not path.is_file():
        raise BundleUnreadable(f"{path}: no such bundle; pass a folder or .zip made by fairbench submit")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise BundleUnreadable(
            f"{path}: not a zip file ({error}); pass a folder or .zip made by fairbench submit"
        ) from None
    with archive, tempfile.TemporaryDirectory(prefix="fairbench-bundle-") as folder:
        names = archive.namelist()
        unsafe = [n for n in names if not _safe_member(n)]
        if unsafe:
            raise BundleUnreadable(f"{path}: member '{unsafe[0]}' would be written outside the bundle")
        archive.extractall(folder)
        yield _manifest(Path(folder)), Path(folder)


def _manifest(folder: Path) -> dict:
    file = folder / MANIFEST
    if not file.is_file():
        raise BundleUnreadable(f"{folder}: no {MANIFEST}; pass a folder or .zip made by fairbench submit")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleUnreadable(f"{file}: not JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleUnreadable(
            f"{file}: not a {FORMAT} manifest (its 'format' is "
            f"{manifest.get('format') if isinstance(manifest, dict) else None!r})"
        )
    cells = manifest.get("cells")
    if not isinstance(cells, list) or not cells:
        raise BundleUnreadable(f"{file}: 'cells' must be a non-empty list")
    for number, cell in enumerate(cells):
        missing = [k for k in CELL_KEYS if not isinstance(cell, dict) or k not in cell]
        if missing:
            raise BundleUnreadable(f"{file}: cell {number} lacks {', '.join(missing)}")
        if not _safe_member(str(cell["synset"])):
            raise BundleUnreadable(f"{file}: cell {number}'s synset path '{cell['synset']}' leaves the bundle")
    return manifest
