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
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ..core.atomic import atomic_path, why_not_written
from ..core.errors import FairbenchError, first_line
from .manifest import FORMAT, MAX_CELLS, MAX_MANIFEST_BYTES, BundleUnreadable, check_manifest

__all__ = ["FORMAT", "MANIFEST", "BundleUnreadable", "open_bundle", "sha256", "write_bundle"]

MANIFEST = "manifest.json"
MAX_BUNDLE_BYTES = 1 << 30  # every file together; an honest set is a few MB (docs/reliability.md)
MAX_MEMBERS = MAX_CELLS + 2  # the manifest, the synsets/ folder, one set per cell at most
# deflate reaches ~1030x on constant bytes; an honest set of real C-MNIST digits (a constant
# background) measured 103x, optimised pixels far less (docs/reliability.md)
MAX_RATIO = 400
MIN_RATIO_BYTES = 1 << 20  # below 1 MiB compressed, the size cap alone bounds a member


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


def named_files(manifest: dict) -> list[str]:
    """The bundle paths a (schema-checked) manifest names: itself and each cell's synthetic set."""
    return [MANIFEST, *dict.fromkeys(cell["synset"] for cell in manifest["cells"])]


@contextmanager
def open_bundle(path: str | Path) -> Iterator[tuple[dict, Path]]:
    """The manifest, checked whole against its schema, and a folder holding the bundle's files
    (a zip is unpacked, within :data:`MAX_BUNDLE_BYTES`, into a temporary folder removed on every
    exit). A bundle holds its manifest and the sets it names as regular files, nothing else."""
    path = Path(path)
    if path.is_dir():
        yield _folder_bundle(path), path
        return
    if not path.is_file():
        raise BundleUnreadable(f"{path}: no such bundle; pass a folder or .zip made by fairbench submit")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise BundleUnreadable(
            f"{path}: not a zip file ({error}); pass a folder or .zip made by fairbench submit"
        ) from None
    with archive, _scratch_folder() as folder:
        manifest = _unpack(path, archive, folder)
        yield manifest, folder


def _folder_bundle(folder: Path) -> dict:
    """The manifest of a bundle folder, after checking that everything in it is a regular file
    (no symlink, FIFO or device: a link leaves the bundle, a FIFO or ``/dev/zero`` never ends) that
    the manifest names."""
    manifest = _parse_manifest(_read_manifest_file(folder), f"{folder / MANIFEST}")
    named = set(named_files(manifest))
    total = 0
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            member = Path(root, name)
            relative = member.relative_to(folder).as_posix()
            info = member.lstat()
            if stat.S_ISDIR(info.st_mode):
                if relative != "synsets":
                    raise BundleUnreadable(f"{folder}: '{relative}' is a folder the manifest does not name")
                continue
            if not stat.S_ISREG(info.st_mode):
                raise BundleUnreadable(
                    f"{folder}: '{relative}' is {_kind(info.st_mode)}, not a regular file; a bundle holds "
                    f"only regular files"
                )
            if relative not in named:
                raise BundleUnreadable(f"{folder}: '{relative}' is not named by the manifest; remove it")
            total += info.st_size
    if total > MAX_BUNDLE_BYTES:
        raise BundleUnreadable(f"{folder}: its files hold {total} bytes, more than the {MAX_BUNDLE_BYTES} allowed")
    return manifest


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"


def _read_manifest_file(folder: Path) -> bytes:
    file = folder / MANIFEST
    try:
        info = file.lstat()
    except FileNotFoundError:
        raise BundleUnreadable(f"{folder}: no {MANIFEST}; pass a folder or .zip made by fairbench submit") from None
    if not stat.S_ISREG(info.st_mode):
        raise BundleUnreadable(f"{file}: {_kind(info.st_mode)}, not a regular file")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise BundleUnreadable(f"{file}: {info.st_size} bytes, more than the {MAX_MANIFEST_BYTES} a manifest may hold")
    try:
        return file.read_bytes()
    except OSError as error:
        raise BundleUnreadable(f"{file}: cannot be read ({error.strerror or error})") from None


def _parse_manifest(raw: bytes, source: str) -> dict:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise BundleUnreadable(f"{source}: not JSON ({first_line(error)})") from None
    return check_manifest(manifest, source)


def _unpack(path: Path, archive: zipfile.ZipFile, folder: Path) -> dict:
    """Check a zip's members, then its manifest, then write the members it names into ``folder``,
    counting the bytes as they come (a member's declared size may lie)."""
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise BundleUnreadable(f"{path}: {len(members)} members, more than the {MAX_MEMBERS} a bundle may hold")
    files = {}
    for info in members:
        if not _safe_member(info.filename):
            raise BundleUnreadable(f"{path}: member '{info.filename}' would be written outside the bundle")
        mode = info.external_attr >> 16
        if info.is_dir():
            if info.filename.rstrip("/") != "synsets":
                raise BundleUnreadable(f"{path}: '{info.filename}' is a folder the manifest does not name")
            continue
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):  # 0: a writer that records no file type
            raise BundleUnreadable(f"{path}: member '{info.filename}' is {_kind(mode)}, not a regular file")
        if info.file_size > MAX_RATIO * max(info.compress_size, MIN_RATIO_BYTES):
            raise BundleUnreadable(
                f"{path}: member '{info.filename}' expands {info.compress_size} bytes to {info.file_size}, "
                f"more than {MAX_RATIO} times (a zip bomb?)"
            )
        if info.filename in files:
            raise BundleUnreadable(f"{path}: member '{info.filename}' appears twice")
        files[info.filename] = info
    declared = sum(info.file_size for info in files.values())
    if declared > MAX_BUNDLE_BYTES:
        raise BundleUnreadable(
            f"{path}: its members expand to {declared} bytes, more than the {MAX_BUNDLE_BYTES} allowed"
        )
    if MANIFEST not in files:
        raise BundleUnreadable(f"{path}: no {MANIFEST}; pass a folder or .zip made by fairbench submit")
    if files[MANIFEST].file_size > MAX_MANIFEST_BYTES:
        raise BundleUnreadable(
            f"{path}: its {MANIFEST} holds {files[MANIFEST].file_size} bytes, more than the {MAX_MANIFEST_BYTES} allowed"
        )
    manifest = _parse_manifest(_read_member(path, archive, files[MANIFEST], MAX_MANIFEST_BYTES), f"{path}:{MANIFEST}")
    named = named_files(manifest)
    unnamed = sorted(set(files) - set(named))
    if unnamed:
        raise BundleUnreadable(f"{path}: member '{unnamed[0]}' is not named by the manifest; a bundle holds only those")
    free = shutil.disk_usage(folder).free
    if declared > free:
        raise BundleUnreadable(f"{path}: unpacking needs {declared} bytes, {folder} has {free} free")
    for name in named[1:]:
        if name in files:
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                target.write_bytes(_read_member(path, archive, files[name], files[name].file_size))
            except OSError as error:
                raise BundleUnreadable(f"{path}: cannot unpack '{name}' ({why_not_written(error)})") from None
    return manifest


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, refused past ``limit`` whatever its header says."""
    chunks, size = [], 0
    try:
        with archive.open(info) as f:
            while block := f.read(1 << 20):
                size += len(block)
                if size > limit:
                    raise BundleUnreadable(
                        f"{path}: member '{info.filename}' holds more than its declared {limit} bytes"
                    )
                chunks.append(block)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as error:
        raise BundleUnreadable(f"{path}: member '{info.filename}' cannot be read ({first_line(error)})") from None
    return b"".join(chunks)


_SCRATCH_PREFIX = "fairbench-bundle-"


@contextmanager
def _scratch_folder() -> Iterator[Path]:
    """A temporary folder named after this process, removed on every exit; folders that killed
    processes left (``kill -9`` runs no cleanup) are removed by the next bundle opened."""
    base = Path(tempfile.gettempdir())
    for stale in base.glob(f"{_SCRATCH_PREFIX}*-*"):
        pid = stale.name[len(_SCRATCH_PREFIX) :].partition("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{_SCRATCH_PREFIX}{os.getpid()}-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
