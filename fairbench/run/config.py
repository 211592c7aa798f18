"""Run configuration: a suite file merged with ``key=value`` overrides, resolved and checked once.

Overrides use dotted keys for nesting and YAML for values (``ipc=[10,50]``,
``distill.iterations=100``, ``dataset.rho=0.95``); the merge is OmegaConf's. :func:`parse_overrides`
and :func:`merge_settings` are the one ``key=value`` parser of every command (``run``, ``prepare``,
``data``, ``bench``, ``check-method``). The result is checked here and in ``plan.make_plan``, before
anything runs, so a typo costs a second, not a half-finished suite.

Plugins come first: ``plugins=[...]`` and ``include_path=[...]`` given on the command line are
activated before the suite is looked up (a suite may live in an include_path folder), and those a
suite file names right after it is read.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..core.device import check_device
from ..core.errors import FairbenchError, os_reason, unknown_choice
from ..core.paths import suites_dir
from ..core.registry import include_dirs, read_yaml
from .plugins import activate
from .settings import RUNNER_DEFAULTS, check_runner_settings
from .sweep import check_sweep, multirun_overrides

DEFAULT_SUITE = "quickstart"
SEED_LIMIT = 2**32

# Every run key: (default, what it sets). ``fairbench run --help`` prints this table.
RUN_KEYS: dict[str, tuple[object, str]] = {
    "description": ("", "one line about the suite"),
    "datasets": (["cmnist-mini"], "dataset names (fairbench list datasets)"),
    "methods": (["random", "dm", "dm+fairdd", "dm+cobra"], "method ids, base or base+variant (fairbench list methods)"),
    "ipc": ([10], "images per class"),
    "evaluators": (["convnet"], "evaluator names, or timm:<model>"),
    "seeds": ([0], "distillation seeds"),
    "num_eval": (5, "evaluation runs per synthetic set and evaluator"),
    "ensemble": ("auto", "train the num_eval runs as one vectorised ensemble: auto (on GPUs), true, false"),
    "device": ("auto", "auto, cpu, cuda, cuda:N or mps"),
    "out": (None, "the run folder (default runs/<suite>-<time>); an existing one is resumed"),
    "data_root": ("data", "where dataset files are read from"),
    "download": (False, "fetch missing MNIST / Fashion-MNIST / CIFAR-10 files (with checksums)"),
    "experts_dir": ("experts", "where prepare steps cache what they make (MTT's expert trajectories)"),
    "plugins": ([], "plugin modules or .py files to import: plugins=[mypkg.methods,./mine.py]"),
    "include_path": ([], "extra folders holding registry/ and suites/ folders"),
    "dataset": ({}, "dataset parameters, e.g. dataset.rho=0.95"),
    "distill": ({}, "method hyperparameters, e.g. distill.iterations=100 or distill.dm+cobra.warmup_epochs=2"),
    "eval": ({}, "evaluator training settings, e.g. eval.epochs=300"),
    "models": ({}, "per-evaluator model settings, e.g. models.convnet.width=64"),
    "metrics": ({}, "metric conventions, e.g. metrics.undefined=skip (default zero, the reference's)"),
    "cell_timeout": (None, "seconds one cell may run before it is recorded failed and the suite goes on"),
    "sweep": (
        {},
        "settings swept as a product, one protocol each: fairbench run -m dataset.rho=0.8,0.9 (docs/ablations.md)",
    ),
    "launcher": (RUNNER_DEFAULTS["launcher"], "where cells run: local, ray or slurm (docs/launchers.md)"),
    "resume": (RUNNER_DEFAULTS["resume"], "which finished records of out a rerun reuses: same-version, always, never"),
    "ray": (RUNNER_DEFAULTS["ray"], "launcher=ray settings, e.g. ray.address=auto ray.gpus_per_cell=0.25"),
    "slurm": (RUNNER_DEFAULTS["slurm"], "launcher=slurm settings, e.g. slurm.partition=gpu slurm.time=240"),
}
RUN_DEFAULTS: dict = {key: default for key, (default, _) in RUN_KEYS.items()}
_LIST_KEYS = {"datasets": str, "methods": str, "evaluators": str, "ipc": int, "seeds": int}
_MAPPING_KEYS = ("dataset", "distill", "eval", "models", "metrics")
_KEY = re.compile(r"^[A-Za-z_][\w\-]*(\.[\w\-+:]+)*$")


def _suite_folders() -> list[Path]:
    return [suites_dir(), *(d / "suites" for d in include_dirs())]


def suite_names() -> list[str]:
    return sorted({p.stem for folder in _suite_folders() for p in folder.glob("*.yaml")})


def _suite_path(name: str) -> Path:
    if not isinstance(name, str) or not name:
        raise FairbenchError(f"suite takes a name or a path to a YAML file, got {name!r}")
    path = Path(name).expanduser()
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        if not path.is_file():
            raise FairbenchError(f"suite file not found: {path}")
        return path
    for folder in _suite_folders():
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    raise unknown_choice("suite", name, suite_names())


def load_suite(name: str) -> dict:
    """A suite by name (``suites/NAME.yaml``, or an include_path's) or by path to a YAML file."""
    path = _suite_path(name)
    suite = read_yaml(path, "suite file")
    if suite is None:
        raise FairbenchError(
            f"{path}: the suite file is empty; a suite is a mapping of run keys (see fairbench run --help)"
        )
    if not isinstance(suite, dict):
        raise FairbenchError(f"{path}: a suite must be a mapping of run keys, not {type(suite).__name__}")
    if "suite" in suite:
        raise FairbenchError(
            f"{path}: a suite file cannot name another suite (key 'suite'); copy the settings it needs"
        )
    return suite


def parse_overrides(args: list[str]) -> tuple[str | None, list[str]]:
    """Split ``suite=NAME`` (None when not given) from the other ``key=value`` overrides and check
    their form."""
    suite, dotlist = None, []
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not _KEY.match(key):
            raise FairbenchError(
                f"malformed override '{arg}'; write key=value, e.g. ipc=[10,50] or distill.iterations=100"
            )
        if key == "suite":
            suite = value
        else:
            dotlist.append(arg)
    return suite, dotlist


def merge_settings(*layers: dict, dotlist: list[str]) -> dict:
    """``layers`` merged in order, then the ``key=value`` overrides, as one plain dict."""
    try:
        merged = OmegaConf.merge(*(OmegaConf.create(layer) for layer in layers), OmegaConf.from_dotlist(dotlist))
        return OmegaConf.to_container(merged, resolve=True)
    except (OmegaConfBaseException, yaml.YAMLError) as e:
        raise FairbenchError(f"malformed override in {' '.join(dotlist)}: {str(e).splitlines()[0]}") from None


def _as_list(key: str, value, kind: type, unique: bool = True) -> list:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise FairbenchError(f"{key} must not be empty")
    for item in items:
        if kind is int and (not isinstance(item, int) or isinstance(item, bool)):
            raise FairbenchError(f"{key} takes integers, got {item!r}")
        if kind is str and not isinstance(item, str):
            raise FairbenchError(f"{key} takes names, got {item!r}")
    repeated = sorted({str(i) for i in items if items.count(i) > 1})
    if unique and repeated:
        raise FairbenchError(f"{key} lists {', '.join(repeated)} more than once; each cell runs once")
    return items


def validate(config: dict) -> dict:
    unknown = set(config) - set(RUN_DEFAULTS)
    if unknown:
        raise unknown_choice("run key", sorted(unknown)[0], RUN_DEFAULTS)
    for key, kind in _LIST_KEYS.items():
        config[key] = _as_list(key, config[key], kind)
    bad_seeds = [s for s in config["seeds"] if not 0 <= s < SEED_LIMIT]
    if bad_seeds:
        raise FairbenchError(f"seeds must lie in 0..{SEED_LIMIT - 1} (what torch and numpy take), got {bad_seeds[0]}")
    if config["out"] is not None and not isinstance(config["out"], str):
        raise FairbenchError(
            f"out takes a folder path, got {config['out']!r}; quote it if it is a number, e.g. out='123'"
        )
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
    for key in ("data_root", "experts_dir"):
        folder = Path(config[key]).expanduser()
        try:
            is_file = folder.exists() and not folder.is_dir()
        except OSError as error:  # a parent this user may not enter, a name over 255 bytes
            raise FairbenchError(f"{key}={config[key]} cannot be opened: {os_reason(error)}") from None
        if is_file:
            raise FairbenchError(
                f"{key}={config[key]} is a file, not a folder; give the folder that holds (or will hold) it"
            )
    for key in ("plugins", "include_path"):
        config[key] = [] if config[key] in (None, []) else _as_list(key, config[key], str, unique=False)
    if not isinstance(config["download"], bool):
        raise FairbenchError(f"download must be true or false, got {config['download']!r}")
    timeout = config["cell_timeout"]
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0):
        raise FairbenchError(f"cell_timeout takes a positive number of seconds (or null: no limit), got {timeout!r}")
    check_runner_settings(config)
    # under ray/slurm the cells run on other machines: their device is checked there (run_cell)
    check_device(config["device"], here=config["launcher"] == "local")
    config["sweep"] = check_sweep(config.get("sweep"))
    if not config["sweep"]:  # a run without a sweep records the configuration it always did
        del config["sweep"]
    return config


def activate_plugins(settings: dict) -> None:
    """Import the plugins and add the include_path folders that ``settings`` names."""
    activate(settings.get("plugins") or (), settings.get("include_path") or ())


def command_settings(
    command: str, args: list[str], defaults: dict, *, why_no_suite: str, open_keys: bool = False
) -> dict:
    """The ``key=value`` settings of a command that runs no suite (``check-method``, ``bench
    overhead``, ``data``, ``show``): parsed like a run's overrides, merged over ``defaults``, keys
    outside them refused (unless ``open_keys``), and the plugins they name activated, so a plugin's
    method or dataset is seen. One function, so every such command refuses ``suite=`` the same way."""
    suite, dotlist = parse_overrides(args)
    if suite is not None:
        raise FairbenchError(f"{command} takes no suite=; {why_no_suite}")
    settings = merge_settings(defaults, dotlist=dotlist)
    unknown = set(settings) - set(defaults)
    if unknown and not open_keys:
        raise unknown_choice(f"{command} setting", sorted(unknown)[0], defaults)
    activate_plugins(settings)
    return settings


DATA_KEYS = {"data_root": "data", "download": False, "plugins": [], "include_path": []}


def data_settings(command: str, args: list[str]) -> tuple[str, bool, dict]:
    """``key=value`` arguments of a command that loads one dataset (``data``, ``show``) → (data_root,
    download, dataset parameters); ``plugins=`` are activated, so a plugin's dataset loads too."""
    settings = command_settings(
        command, args, DATA_KEYS, open_keys=True, why_no_suite="give the dataset's parameters, e.g. rho=0.95"
    )
    if not isinstance(settings["download"], bool):
        raise FairbenchError(f"download must be true or false, got {settings['download']!r}")
    params = {k: v for k, v in settings.items() if k not in DATA_KEYS and k != "dataset"}
    nested = settings.get("dataset", {})  # dataset.KEY=VALUE, as a run spells it
    if isinstance(nested, dict):
        params |= nested
    elif "dataset" in settings:
        raise FairbenchError(f"dataset takes key=value settings (dataset.KEY=VALUE), got {nested!r}")
    return str(settings["data_root"]), settings["download"], params


def resolve_run_config(args: list[str], multirun: bool = False) -> dict:
    """The full, checked run configuration for ``fairbench run ARGS``; with ``multirun`` (``-m``),
    comma lists and ``range(...)`` values are swept (:mod:`fairbench.run.sweep`)."""
    suite_name, dotlist = parse_overrides(args)
    suite_name = suite_name or DEFAULT_SUITE
    swept: dict = {}
    if multirun:
        dotlist, swept = multirun_overrides(dotlist)
    activate_plugins(merge_settings(dotlist=dotlist))
    suite = load_suite(suite_name)
    activate_plugins(suite)
    config = merge_settings(RUN_DEFAULTS, {k: v for k, v in suite.items() if k != "sweep"}, dotlist=dotlist)
    # the suite's sweep, less the keys the command line sets or sweeps itself
    given = {arg.partition("=")[0] for arg in dotlist}
    suite_sweep = suite.get("sweep") or {}
    if isinstance(suite_sweep, dict):
        suite_sweep = {k: v for k, v in suite_sweep.items() if k not in given and k not in swept}
    config["sweep"] = suite_sweep if not swept else {**(suite_sweep or {}), **swept}
    return validate(config) | {"suite": suite_name}
