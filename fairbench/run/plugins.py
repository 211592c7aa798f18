"""Finding outside methods, datasets and evaluators: the plugins a run names or the environment installs.

A plugin is a Python module that registers things when imported (``fairbench.register_variant``,
``register_base``, ``register_dataset``, ``register_evaluator``). fairbench imports plugins from

- the entry-point group ``fairbench.plugins`` of every installed distribution (a pip-installed
  plugin declares one in its pyproject), once per process;
- the run key ``plugins=[module.name, path/to/file.py]`` (also allowed in a suite file);

and reads extra ``registry/`` and ``suites/`` folders from ``include_path=[DIR, ...]``.
A plugin that fails to import is one error line naming it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path

from ..core.errors import FairbenchError, first_line
from ..core.registry import add_include_dir

ENTRY_POINT_GROUP = "fairbench.plugins"

_loaded: dict[str, str] = {}  # plugin spec → module name
_entry_points_loaded = False


def _import_file(path: Path) -> str:
    name = f"fairbench_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return name


def load_plugin(spec: str) -> str:
    """Import one plugin, a module name or a ``.py`` file; returns its module name."""
    if not isinstance(spec, str) or not spec:
        raise FairbenchError(f"plugins takes module names or .py paths, got {spec!r}")
    if spec in _loaded:
        return _loaded[spec]
    is_file = spec.endswith(".py") or "/" in spec or "\\" in spec
    try:
        if is_file:
            path = Path(spec).expanduser().absolute()
            if not path.is_file():
                raise FairbenchError(f"plugin '{spec}' not found: no file {path}")
            name = _import_file(path)
        else:
            name = importlib.import_module(spec).__name__
    except FairbenchError as error:
        if str(error).startswith(f"plugin '{spec}'"):
            raise
        raise FairbenchError(f"plugin '{spec}' failed to load: {first_line(error)}") from None
    except Exception as error:
        raise FairbenchError(f"plugin '{spec}' failed to import: {type(error).__name__}: {first_line(error)}") from None
    except SystemExit as error:  # sys.exit() at import would end the command without a word
        raise FairbenchError(f"plugin '{spec}' called sys.exit({error.code!r}) while it was imported") from None
    _loaded[spec] = name
    return name


def load_entry_point_plugins() -> None:
    """Import every installed plugin of the ``fairbench.plugins`` group, once per process."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for point in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(point, "dist", None)
        owner = f" of {dist.name}" if dist is not None else ""
        try:
            point.load()
        except FairbenchError as error:
            raise FairbenchError(f"plugin '{point.name}'{owner} ({point.value}) failed to load: {error}") from None
        except Exception as error:
            raise FairbenchError(
                f"plugin '{point.name}'{owner} ({point.value}) failed to import: "
                f"{type(error).__name__}: {first_line(error)}"
            ) from None
        except SystemExit as error:
            raise FairbenchError(
                f"plugin '{point.name}'{owner} ({point.value}) called sys.exit({error.code!r}) while it was imported"
            ) from None


def activate(plugins=(), include_path=()) -> None:
    """Everything a command that takes run settings must see: installed plugins, then ``plugins``
    and ``include_path`` (a single string stands for a one-item list)."""
    load_entry_point_plugins()
    for folder in _as_names("include_path", include_path):
        add_include_dir(folder)
    for spec in _as_names("plugins", plugins):
        load_plugin(spec)


def _as_names(key: str, value) -> list[str]:
    items = [value] if isinstance(value, str) else list(value or ()) if isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(i, str) for i in items):
        raise FairbenchError(f"{key} takes a list of names or paths, e.g. {key}=[a,b], got {value!r}")
    return items
