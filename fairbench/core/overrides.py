"""Applying user settings on top of registry entries, with one set of checks for all of them."""

from __future__ import annotations

from .errors import FairbenchError


def coerce_like(key: str, value, default):
    """``value`` in the type of ``default``: a typo such as ``iterations=ten`` fails here, not mid-run."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    else:
        return value
    raise FairbenchError(f"{key}={value!r} has the wrong type; expected {type(default).__name__} like {default!r}")


def apply_overrides(what: str, base: dict, overrides: dict | None) -> dict:
    """``base`` updated with ``overrides``; unknown keys and wrong types are errors naming the valid keys."""
    overrides = overrides or {}
    unknown = set(overrides) - set(base)
    if unknown:
        valid = ", ".join(sorted(base)) or "none"
        raise FairbenchError(f"{what} has no setting {', '.join(sorted(unknown))}; its settings: {valid}")
    return {**base, **{k: coerce_like(f"{what}: {k}", v, base[k]) for k, v in overrides.items()}}


def check_known(what: str, overrides: dict, known: set[str]) -> None:
    """Run-wide settings apply to every entry that has them; one that none has is a typo."""
    unknown = set(overrides) - known
    if unknown:
        raise FairbenchError(
            f"no {what} has a setting {', '.join(sorted(unknown))}; known: {', '.join(sorted(known)) or 'none'}"
        )
