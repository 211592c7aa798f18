"""Writes that either happen whole or not at all.

A kill or a full disk in the middle of a write must never leave a truncated artifact that a later
run trusts: every file fairbench keeps (synthetic sets, experts, dataset caches, tables) is written
to a temporary file beside its destination and renamed into place, which POSIX makes atomic.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import FairbenchError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; it replaces ``path`` only on success.

    The temporary file is created with the umask's permissions (``tempfile.mkstemp`` would make it
    private to its owner), so the renamed file reads like any other the user writes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def why_not_written(error: OSError) -> str:
    """The reason a write failed, in words a user acts on (a full disk, a read-only folder)."""
    if error.errno == errno.ENOSPC:
        return "the disk is full"
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "it is read-only"
    return error.strerror or str(error)


def check_writable(folder: Path, setting: str = "out") -> None:
    """Make ``folder`` if needed and prove a file can be written and renamed in it, or one line why
    not, naming the ``setting`` that chose it: before any compute, not after the first cell."""
    try:
        if folder.exists() and not folder.is_dir():  # exists() itself fails on a name over 255 bytes
            raise FairbenchError(f"{setting}={folder} is a file, not a folder; choose a folder for what it holds")
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "permission denied")
        write_text_atomic(folder / ".write-check", "fairbench checks that it can write here\n")
        (folder / ".write-check").unlink()
    except OSError as error:
        raise FairbenchError(
            f"cannot write to {setting}={folder}: {why_not_written(error)}; choose another {setting}= "
            "(nothing was computed)"
        ) from None
