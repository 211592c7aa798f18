"""The run keys of the runner (``launcher``, ``resume``, ``ray.*``, ``slurm.*``): defaults and checks.

Kept apart from the launchers themselves so that checking a config imports neither Ray nor
submitit, and ``--dry-run`` refuses the same settings as a run.
"""

from __future__ import annotations

from ..core.errors import FairbenchError, unknown_choice

LAUNCHERS = ("local", "ray", "slurm")
RESUME_POLICIES = ("same-version", "always", "never")
RUNNER_DEFAULTS: dict = {
    "launcher": "local",  # local | ray | slurm
    "resume": "same-version",  # which finished records of the out folder a run reuses: same-version | always | never
    "ray": {
        "address": None,  # an existing cluster (auto, or ray://host:port); none: a local cluster for the run
        "num_cpus": None,  # CPUs of a local cluster (default: all)
        "cpus_per_cell": None,  # default: on a CPU run the local loop's torch threads (same bits), else 1
        "gpus_per_cell": None,  # fractions share a GPU (0.25: four cells per GPU); default 1 on a GPU run, else 0
    },
    "slurm": {
        "cluster": None,  # none: Slurm; local: the same jobs as local processes (no Slurm needed)
        "partition": None,
        "account": None,
        "time": 60,  # minutes per cell
        "gpus_per_node": None,  # default 1 on a GPU run, else 0
        "cpus_per_task": 2,
        "mem_gb": None,
        "array_parallelism": 64,  # how many jobs of the array run at once
    },
}
_POSITIVE = {"ray": (), "slurm": ("time", "cpus_per_task", "array_parallelism")}
_OPTIONAL_NUMBERS = {"ray": ("num_cpus", "gpus_per_cell"), "slurm": ("gpus_per_node", "mem_gb")}
_OPTIONAL_POSITIVE = {"ray": ("cpus_per_cell",), "slurm": ()}
_OPTIONAL_STRINGS = {"ray": ("address",), "slurm": ("cluster", "partition", "account")}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_runner_settings(config: dict) -> None:
    """One error line for an unknown launcher, resume policy or launcher setting, or a bad value."""
    if config["launcher"] not in LAUNCHERS:
        raise unknown_choice("launcher", config["launcher"], LAUNCHERS)
    if config["resume"] not in RESUME_POLICIES:
        raise unknown_choice("resume policy", config["resume"], RESUME_POLICIES)
    for group, defaults in ((g, RUNNER_DEFAULTS[g]) for g in ("ray", "slurm")):
        settings = config[group]
        if not isinstance(settings, dict):
            raise FairbenchError(f"{group} takes key=value settings ({group}.KEY=VALUE), got {settings!r}")
        unknown = set(settings) - set(defaults)
        if unknown:
            raise unknown_choice(f"{group} setting", sorted(unknown)[0], defaults)
        for key in _POSITIVE[group]:
            if not _number(settings[key]) or settings[key] <= 0:
                raise FairbenchError(f"{group}.{key} must be a positive number, got {settings[key]!r}")
        for key in _OPTIONAL_POSITIVE[group]:
            if settings[key] is not None and (not _number(settings[key]) or settings[key] <= 0):
                raise FairbenchError(f"{group}.{key} must be a positive number, got {settings[key]!r}")
        for key in _OPTIONAL_NUMBERS[group]:
            if settings[key] is not None and (not _number(settings[key]) or settings[key] < 0):
                raise FairbenchError(f"{group}.{key} must be a number >= 0, got {settings[key]!r}")
        for key in _OPTIONAL_STRINGS[group]:
            if settings[key] is not None and not isinstance(settings[key], str):
                raise FairbenchError(f"{group}.{key} must be a string, got {settings[key]!r}")
    if config["slurm"]["cluster"] not in (None, "local", "slurm", "debug"):
        raise unknown_choice("slurm.cluster", config["slurm"]["cluster"], ["local", "slurm", "debug"])
