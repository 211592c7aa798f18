"""Launchers: Ray and Slurm (submitit, local processes) give the local loop's metrics bit for bit,
one record per cell; a driver stopped by SIGTERM or killed -9 loses and duplicates nothing."""

import shlex
import signal
import subprocess
import time

import pytest
import torch
from conftest import TINY_CI, checkout_env, fairbench_command

from fairbench.core.errors import FairbenchError
from fairbench.run.config import resolve_run_config
from fairbench.run.driver import run_suite
from fairbench.run.launchers import get_launcher
from fairbench.run.launchers.slurm import run_cell_to_file
from fairbench.run.plan import make_plan
from fairbench.run.results import read_records

TINY = TINY_CI + [
    "distill.warmup_epochs=1",
]
TWO = TINY + ["methods=[random,dm]"]


def metrics(out):
    records = read_records(out)
    by_cell = {r["cell_id"]: r["metrics"] for r in records}
    assert len(by_cell) == len(records), "a cell was recorded twice"
    return by_cell


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The local loop's records of two ci methods."""
    out = tmp_path_factory.mktemp("local") / "out"
    run_suite(resolve_run_config(TWO + [f"out={out}"]))
    return metrics(out)


def test_ray_gives_the_local_metrics_and_a_rerun_adds_nothing(reference, tmp_path):
    pytest.importorskip("ray")
    config = resolve_run_config(TWO + [f"out={tmp_path}", "launcher=ray", f"ray.num_cpus={torch.get_num_threads()}"])
    logged = []
    out, frame, failures = run_suite(config, log=logged.append)
    assert not failures and metrics(out) == reference and len(frame) == 2
    assert sum("cells done" in line for line in logged) == 2 and "ETA" in logged[-2]
    before = (out / "results.jsonl").read_text()
    run_suite(config)  # all finished: no task, no cluster, nothing appended
    assert (out / "results.jsonl").read_text() == before


def test_slurm_local_gives_the_local_metrics_and_merges_jobs_left_by_a_dead_driver(reference, tmp_path):
    pytest.importorskip("submitit")
    config = resolve_run_config(TWO + [f"out={tmp_path}", "launcher=slurm", "slurm.cluster=local"])
    orphan = make_plan(config)[1]
    run_cell_to_file(orphan, {**config, "out": str(tmp_path)})  # a job whose driver died before merging it
    logged = []
    out, _, failures = run_suite(config, log=logged.append)
    assert not failures and "merged 1 records" in "\n".join(logged)
    assert any("1 to run with launcher=slurm" in line for line in logged)
    assert metrics(out) == reference
    assert not list((out / "cells").glob("*.jsonl"))


@pytest.mark.parametrize("launcher, extra", [("ray", "ray"), ("slurm", "slurm")])
def test_a_missing_launcher_package_names_its_extra(monkeypatch, launcher, extra):
    import importlib

    real = importlib.import_module

    def without(name, *args):
        if name in ("ray", "submitit"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", without)
    with pytest.raises(FairbenchError, match=rf'pip install -e "\.\[{extra}\]"'):
        get_launcher(launcher)


def test_unknown_runner_settings_are_refused():
    with pytest.raises(FairbenchError, match="unknown launcher 'k8s'; choose from: local, ray, slurm"):
        resolve_run_config(["launcher=k8s"])
    with pytest.raises(FairbenchError, match="unknown ray setting 'gpus'"):
        resolve_run_config(["ray.gpus=1"])
    with pytest.raises(FairbenchError, match="ray.cpus_per_cell must be a positive number"):
        resolve_run_config(["ray.cpus_per_cell=0"])
    with pytest.raises(FairbenchError, match="unknown resume policy 'maybe'"):
        resolve_run_config(["resume=maybe"])


def start(args):
    return subprocess.Popen(
        fairbench_command(*args), env=checkout_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(proc, ready, timeout=300):
    deadline = time.monotonic() + timeout
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)


def lines(out):
    path = out / "results.jsonl"
    return path.read_text().count("\n") if path.is_file() else 0


def test_sigterm_and_kill_9_then_resume_lose_and_duplicate_nothing(reference, tmp_path):
    out = tmp_path / "out"
    args = ["run", *TWO, f"out={out}"]
    first = start(args)  # SIGTERM once the run holds the folder
    wait_for(first, lambda: (out / ".lock.json").exists())
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    resume = err.strip().splitlines()[-1].strip()
    assert resume.startswith("fairbench run ") and f"out={out}" in resume and "suite=ci" in resume

    second = start(args)  # kill -9 after its first record
    wait_for(second, lambda: lines(out) >= 1)
    second.kill()
    second.wait(timeout=60)
    with open(out / "results.jsonl", "a") as f:  # and a kill -9 in the middle of an append
        f.write('{"cell_id": "torn", "metr')

    third = subprocess.run(
        fairbench_command(*shlex.split(resume)[1:]), env=checkout_env(), capture_output=True, text=True, timeout=300
    )
    assert third.returncode == 0, third.stderr
    assert "torn last line" in third.stderr
    assert metrics(out) == reference  # every cell once, the local loop's numbers


def test_slurm_without_slurm_points_to_the_local_cluster(tmp_path, monkeypatch):
    submitit = pytest.importorskip("submitit")
    from fairbench.run.launchers import slurm

    monkeypatch.setattr(slurm.shutil, "which", lambda name: None)
    config = resolve_run_config(TWO + [f"out={tmp_path}", "launcher=slurm"])
    with pytest.raises(FairbenchError, match="no Slurm here .*slurm.cluster=local"):
        slurm._executor(submitit, config)
