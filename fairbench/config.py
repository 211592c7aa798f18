"""Run configuration: a suite file from ``suites/`` merged with ``key=value`` overrides.

Overrides use dotted keys for nesting and YAML for values (``ipc=[10,50]``,
``distill.iterations=100``, ``dataset.rho=0.95``); the merge is OmegaConf's. The result is checked
here, before anything runs, so a typo costs a second, not a half-finished suite.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import FairbenchError, unknown_choice
from .launchers.settings import RUNNER_DEFAULTS, check_runner_settings
from .paths import SUITES_DIR

DEFAULT_SUITE = "quickstart"

RUN_DEFAULTS: dict = {
    "description": "",
    "datasets": ["cmnist-mini"],
    "methods": ["random", "dm", "dm+fairdd", "dm+cobra"],
    "ipc": [10],
    "evaluators": ["convnet"],
    "seeds": [0],
    "num_eval": 5,
    "ensemble": "auto",  # train the num_eval runs as one vectorised ensemble: auto (on GPUs), true, false
    "device": "auto",
    "out": None,
    "data_root": "data",
    "download": False,  # fetch missing MNIST / Fashion-MNIST / CIFAR-10 files (with checksums)
    "experts_dir": "experts",  # MTT's expert trajectories, made by `fairbench experts`
    "dataset": {},   # dataset parameters, e.g. dataset.rho=0.95
    "distill": {},   # method hyperparameters, e.g. distill.iterations=100
    "eval": {},      # evaluator training settings, e.g. eval.epochs=300
    "models": {},    # per-evaluator model settings, e.g. models.convnet.width=64
    **RUNNER_DEFAULTS,  # launcher, resume, ray.*, slurm.*: where cells run and what a rerun reuses
}
_LIST_KEYS = {"datasets": str, "methods": str, "evaluators": str, "ipc": int, "seeds": int}
_MAPPING_KEYS = ("dataset", "distill", "eval", "models")
_KEY = re.compile(r"^[A-Za-z_][\w\-]*(\.[\w\-+:]+)*$")


def suite_names() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def load_suite(name: str) -> dict:
    """A suite by name (``suites/NAME.yaml``) or by path to a YAML file of the same shape."""
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = SUITES_DIR / f"{name}.yaml"
        if not path.is_file():
            raise unknown_choice("suite", name, suite_names())
    try:
        with open(path) as f:
            suite = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise FairbenchError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(suite, dict):
        raise FairbenchError(f"{path}: a suite must be a mapping of run keys")
    return suite


def parse_overrides(args: list[str]) -> tuple[str, list[str]]:
    """Split ``suite=NAME`` from the other ``key=value`` overrides and check their form."""
    suite, dotlist = DEFAULT_SUITE, []
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not _KEY.match(key):
            raise FairbenchError(f"malformed override '{arg}'; write key=value, e.g. ipc=[10,50] or distill.iterations=100")
        if key == "suite":
            suite = value
        else:
            dotlist.append(arg)
    return suite, dotlist


def _as_list(key: str, value, kind: type) -> list:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise FairbenchError(f"{key} must not be empty")
    for item in items:
        if kind is int and (not isinstance(item, int) or isinstance(item, bool)):
            raise FairbenchError(f"{key} takes integers, got {item!r}")
        if kind is str and not isinstance(item, str):
            raise FairbenchError(f"{key} takes names, got {item!r}")
    return items


def validate(config: dict) -> dict:
    unknown = set(config) - set(RUN_DEFAULTS)
    if unknown:
        raise unknown_choice("run key", sorted(unknown)[0], RUN_DEFAULTS)
    for key, kind in _LIST_KEYS.items():
        config[key] = _as_list(key, config[key], kind)
    bad_ipc = [i for i in config["ipc"] if i < 1]
    if bad_ipc:
        raise FairbenchError(f"ipc must be at least 1, got {bad_ipc[0]}")
    if not isinstance(config["num_eval"], int) or isinstance(config["num_eval"], bool) or config["num_eval"] < 1:
        raise FairbenchError(f"num_eval must be a positive integer, got {config['num_eval']!r}")
    if config["ensemble"] not in ("auto", True, False):
        raise FairbenchError(f"ensemble takes auto, true or false, got {config['ensemble']!r}")
    for key in _MAPPING_KEYS:
        if not isinstance(config[key], dict):
            raise FairbenchError(f"{key} takes key=value settings (e.g. {key}.KEY=VALUE), got {config[key]!r}")
    for key in ("device", "data_root", "experts_dir"):
        if not isinstance(config[key], str):
            raise FairbenchError(f"{key} must be a string, got {config[key]!r}")
    if not isinstance(config["download"], bool):
        raise FairbenchError(f"download must be true or false, got {config['download']!r}")
    check_runner_settings(config)
    return config


def merge_settings(*layers: dict, dotlist: list[str]) -> dict:
    """``layers`` merged in order, then the ``key=value`` overrides, as one plain dict."""
    try:
        merged = OmegaConf.merge(*(OmegaConf.create(layer) for layer in layers), OmegaConf.from_dotlist(dotlist))
        return OmegaConf.to_container(merged, resolve=True)
    except (OmegaConfBaseException, yaml.YAMLError) as e:
        raise FairbenchError(f"malformed override in {' '.join(dotlist)}: {str(e).splitlines()[0]}") from None


def resolve_run_config(args: list[str]) -> dict:
    """The full, checked run configuration for ``fairbench run ARGS``."""
    suite_name, dotlist = parse_overrides(args)
    config = merge_settings(RUN_DEFAULTS, load_suite(suite_name), dotlist=dotlist)
    return validate({k: v for k, v in config.items() if k != "suite"}) | {"suite": suite_name}
