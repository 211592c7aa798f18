"""The preprocessing cache: the decoded, resized images of an image-folder dataset, one ``.npy`` file.

Decoding CelebA's 180,000 JPEGs takes minutes; reading them back as one array takes seconds. An
entry is keyed by what decides its pixels: the dataset, the decoding settings (image size, crop) and
every source file's path, size and modification time. A replaced or edited file therefore makes a
new entry, while settings that only relabel the images (CelebA's ``target``/``group``, a seed) share
one. idx and pickle datasets (MNIST, CIFAR-10) are already one array on disk and are not cached.

Where: ``$FAIRBENCH_CACHE`` if set, else ``$XDG_CACHE_HOME/fairbench`` (``~/.cache/fairbench``),
entries under ``datasets/``. Deleting that folder, or any file in it, is always safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .files import missing

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    if os.environ.get("FAIRBENCH_CACHE"):
        return Path(os.environ["FAIRBENCH_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fairbench"


def fingerprint(files: list[str], how_to_get: str) -> list[tuple[str, int, int]]:
    """(path, size, mtime) per file; a file that is listed but absent is named here."""
    prints = []
    for path in files:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise missing(Path(path), how_to_get) from None
        prints.append((path, stat.st_size, stat.st_mtime_ns))
    return prints


def entry_path(dataset: str, settings: dict, files: list[str], how_to_get: str) -> Path:
    key = json.dumps(
        {"format": 1, "dataset": dataset, "settings": settings, "files": fingerprint(files, how_to_get)}, sort_keys=True
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    tag = "-".join(f"{k}{v}" for k, v in sorted(settings.items()))
    return cache_dir() / "datasets" / f"{dataset}-{tag}-{digest}.npy"


def cached_images(
    dataset: str, settings: dict, files: list[str], decode: Callable[[], np.ndarray], how_to_get: str
) -> np.ndarray:
    """``decode()``'s array for these files and settings, from the cache when an earlier load made it.

    An entry that cannot be read (a truncated write, a full disk) is named, set aside as
    ``<entry>.unreadable-<pid>`` and rebuilt; one that cannot be written is skipped: the cache only
    ever saves time, it never fails a load. Entries are written to a temporary file and renamed
    into place, so a load never sees half an entry.
    """
    path = entry_path(dataset, settings, files, how_to_get)
    if path.is_file():
        try:
            images = np.load(path)
            if len(images) == len(files):
                return images
        except (OSError, ValueError, EOFError):
            pass
        aside = path.with_name(f"{path.name}.unreadable-{os.getpid()}")
        try:
            os.replace(path, aside)
            log.warning(
                "fairbench: the dataset cache entry %s is unreadable; set aside as %s, rebuilding it", path, aside.name
            )
        except OSError:
            log.warning("fairbench: the dataset cache entry %s is unreadable; rebuilding it", path)
    images = decode()
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as f:
            np.save(f, images)
        os.replace(partial, path)  # atomic: a concurrent load sees the whole entry or none
    except OSError as e:
        partial.unlink(missing_ok=True)
        log.warning("fairbench: cannot write the dataset cache %s (%s); the next load decodes again", path, e)
    return images
