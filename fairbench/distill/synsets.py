"""Synthetic sets on disk: safetensors files, never pickles.

A synthetic set may come from someone else (a leaderboard submission), so it is stored in a format
that cannot run code when read: ``images`` (float32, normalised, class-major) and ``labels``
(int64) tensors, with the set's metadata (dataset, ipc, method, protocol id, the distiller's
extras and timing stats) as JSON under the safetensors header key ``fairbench``.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..core.atomic import atomic_path
from ..core.errors import FairbenchError, first_line
from .base import SyntheticSet

SUFFIX = ".safetensors"
TENSOR_KEYS = ("images", "labels")
_META_KEY = "fairbench"
_COUNT_EXTRAS = ("factor", "stored_per_class")  # IDC's extras, counts that size the set


class SynsetUnreadable(FairbenchError):
    """A synthetic-set file that is not a readable fairbench safetensors file."""


def save_synset(path: str | Path, syn: SyntheticSet, metadata: dict) -> None:
    """Write ``syn`` and ``metadata`` (JSON-able; ``extras`` is added) atomically to ``path``."""
    tensors = {
        "images": syn.images.detach().cpu().float().contiguous(),
        "labels": syn.labels.detach().cpu().long().contiguous(),
    }
    header = {_META_KEY: json.dumps({**metadata, "extras": syn.extras}, sort_keys=True, default=str)}
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=header)
    except (SafetensorError, OSError) as error:  # safetensors reports a full disk as its own error
        full = isinstance(error, OSError) and error.errno == errno.ENOSPC or "StorageFull" in str(error)
        reason = "the disk is full" if full else first_line(error)
        raise FairbenchError(f"cannot write the synthetic set {path}: {reason}") from None


def load_synset(path: str | Path) -> tuple[SyntheticSet, dict]:
    """The set and its metadata; a pickle, a ``.pt`` file or a damaged file is refused by name."""
    path = Path(path)
    if path.suffix != SUFFIX:
        raise SynsetUnreadable(
            f"{path}: synthetic sets are read only as {SUFFIX} files "
            f"(pickles and .pt files can run code when loaded); convert it first"
        )
    if not path.is_file():  # a FIFO or a device would be opened and read for ever
        raise SynsetUnreadable(f"{path}: not a regular file; a synthetic set is a {SUFFIX} file")
    try:
        with safe_open(str(path), framework="pt") as f:
            # copies, not views of the mapped file: a file truncated later must not crash their reader
            tensors = {key: f.get_tensor(key).clone() for key in f.keys()}
            metadata = json.loads((f.metadata() or {}).get(_META_KEY, "{}"))
    except (SafetensorError, OSError, ValueError, TypeError, RecursionError) as error:
        raise SynsetUnreadable(f"{path}: not a readable safetensors file ({first_line(error)})") from None
    missing = [k for k in TENSOR_KEYS if k not in tensors]
    if missing:
        raise SynsetUnreadable(
            f"{path}: missing tensor(s) {', '.join(missing)}; a synthetic set holds {', '.join(TENSOR_KEYS)}"
        )
    images, labels = tensors["images"], tensors["labels"]
    if images.dtype != torch.float32 or images.dim() != 4:
        raise SynsetUnreadable(
            f"{path}: images are {images.dtype} of shape {tuple(images.shape)}; a synthetic set's images are "
            f"float32 (N, C, H, W)"
        )
    if labels.dtype != torch.int64 or labels.dim() != 1:
        raise SynsetUnreadable(
            f"{path}: labels are {labels.dtype} of shape {tuple(labels.shape)}; a synthetic set's labels are int64 (N,)"
        )
    if not isinstance(metadata, dict) or not isinstance(metadata.get("dataset"), str):
        raise SynsetUnreadable(f"{path}: its '{_META_KEY}' metadata is not a mapping naming the dataset")
    extras = metadata.pop("extras", {}) or {}
    if not isinstance(extras, dict):
        raise SynsetUnreadable(f"{path}: its extras are a {type(extras).__name__}, not a mapping")
    for key in _COUNT_EXTRAS:
        value = extras.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SynsetUnreadable(f"{path}: its extra '{key}' is {value!r}, not a positive integer")
    return SyntheticSet(images, labels, extras), metadata
