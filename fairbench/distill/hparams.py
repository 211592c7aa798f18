"""A plugin's hyperparameters given in code: a YAML file of its own or a mapping.

They enter the same tables as ``registry/methods/*.yaml`` and ``registry/variants/*.yaml``, so
``method_hparams`` layers them (defaults, per dataset, per IPC) and ``distill.KEY`` overrides reach
them exactly as they reach the built-in methods.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from ..core.errors import FairbenchError
from ..core.registry import add_entry, read_yaml, source_of


def register_config(kind: str, name: str, config: str | Path | dict | None, owner: object) -> None:
    """Add ``config`` as the ``kind`` entry ``name``; a relative path is relative to ``owner``'s file."""
    if config is None:
        return
    if isinstance(config, dict):
        add_entry(kind, name, config, source_of(owner))
        return
    path = Path(config)
    if not path.is_absolute():
        path = Path(inspect.getsourcefile(owner) or ".").parent / path
    spec = read_yaml(path, f"{kind.rstrip('s')} configuration")
    if not isinstance(spec, dict):
        raise FairbenchError(f"{path}: a {kind.rstrip('s')} configuration must be a mapping")
    add_entry(kind, name, spec, str(path))
