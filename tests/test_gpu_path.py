"""The GPU and cluster path, shown on a CPU: the device checked where a cell runs, GPUs asked for
per job, cuda:N mapped in the task, MTT's unroll refused before compute when it cannot fit, the
backend settings and their record, pinned non-blocking copies, bounded CUDA events, one device
copy of a split per process, experts normalising batch by batch, warm-up out of iter_ms."""

import subprocess
import traceback
from types import SimpleNamespace

import pytest
import torch
from conftest import TINY_CI, checkout_env, fairbench_command

from fairbench.core import device as device_module
from fairbench.core.device import configure_backends, task_device, to_device, wants_gpu
from fairbench.core.errors import FairbenchError
from fairbench.core.provenance import machine_fingerprint
from fairbench.distill import build_distiller, method_hparams
from fairbench.distill.base import DistillContext, DistillStats, IterationClock
from fairbench.run.config import resolve_run_config
from fairbench.run.driver import run_suite
from fairbench.run.launchers import gpus_per_task, slurm, task_error
from fairbench.run.launchers.slurm import task_resources
from fairbench.run.plan import make_plan
from fairbench.run.preparation import check_cell_memory
from fairbench.training import augment

TINY = TINY_CI + ["distill.warmup_epochs=1"]


def test_a_slurm_dry_run_for_cuda_is_accepted_without_a_gpu_and_shows_one_gpu_per_job():
    command = "run suite=ci launcher=slurm slurm.cluster=local device=cuda --dry-run"
    done = subprocess.run(
        fairbench_command(*command.split()), capture_output=True, text=True, env=checkout_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "launcher=slurm: each job asks for 1 GPU and 2 CPUs; device=cuda is checked where each cell runs" in (
        done.stdout
    )


def test_gpus_per_job_for_each_device():
    def config(device, cluster=None):
        return {"device": device, "slurm": {"gpus_per_node": None, "cluster": cluster, "cpus_per_task": 2}}

    assert [task_resources(config(d))[0] for d in ("cuda", "cuda:3", "auto", "cpu")] == [1, 1, 1, 0]
    assert task_resources(config("auto", "local"))[0] == int(torch.cuda.is_available())  # this machine's
    assert gpus_per_task(config("cuda"), 0.25, on_this_machine=False) == 0.25
    assert wants_gpu("auto") and not wants_gpu("mps")


class InProcessJob:
    """A submitit job run at once in this process; a failure reads as submitit words it."""

    def __init__(self, fn, *args):
        self.state, self._result, self._error = "DONE", None, None
        try:
            self._result = fn(*args)
        except Exception:
            trace = traceback.format_exc()
            self._error = RuntimeError(f"Job (task=0) failed during processing with trace:\n---\n{trace}\n---\n  - log")

    def done(self):
        return True

    def exception(self):
        return self._error

    def result(self):
        return self._result


class InProcessExecutor:
    def map_array(self, fn, cells, configs):
        return [InProcessJob(fn, cell, config) for cell, config in zip(cells, configs)]


def test_without_the_gpu_each_cell_fails_with_one_line_and_the_suite_goes_on(tmp_path, monkeypatch):
    """Each job runs in this process, which has no GPU: the worker's own check refuses it."""
    monkeypatch.setattr(slurm, "_executor", lambda submitit, config: InProcessExecutor())
    config = resolve_run_config(TINY + ["methods=[random,dm]", f"out={tmp_path}", "launcher=slurm"])
    out, _, failures = run_suite({**config, "device": "cuda"})
    assert len(failures) == 2
    for line in failures:
        assert line.endswith(
            "device=cuda asked for, but this worker's torch sees no CUDA GPU (the scheduler gave the task none, "
            "or the node has none); check ray.gpus_per_cell / slurm.gpus_per_node, or use device=cpu"
        ), line
    assert not (out / "results.jsonl").exists() or not (out / "results.jsonl").read_text()


def test_the_failed_line_is_found_in_submitits_message():
    message = (
        "Job (task=0) failed during processing with trace:\n----------------------\nTraceback (most recent call "
        'last):\n  File "x.py", line 1\nfairbench.core.errors.FairbenchError: device=cuda asked for\n'
        "----------------------\nYou can check full logs with 'job.stderr(0)'\n  - /tmp/out/slurm/1_0_log.out\n"
    )
    assert task_error(RuntimeError(message)) == "device=cuda asked for"


def test_cuda_n_is_the_tasks_own_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert task_device("cuda:3") == torch.device("cuda:0")
    assert task_device("cpu") == torch.device("cpu")


def test_the_driver_leaves_a_cluster_runs_device_to_the_workers():
    resolve_run_config(["suite=ci", "launcher=ray", "device=cuda:2"])  # no GPU here: accepted
    with pytest.raises(FairbenchError, match="sees no CUDA GPU"):
        resolve_run_config(["suite=ci", "device=cuda"])


def mtt_cell(ipc, **hparams):
    config = resolve_run_config(["suite=ci", "methods=[mtt]", f"ipc=[{ipc}]", "models.convnet.width=128"])
    (cell,) = make_plan(config)
    return cell if not hparams else cell.__class__(**{**cell.__dict__, "hparams": {**cell.hparams, **hparams}})


CIFAR_SHAPE = SimpleNamespace(image_shape=(3, 32, 32), num_classes=10)


def test_mtt_at_ipc_50_fits_a_16_gib_gpu_with_its_registry_batch_syn():
    cell = mtt_cell(50)
    assert cell.hparams["batch_syn"] == 100
    check_cell_memory(cell, CIFAR_SHAPE, torch.device("cpu"), memory=16 * 2**30)


def test_mtt_over_the_whole_set_is_refused_before_compute_naming_the_setting():
    cell = mtt_cell(50, batch_syn=0)
    with pytest.raises(FairbenchError) as refused:
        check_cell_memory(cell, CIFAR_SHAPE, torch.device("cpu"), memory=16 * 2**30)
    message = str(refused.value)
    assert "30 unrolled student steps over 500 images need about 4" in message  # ~44 GiB
    assert "set distill.batch_syn=" in message
    fits = int(message.split("distill.batch_syn=")[1].split()[0])
    check_cell_memory(mtt_cell(50, batch_syn=fits), CIFAR_SHAPE, torch.device("cpu"), memory=16 * 2**30)


def test_backends_on_cuda_set_the_device_and_cudnn_benchmark_and_are_recorded(monkeypatch):
    current = []
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    configure_backends(torch.device("cuda:1"))
    assert current == [torch.device("cuda:1")] and torch.backends.cudnn.benchmark
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda _: "fake")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90000)
    fingerprint = machine_fingerprint(torch.device("cuda:1"))
    assert fingerprint["cudnn_benchmark"] is True
    assert {"cudnn_deterministic", "tf32_matmul", "tf32_cudnn"} <= set(fingerprint)
    assert "cudnn_benchmark" not in machine_fingerprint(torch.device("cpu"))  # a CPU run uses none


def test_host_to_gpu_copies_are_pinned_and_non_blocking(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.Tensor, "is_pinned", lambda self: False)
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: calls.append("pin") or self)
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *a, **k: calls.append(k) or self)
    to_device(torch.zeros(3), torch.device("cuda"))
    assert calls == ["pin", {"non_blocking": True}]


def test_dsa_groups_samples_on_the_host_and_sends_the_grouping_through_the_pinned_copy(monkeypatch):
    """The transform choices stay on the host; applying them with the batch's pair sizes copies
    one index tensor to the device (order, its inverse, the owners) and reads nothing back."""
    copied = []
    monkeypatch.setattr(augment, "to_device", lambda t, d: copied.append(t) or t)
    monkeypatch.setattr(torch.Tensor, "cpu", lambda self: pytest.fail("pair ids read back from the device"))
    torch.manual_seed(0)
    dsa = augment.DSA()
    params = dsa.sample(8, 8, "cpu")
    assert copied == [] and len(set(params["choice"].tolist())) > 1
    dsa.apply(torch.randn(16, 3, 8, 8), params, torch.arange(8).repeat_interleave(2), sizes=[2] * 8)
    assert len(copied) == 1 and copied[0].dtype == torch.int64 and copied[0].shape == (3, 16)


class FakeEvent:
    def __init__(self, **_):
        pass

    def record(self):
        pass

    def synchronize(self):
        pass

    def elapsed_time(self, other):
        return 1.0


def test_cuda_events_are_folded_at_each_check_interval(monkeypatch):
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    stats = DistillStats()
    clock = IterationClock(DistillContext(torch.device("cpu"), None), stats, "dm", 120)
    clock.target.cuda = True
    held = []
    for _ in clock:
        with clock.target.phase():
            pass
        held.append(len(clock.target._events))
    assert max(held) == IterationClock.check_every
    assert stats.target_s == pytest.approx((120 - 5) / 1000)  # the warm-up's left out


def test_warm_up_iterations_are_out_of_iter_ms_and_said_so():
    stats = DistillStats()
    clock = IterationClock(DistillContext(torch.device("cpu"), None), stats, "dm", 30)
    for it in clock:
        if it < 3:
            torch.ones(1)
    record = stats.as_record()
    assert record["warmup_iterations"] == 3 and record["iterations"] == 30
    assert record["iter_ms"] == pytest.approx(1000 * stats.timed_s / 27)
    assert stats.timed_s <= stats.wall_s


def test_one_device_copy_of_a_split_per_process(monkeypatch):
    from fairbench.run import cell as cell_module

    config = resolve_run_config(TINY + ["methods=[dm]"])
    config = {**config, "data_root": str(config["data_root"])}
    (cell,) = make_plan(config)
    first = cell_module.train_on_device(cell, config, torch.device("cpu"))
    assert cell_module.train_on_device(cell, config, torch.device("cpu")) is first


def test_experts_normalise_one_batch_at_a_time(monkeypatch):
    from fairbench.distill.experts import train_expert
    from fairbench.testing import tiny_splits

    train, _ = tiny_splits()
    sizes = []
    normalize = type(train).normalize
    monkeypatch.setattr(type(train), "normalize", lambda self, x: sizes.append(len(x)) or normalize(self, x))
    hparams = {**method_hparams("mtt", "t", 2), "trajectory_epochs": 1, "expert_batch": 8, "expert_dsa": False}
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(train.num_classes))
    net(torch.zeros(1, *train.image_shape))
    train_expert(net, train, torch.ones(len(train), dtype=torch.float64), hparams)
    assert sizes and max(sizes) <= 8 < len(train)


def test_configure_backends_leaves_the_cpu_alone(monkeypatch):
    monkeypatch.setattr(torch.cuda, "set_device", lambda _: pytest.fail("set_device on a CPU run"))
    configure_backends(torch.device("cpu"))
    assert device_module.parse_device("auto") is None
    assert build_distiller  # the API the memory check goes through


def test_test_batches_reach_the_device_through_the_pinned_copy(monkeypatch):
    from fairbench.testing import tiny_splits
    from fairbench.training import train as train_module

    _, test = tiny_splits()
    copied = []
    monkeypatch.setattr(train_module, "to_device", lambda t, d: copied.append(len(t)) or t)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(test.num_classes))
    train_module.predict(net, test, "cpu", batch_size=7)
    assert sum(copied) == len(test) and max(copied) == 7


def test_a_cluster_runs_preparation_in_the_cells_job_not_in_the_driver(tmp_path, monkeypatch):
    from fairbench.run import driver

    monkeypatch.setattr(slurm, "_executor", lambda submitit, config: InProcessExecutor())
    monkeypatch.setattr(driver, "prepare_cells", lambda *a, **k: pytest.fail("the driver trained experts"))
    mtt = [
        "methods=[mtt]",
        "distill.num_experts=1",
        "distill.trajectory_epochs=2",
        "distill.expert_epochs=1",
        "distill.max_start_epoch=0",
        "distill.syn_steps=1",
        "distill.expert_dsa=false",
    ]
    config = resolve_run_config(TINY + mtt + [f"out={tmp_path / 'out'}", "launcher=slurm", "device=cpu"])
    config["experts_dir"] = str(tmp_path / "experts")
    _, _, failures = run_suite(config)
    assert failures == []
    assert len(list((tmp_path / "experts").glob("*/expert_0.pt"))) == 1
    assert (tmp_path / "experts" / ".prepare.lock").exists()
