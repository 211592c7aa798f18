"""Name → implementation tables, and the YAML entries under ``registry/`` that parameterise them.

Code registers *builders* (a dataset construction, a base distiller, a variant, a model
architecture) under a short name when its module is imported, as timm's models do; each
registration remembers where it came from, so two under one name are an error naming both.
``registry/<kind>/<name>.yaml`` files declare the public entries users type, each naming its
builder and carrying its hyperparameters. They are read from the package's own registry, from
every ``include_path`` folder, and from entries a plugin adds in code (:func:`add_entry`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import yaml

from .errors import FairbenchError, unknown_choice
from .paths import registry_dir

T = TypeVar("T")


def source_of(item: object) -> str:
    """Where a registered object was defined: ``module.qualname (file)``."""
    module = getattr(item, "__module__", None) or type(item).__module__
    name = getattr(item, "__qualname__", None) or type(item).__qualname__
    try:
        where = inspect.getsourcefile(item) if callable(item) else None
    except TypeError:
        where = None
    return f"{module}.{name}" + (f" ({where})" if where else "")


class Registry(Generic[T]):
    """A named table of builders with an error that lists the valid names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._sources: dict[str, str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(item: T) -> T:
            self.add(name, item, source_of(item))
            return item

        return decorate

    def add(self, name: str, item: T, source: str) -> None:
        """Register ``item``; the same source again (a module imported twice) replaces it."""
        if not isinstance(name, str) or not name or "+" in name:
            raise FairbenchError(f"{self.kind} name {name!r} must be a non-empty string without '+'")
        if name in self._items and self._sources[name] != source:
            raise FairbenchError(f"{self.kind} '{name}' registered twice: by {self._sources[name]} and by {source}")
        self._items[name] = item
        self._sources[name] = source

    def get(self, name: str) -> T:
        if name not in self._items:
            raise unknown_choice(self.kind, name, self._items)
        return self._items[name]

    def source(self, name: str) -> str:
        return self._sources[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


_include_dirs: list[Path] = []  # extra data homes (include_path=[...])
_code_entries: dict[str, dict[str, tuple[dict, str]]] = {}  # kind → name → (entry, source)
_cache: dict[str, dict[str, dict]] = {}


def include_dirs() -> list[Path]:
    return list(_include_dirs)


def add_include_dir(folder: str | Path) -> None:
    """Read ``FOLDER/registry/<kind>/*.yaml`` and ``FOLDER/suites/*.yaml`` besides the package's own."""
    folder = Path(folder).expanduser().absolute()
    if not folder.is_dir():
        raise FairbenchError(f"include_path folder not found: {folder}")
    if not ((folder / "registry").is_dir() or (folder / "suites").is_dir()):
        raise FairbenchError(f"include_path folder {folder} holds neither a registry/ nor a suites/ folder")
    if folder not in _include_dirs:
        _include_dirs.append(folder)
        _cache.clear()


def add_entry(kind: str, name: str, spec: dict, source: str) -> None:
    """A registry entry given in code (a plugin's hyperparameters), read like a YAML file."""
    table = _code_entries.setdefault(kind, {})
    if name in table and table[name][1] != source:
        raise FairbenchError(f"{kind.rstrip('s')} entry '{name}' registered twice: by {table[name][1]} and by {source}")
    table[name] = (spec, source)
    _cache.clear()


def read_yaml(path: Path, what: str = "file"):
    """A YAML file's content; an error names the file, the line and the column."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FairbenchError(f"{what} not found: {path}") from None
    except UnicodeDecodeError:
        raise FairbenchError(f"{path}: not a text file (not UTF-8); a {what} is YAML") from None
    except OSError as e:
        raise FairbenchError(f"{path}: cannot read the {what}: {e.strerror}") from None
    if "\x00" in text:
        raise FairbenchError(f"{path}: not a text file (it holds NUL bytes); a {what} is YAML")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise FairbenchError(f"{path}{where}: not valid YAML ({problem})") from None


def _yaml_entries(kind: str) -> dict[str, tuple[dict, str]]:
    found: dict[str, tuple[dict, str]] = {}
    for home in [registry_dir(), *(d / "registry" for d in _include_dirs)]:
        for path in sorted((home / kind).glob("*.yaml")):
            spec = read_yaml(path, "registry entry")
            if not isinstance(spec, dict):
                raise FairbenchError(f"{path}: a registry entry must be a mapping")
            if path.stem in found:
                raise FairbenchError(
                    f"{kind.rstrip('s')} entry '{path.stem}' registered twice: by {found[path.stem][1]} and by {path}"
                )
            found[path.stem] = (spec, str(path))
    return found


def entries(kind: str) -> dict[str, dict]:
    """All entries of one kind (``datasets``, ``methods``, ``variants``, ``evaluators``)."""
    if kind not in _cache:
        found = _yaml_entries(kind)
        for name, (spec, source) in _code_entries.get(kind, {}).items():
            if name in found:
                raise FairbenchError(
                    f"{kind.rstrip('s')} entry '{name}' registered twice: by {found[name][1]} and by {source}"
                )
            found[name] = (spec, source)
        _cache[kind] = {name: spec for name, (spec, _) in found.items()}
    return _cache[kind]


def entry(kind: str, name: str) -> dict:
    table = entries(kind)
    if name not in table:
        raise unknown_choice(kind.rstrip("s"), name, table)
    return table[name]
