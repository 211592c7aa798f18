"""Where a method's code came from, recorded in every record: built in, or which plugin (its
distribution, version and a hash of its source), so a leaderboard row names the code behind it."""

from __future__ import annotations

import hashlib
import sys
from functools import cache
from importlib.metadata import packages_distributions, version
from pathlib import Path

from . import BASES, parse_method
from .aggregation import VARIANTS


def _module_files(module_name: str) -> list[Path]:
    """The source files a plugin's code lives in: its whole top-level package, or its one file."""
    top = sys.modules.get(module_name.split(".")[0]) or sys.modules.get(module_name)
    origin = Path(getattr(top, "__file__", "") or "")
    if origin.name == "__init__.py":
        return sorted(origin.parent.rglob("*.py"))
    return [origin] if origin.is_file() else []


@cache
def _component_provenance(module_name: str) -> dict:
    if module_name == "fairbench" or module_name.startswith("fairbench."):
        return {"source": "built-in"}
    files = _module_files(module_name)
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    dists = packages_distributions().get(module_name.split(".")[0]) or []
    dist = dists[0] if dists else None
    return {
        "source": "plugin",
        "distribution": dist,
        "version": version(dist) if dist else None,
        "module": module_name,
        "hash": f"sha256:{digest.hexdigest()[:16]}",
    }


def method_provenance(method_id: str) -> dict:
    """Where a method's code came from: ``{"source": "built-in"}``, or for a plugin's base or variant
    ``{"source": "plugin", "distribution", "version", "module", "hash"}`` (sha256 of its source
    files; ``distribution`` and ``version`` are None for a plugin imported from a path). When both
    the base and the variant come from plugins, ``"components"`` lists each."""
    base, variant = parse_method(method_id)
    modules = [BASES.get(base).__module__]
    if variant != "vanilla":
        modules.append(VARIANTS.get(variant).terms.__module__)
    outside = [p for p in map(_component_provenance, modules) if p["source"] == "plugin"]
    unique = [p for i, p in enumerate(outside) if p not in outside[:i]]
    if not unique:
        return {"source": "built-in"}
    if len(unique) == 1:
        return dict(unique[0])
    return {"source": "plugin", "components": unique}
