"""The plan of a run: one cell per (dataset, ipc, method, seed), each evaluated by every evaluator.

Building the plan resolves and checks every name and setting, so ``--dry-run`` and a real run fail
on the same bad input, before any data is read. What needs the data (an IPC above a class's size,
an IDC factor that does not divide the image) is checked by :func:`check_cells_data` as soon as the
data is loaded, before any distillation, and by ``--dry-run`` where the data is at hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from tabulate import tabulate

from .data import dataset_names, dataset_params
from .distill import build_distiller, check_method, check_overrides, method_hparams, parse_method
from .errors import FairbenchError, unknown_choice
from .evaluate import check_evaluator, evaluator_spec
from .overrides import check_known
from .plugins import method_provenance
from .registry import entry

# evaluator training settings that must be positive numbers (eval.KEY=VALUE)
_POSITIVE_TRAIN = ("epochs", "batch_size", "lr")
_NOT_NEGATIVE_TRAIN = ("momentum", "weight_decay")


@dataclass
class Cell:
    dataset: str
    dataset_params: dict
    method: str
    hparams: dict
    ipc: int
    seed: int
    net: dict | None          # the evaluator spec whose model the distiller builds, if it trains one
    evaluators: list[dict]

    @property
    def label(self) -> str:
        return f"{self.dataset} ipc={self.ipc} {self.method} seed={self.seed}"


def _dataset_overrides(name: str, overrides: dict) -> dict:
    own = entry("datasets", name).get("params") or {}
    return dataset_params(name, {k: v for k, v in overrides.items() if k in own})


def _check_training(spec: dict) -> None:
    for key, value in spec["train"].items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if (key in _POSITIVE_TRAIN and not value > 0) or (key in _NOT_NEGATIVE_TRAIN and value < 0):
            rule = "positive" if key in _POSITIVE_TRAIN else "not negative"
            raise FairbenchError(f"evaluator '{spec['name']}': eval.{key}={value} is invalid; it must be {rule}")


def make_plan(config: dict) -> list[Cell]:
    for name in config["datasets"]:
        if name not in dataset_names():
            raise unknown_choice("dataset", name, dataset_names())
    check_known("dataset", config["dataset"],
                set().union(*(entry("datasets", d).get("params") or {} for d in dataset_names())))
    for method_id in config["methods"]:
        parse_method(method_id)
    check_overrides(config["distill"])
    for name in config["models"]:
        check_evaluator(name, "evaluator (in models.)")
    for name in config["evaluators"]:
        check_evaluator(name)
    evaluators = [evaluator_spec(e, config["eval"], config["models"].get(e), config["metrics"])
                  for e in config["evaluators"]]
    for spec in evaluators:
        _check_training(spec)

    cells = []
    for dataset in config["datasets"]:
        params = _dataset_overrides(dataset, config["dataset"])
        for ipc in config["ipc"]:
            for method_id in config["methods"]:
                hparams = method_hparams(method_id, dataset, ipc, config["distill"])
                check_method(method_id, ipc, hparams, config["distill"])
                net = hparams.get("net")
                net_spec = evaluator_spec(net, {}, config["models"].get(net)) if net else None
                for seed in config["seeds"]:
                    cells.append(Cell(dataset, params, method_id, hparams, ipc, seed, net_spec, evaluators))
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
    return "; ".join(f"{p['distribution'] or p['module']} {p['version'] or ''} {p['hash']}".replace("  ", " ")
                     for p in parts)


def describe_plan(config: dict, cells: list[Cell]) -> str:
    rows = [
        [c.dataset, c.ipc, c.method, c.seed, c.hparams.get("iterations", "-"),
         ", ".join(f"{e['name']}({e['train']['epochs']} ep)" for e in c.evaluators), config["num_eval"],
         provenance_label(c.method)]
        for c in cells
    ]
    table = tabulate(rows, headers=["dataset", "ipc", "method", "seed", "iterations", "evaluators", "num_eval",
                                    "provenance"])
    return f"suite {config['suite']}: {len(cells)} cells\n{table}"
