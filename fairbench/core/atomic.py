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
