"""The plan of a run: one cell per (dataset, ipc, method, seed), each evaluated by every evaluator.

Building the plan resolves and checks every name and setting, so ``--dry-run`` and a real run fail
on the same bad input, before any data is read.
"""

from __future__ import annotations

from dataclasses import dataclass

from tabulate import tabulate

from .data import dataset_names, dataset_params
from .distill import check_overrides, method_hparams, parse_method
from .errors import unknown_choice
from .evaluate import check_evaluator, evaluator_spec
from .overrides import check_known
from .registry import entry


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

    cells = []
    for dataset in config["datasets"]:
        params = _dataset_overrides(dataset, config["dataset"])
        for ipc in config["ipc"]:
            for method_id in config["methods"]:
                hparams = method_hparams(method_id, dataset, ipc, config["distill"])
                net = hparams.get("net")
                net_spec = evaluator_spec(net, {}, config["models"].get(net)) if net else None
                for seed in config["seeds"]:
                    cells.append(Cell(dataset, params, method_id, hparams, ipc, seed, net_spec, evaluators))
    return cells


def describe_plan(config: dict, cells: list[Cell]) -> str:
    rows = [
        [c.dataset, c.ipc, c.method, c.seed, c.hparams.get("iterations", "-"),
         ", ".join(f"{e['name']}({e['train']['epochs']} ep)" for e in c.evaluators), config["num_eval"]]
        for c in cells
    ]
    table = tabulate(rows, headers=["dataset", "ipc", "method", "seed", "iterations", "evaluators", "num_eval"])
    return f"suite {config['suite']}: {len(cells)} cells\n{table}"
