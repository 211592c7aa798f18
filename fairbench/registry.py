"""Name → implementation tables, and the YAML entries under ``registry/`` that parameterise them.

Code registers *builders* (a dataset construction, a base distiller, a model architecture) under a
short name; ``registry/<kind>/<name>.yaml`` files declare the public entries users type, each naming
its builder and carrying its hyperparameters. A new dataset variant or evaluator setting is then a
YAML file, not code.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable, Generic, TypeVar

import yaml

from .errors import FairbenchError, unknown_choice
from .paths import REGISTRY_DIR

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of builders with an error that lists the valid names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._items[name] = item
            return item

        return decorate

    def get(self, name: str) -> T:
        if name not in self._items:
            raise unknown_choice(self.kind, name, self._items)
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


@lru_cache(maxsize=None)
def entries(kind: str, folder: Path = REGISTRY_DIR) -> dict[str, dict]:
    """All YAML entries of one kind (``datasets``, ``methods``, ``variants``, ``evaluators``)."""
    found = {}
    for path in sorted((folder / kind).glob("*.yaml")):
        with open(path) as f:
            entry = yaml.safe_load(f) or {}
        if not isinstance(entry, dict):
            raise FairbenchError(f"{path}: a registry entry must be a mapping")
        found[path.stem] = entry
    return found


def entry(kind: str, name: str) -> dict:
    table = entries(kind)
    if name not in table:
        raise unknown_choice(kind.rstrip("s"), name, table)
    return table[name]
