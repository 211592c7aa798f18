"""Sweeps: any setting varied over a list of values, one protocol per combination.

The convention is Hydra's multirun: ``fairbench run -m dataset.rho=0.8,0.9,0.95
distill.dm+cobra.warmup_epochs=0,5,10`` runs the product of the lists. A value may also be
``range(start,stop[,step])`` (stop excluded, as in Python and Hydra; floats allowed). A suite file
says the same with a ``sweep:`` block (``sweep: {dataset.rho: [0.8, 0.9]}``, or a string
``"0.8,0.9"`` / ``"range(0,10,5)"``). Under ``-m`` the grid keys (``datasets``, ``methods``,
``ipc``, ``evaluators``, ``seeds``) take a comma list as their own list: they are a product already.

A swept key is any nested setting of ``dataset``, ``distill``, ``eval``, ``models`` or ``metrics``:
each combination is its own protocol, a separate leaderboard row with the swept keys as columns.
Run keys that say where and how a run happens (``device``, ``out``, ``launcher`` ...) are not swept.
"""

from __future__ import annotations

import copy
import itertools
import re

import yaml

from ..core.errors import FairbenchError

SWEEPABLE = ("dataset", "distill", "eval", "models", "metrics")
GRID_KEYS = ("datasets", "methods", "ipc", "evaluators", "seeds")
_RANGE = re.compile(r"^\s*range\((.*)\)\s*$")
_PAIRS = {"[": "]", "{": "}", "(": ")"}


def split_top_level(text: str) -> list[str]:
    """``text`` cut at the commas outside brackets and quotes (``a,[b,c],'d,e'`` → 3 items)."""
    items, depth, quote, start = [], [], None, 0
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _PAIRS:
            depth.append(_PAIRS[char])
        elif depth and char == depth[-1]:
            depth.pop()
        elif char == "," and not depth:
            items.append(text[start:i])
            start = i + 1
    return items + [text[start:]]


def _number(text: str, key: str):
    value = yaml.safe_load(text)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise FairbenchError(f"sweep {key}: range() takes numbers, got {text.strip()!r}")
    return value


def expand_range(text: str, key: str) -> list | None:
    """The values of ``range(start, stop[, step])`` (stop excluded), or None when ``text`` is not one.
    Float steps are rounded to 10 decimals, so ``range(0,0.3,0.1)`` gives 0.0, 0.1, 0.2."""
    match = _RANGE.match(text) if isinstance(text, str) else None
    if not match:
        return None
    args = [_number(a, key) for a in match.group(1).split(",")]
    if len(args) == 1:
        args = [0, *args]
    if len(args) not in (2, 3):
        raise FairbenchError(f"sweep {key}: range() takes (stop), (start, stop) or (start, stop, step), got {text}")
    start, stop, step = (*args, 1) if len(args) == 2 else args
    if step == 0:
        raise FairbenchError(f"sweep {key}: range() step must not be 0, got {text}")
    count = max(0, -int(-(stop - start) // step))  # ceil((stop - start) / step)
    values = [start + k * step for k in range(count)]
    if any(isinstance(a, float) for a in args):
        values = [round(float(v), 10) for v in values]
    if not values:
        raise FairbenchError(f"sweep {key}: {text} holds no value")
    return values


def sweep_values(key: str, raw) -> list:
    """A swept key's list of values from a command-line value (``a,b,c`` or ``range(...)``) or a
    suite file's entry (a YAML list, or one of those strings)."""
    if isinstance(raw, list):
        values = raw
    elif isinstance(raw, str):
        values = expand_range(raw, key)
        if values is None:
            values = []
            for item in split_top_level(raw):
                values += expand_range(item, key) or [yaml.safe_load(item)]
    else:
        values = [raw]
    if not values:
        raise FairbenchError(f"sweep {key} holds no value")
    shown = [repr(v) for v in values]
    repeated = sorted({s for s in shown if shown.count(s) > 1})
    if repeated:
        raise FairbenchError(f"sweep {key} lists {', '.join(repeated)} more than once; each combination runs once")
    return values


def check_sweep_key(key: str) -> None:
    head, _, rest = key.partition(".")
    if head not in SWEEPABLE or not rest:
        raise FairbenchError(
            f"cannot sweep '{key}'; sweep a setting under {', '.join(k + '.' for k in SWEEPABLE)} "
            f"(e.g. dataset.rho=0.8,0.9), and give the grid keys ({', '.join(GRID_KEYS)}) as lists"
        )


def multirun_overrides(dotlist: list[str]) -> tuple[list[str], dict]:
    """``-m`` overrides → (plain overrides, {swept key: values}). A grid key's comma list becomes
    its list; a value with one item is a plain override."""
    plain, sweep = [], {}
    for arg in dotlist:
        key, _, value = arg.partition("=")
        items = split_top_level(value)
        if len(items) == 1 and expand_range(value, key) is None:
            plain.append(arg)
        elif key in GRID_KEYS:
            plain.append(f"{key}=[{','.join(items)}]")
        else:
            check_sweep_key(key)
            sweep[key] = sweep_values(key, value)
    return plain, sweep


def check_sweep(sweep) -> dict:
    """A run's ``sweep`` setting checked: {dotted key: non-empty list of distinct values}."""
    if sweep in (None, {}):
        return {}
    if not isinstance(sweep, dict):
        raise FairbenchError("sweep takes a mapping of setting: values, e.g. sweep: {dataset.rho: [0.8, 0.9]}")
    checked = {}
    for key, raw in sweep.items():
        check_sweep_key(str(key))
        checked[str(key)] = sweep_values(str(key), raw)
    return checked


def sweep_points(sweep: dict) -> list[dict]:
    """The combinations of a checked sweep, in the order of its keys (the last varies fastest)."""
    keys = list(sweep)
    return [dict(zip(keys, values)) for values in itertools.product(*(sweep[k] for k in keys))] or [{}]


def with_point(config: dict, point: dict) -> dict:
    """``config`` with each swept key of ``point`` set (dotted keys reach nested settings)."""
    config = {**config, **{key: copy.deepcopy(config[key]) for key in SWEEPABLE}, "sweep": {}}
    for key, value in point.items():
        *path, last = key.split(".")
        node = config
        for part in path:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = value
    return config


def describe_point(point: dict) -> str:
    """``key=value ...`` of a combination; keys a cell is the same at every value of (None) left out."""
    return " ".join(f"{key}={value}" for key, value in point.items() if value is not None)
