"""The plan of a run: one cell per (dataset, ipc, method, seed), each evaluated by every evaluator.

Building the plan resolves and checks every name and setting, so ``--dry-run`` and a real run fail
on the same bad input, before any data is read. What needs the data (an IPC above a class's size,
an IDC factor that does not divide the image) is checked by :func:`check_cells_data` as soon as the
data is loaded, before any distillation, and by ``--dry-run`` where the data is at hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import yaml
from tabulate import tabulate

from ..core.errors import FairbenchError, unknown_choice
from ..core.overrides import check_known
from ..core.protocol import digest, protocol_id, protocol_of
from ..data import dataset_names, dataset_params, dataset_settings
from ..data.group_labels import DEFAULTS as GROUP_LABEL_DEFAULTS
from ..distill import (
    build_distiller,
    check_method_hparams,
    check_overrides,
    method_hparams,
    method_options,
    parse_method,
)
from ..distill.provenance import method_provenance
from ..evaluation.evaluate import check_evaluator, evaluator_spec
from .sweep import describe_point, sweep_points, with_point

GROUP_LABEL_KEYS = set(GROUP_LABEL_DEFAULTS)
# evaluator training settings that must be positive numbers (eval.KEY=VALUE)
_POSITIVE_TRAIN = ("epochs", "batch_size", "lr")
_NOT_NEGATIVE_TRAIN = ("momentum", "weight_decay")
_POSITIVE_MODEL = ("width", "depth")  # network sizes (models.NAME.KEY=VALUE)


@dataclass
class Cell:
    dataset: str
    dataset_params: dict
    method: str
    hparams: dict
    ipc: int
    seed: int
    net: dict | None  # the evaluator spec whose model the distiller builds, if it trains one
    evaluators: list[dict]
    # the swept settings of this cell's combination (None: the cell is the same at several values)
    sweep: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        point = describe_point(self.sweep)
        swept = f" [{point}]" if point else ""
        return f"{self.dataset} ipc={self.ipc} {self.method} seed={self.seed}{swept}"


def _dataset_overrides(name: str, overrides: dict) -> dict:
    own = dataset_settings(name)
    return dataset_params(name, {k: v for k, v in overrides.items() if k in own})


def _check_model(spec: dict, where: str) -> None:
    """Network sizes must be positive integers: a width of 0 builds a network that divides by zero."""
    for key in _POSITIVE_MODEL:
        value = spec["model"].get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise FairbenchError(
                f"{where} '{spec['name']}': models.{spec['name']}.{key}={value!r} is invalid; "
                f"it must be a positive integer"
            )


def _check_training(spec: dict) -> None:
    for key, value in spec["train"].items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if (key in _POSITIVE_TRAIN and not value > 0) or (key in _NOT_NEGATIVE_TRAIN and value < 0):
            rule = "positive" if key in _POSITIVE_TRAIN else "not negative"
            raise FairbenchError(f"evaluator '{spec['name']}': eval.{key}={value} is invalid; it must be {rule}")


def make_plan(config: dict) -> list[Cell]:
    """Every cell of the run; with a sweep, the cells of each combination in turn. A cell that
    comes out the same at several values of a swept key (``dm`` under a sweep of
    ``distill.dm+cobra.warmup_epochs``) runs once, its value of that key left None."""
    sweep = config.get("sweep") or {}
    if not sweep:
        return _grid(config)
    cells: dict[str, Cell] = {}
    for point in sweep_points(sweep):
        try:
            found = _grid(with_point(config, point))
        except FairbenchError as error:
            raise FairbenchError(f"sweep {describe_point(point)}: {error}") from None
        for cell in found:
            key = digest({**cell.__dict__, "sweep": None})
            if key in cells:
                seen = cells[key].sweep
                cells[key] = replace(cells[key], sweep={k: v if v == point[k] else None for k, v in seen.items()})
            else:
                cells[key] = replace(cell, sweep=dict(point))
    return list(cells.values())


def _grid(config: dict) -> list[Cell]:
    for name in config["datasets"]:
        if name not in dataset_names():
            raise unknown_choice("dataset", name, dataset_names())
    check_known("dataset", config["dataset"], set().union(*(dataset_settings(d) for d in dataset_names())))
    for method_id in config["methods"]:
        parse_method(method_id)
    check_overrides(config["distill"])
    for name in config["models"]:
        check_evaluator(name, "evaluator (in models.)")
    for name in config["evaluators"]:
        check_evaluator(name)
    evaluators = [
        evaluator_spec(e, config["eval"], config["models"].get(e), config["metrics"]) for e in config["evaluators"]
    ]
    for spec in evaluators:
        _check_model(spec, "evaluator")
        _check_training(spec)

    cells = []
    for dataset in config["datasets"]:
        params = _dataset_overrides(dataset, config["dataset"])
        for ipc in config["ipc"]:
            for method_id in config["methods"]:
                # a method without a variant never reads the groups: the group-label knobs are not
                # part of its protocol (dm runs once under a sweep of dataset.group_noise)
                if parse_method(method_id)[1] == "vanilla":
                    params_here = {k: v for k, v in params.items() if k not in GROUP_LABEL_KEYS}
                else:
                    params_here = params
                hparams = method_hparams(method_id, dataset, ipc, config["distill"])
                check_method_hparams(method_id, ipc, hparams, config["distill"])
                net = hparams.get("net")
                net_spec = evaluator_spec(net, {}, config["models"].get(net)) if net else None
                if net_spec:
                    _check_model(net_spec, f"{method_id}'s network")
                for seed in config["seeds"]:
                    cells.append(Cell(dataset, params_here, method_id, hparams, ipc, seed, net_spec, evaluators))
    return cells


def check_cells_data(cells: list[Cell], trains: dict) -> None:
    """What only the loaded data can tell (``trains``: dataset name → its train split): each cell's
    IPC against its classes' sizes, IDC's factor against the image size."""
    seen = set()
    for cell in cells:
        key = (cell.dataset, cell.method, cell.ipc)
        if cell.dataset in trains and key not in seen:
            seen.add(key)
            build_distiller(cell.method, cell.hparams).check_data(trains[cell.dataset], cell.ipc)


def provenance_label(method_id: str) -> str:
    about = method_provenance(method_id)
    if about["source"] == "built-in":
        return "built-in"
    parts = about.get("components") or [about]
    return "; ".join(
        f"{p['distribution'] or p['module']} {p['version'] or ''} {p['hash']}".replace("  ", " ") for p in parts
    )


def resolved_config(cell: Cell, spec: dict, config: dict) -> dict:
    """What one (cell, evaluator) measurement is: its id is the digest of this."""
    return {
        "dataset": {"name": cell.dataset, "params": cell.dataset_params},
        "method": {"id": cell.method, "hparams": cell.hparams},
        "net": cell.net,
        "ipc": cell.ipc,
        "seed": cell.seed,
        "evaluator": spec,
        "num_eval": config["num_eval"],
        "suite": config["suite"],
    }


def _changed(section: str, ours: dict, registry: dict) -> list[str]:
    """``section.key=ours (registry: theirs)`` for each key whose value differs, nested keys dotted."""
    lines = []
    for key in sorted(set(ours) | set(registry)):
        mine, theirs = ours.get(key), registry.get(key)
        if isinstance(mine, dict) and isinstance(theirs, dict):
            lines += _changed(f"{section}.{key}", mine, theirs)
        elif mine != theirs:
            lines.append(f"{section}.{key}={mine} (registry: {theirs})")
    return lines


def protocol_deviations(config: dict, cells: list[Cell]) -> list[str]:
    """Every setting in which the run's cells differ from the registry's protocol for the same grid:
    what the suite file and the overrides changed (cut budgets, a narrower network, ...)."""
    untouched = {**config, **{key: {} for key in ("dataset", "distill", "eval", "models", "metrics")}, "sweep": {}}
    try:
        reference = make_plan(untouched)
    except FairbenchError:  # the registry alone cannot serve this grid (an IPC outside a method's table)
        return [f"{key}: {config[key]}" for key in ("dataset", "distill", "eval", "models", "metrics") if config[key]]
    lines: list[str] = []
    by_cell = {(c.dataset, c.ipc, c.method, c.seed): c for c in reference}
    for ours in cells:
        theirs = by_cell[(ours.dataset, ours.ipc, ours.method, ours.seed)]
        found = _changed(f"dataset {ours.dataset}", ours.dataset_params, theirs.dataset_params)
        defaults = {k: v["default"] for k, v in method_options(ours.method).items()}
        found += _changed(f"distill {ours.method}", {**defaults, **ours.hparams}, {**defaults, **theirs.hparams})
        found += _changed(f"net {ours.method}", ours.net or {}, theirs.net or {})
        for spec, registry_spec in zip(ours.evaluators, theirs.evaluators):
            found += _changed(f"evaluator {spec['name']}", spec, registry_spec)
        lines += [line for line in found if line not in lines]
    return lines


def describe_plan(config: dict, cells: list[Cell]) -> str:
    """The plan, the settings in which it departs from the registry's protocol, and each
    (cell, evaluator)'s full resolved protocol with its id."""
    deviations = protocol_deviations(config, cells)
    header = [f"suite {config['suite']}: {len(cells)} cells"]
    if config.get("sweep"):
        header.append("sweep: " + "; ".join(f"{k} in {v}" for k, v in config["sweep"].items()))
    header += (
        ["differs from the registry's protocol in:"] + [f"  {line}" for line in deviations]
        if deviations
        else ["the registry's protocol, unchanged"]
    )
    protocols = []
    for cell in cells:
        for spec in cell.evaluators:
            resolved = resolved_config(cell, spec, config)
            protocols.append(
                f"{cell.label} x {spec['name']}: protocol {protocol_id(resolved)}\n  "
                + yaml.safe_dump(protocol_of(resolved), default_flow_style=True, width=10**6).strip()
            )
    swept = list(config.get("sweep") or {})
    rows = [
        [
            c.dataset,
            c.ipc,
            c.method,
            c.seed,
            *("-" if c.sweep.get(key) is None else c.sweep[key] for key in swept),
            c.hparams.get("iterations", "-"),
            ", ".join(f"{e['name']}({e['train']['epochs']} ep)" for e in c.evaluators),
            config["num_eval"],
            provenance_label(c.method),
        ]
        for c in cells
    ]
    table = tabulate(
        rows, headers=["dataset", "ipc", "method", "seed", *swept, "iterations", "evaluators", "num_eval", "provenance"]
    )
    return "\n".join(header) + f"\n\n{table}\n\nresolved protocols:\n" + "\n".join(protocols)
