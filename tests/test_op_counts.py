"""No DM iteration issues more than 10% more aten operations than the committed counts
(benchmarks/op_counts.json, from benchmarks/op_counts.py), in either setting: on a GPU each is a
launch; nor does the compiled step's launch estimate grow; and no step reads a device tensor on
the host between divergence checks."""

import dataclasses
import importlib.util
import json

import pytest
import torch
from conftest import REPO, needs_compiler
from torch.profiler import ProfilerActivity, profile

from fairbench.distill import DistillContext, build_distiller, method_hparams
from fairbench.models import build_model
from fairbench.run.bench import synthetic_dataset

spec = importlib.util.spec_from_file_location("op_counts", REPO / "benchmarks" / "op_counts.py")
op_counts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(op_counts)
COMMITTED = json.loads(op_counts.BASELINE.read_text())


@pytest.mark.parametrize("setting", op_counts.SETTINGS)
@pytest.mark.parametrize("method", op_counts.METHODS)
def test_op_count_does_not_grow(method, setting):
    counted = op_counts.op_counts(method, setting)
    committed = COMMITTED[setting][method]
    for key in ("top_level", "launching"):
        assert counted[key] <= 1.10 * committed[key], (setting, method, key, counted, committed)


@needs_compiler
@pytest.mark.parametrize("method", ["dm", "dm+fairdd"])
def test_the_compiled_launch_estimate_does_not_grow(method):
    """The distill.compile step as a GPU runs it (DSA inside the embedding's graph), 10 classes:
    the same graph calls, estimated launches within 10% of the committed ones, and no read of a
    device tensor on the host outside the graphs. (dm+cobra's
    and dm+wbary's estimates compile graphs of their own, too slow for every test run: they are
    recounted with ``op_counts.py --compile``.)"""
    counted = op_counts.op_counts(method, "10 classes", compile=True)
    committed = COMMITTED["compiled"]["10 classes"][method]
    assert counted["graph_calls"] == committed["graph_calls"], (method, counted, committed)
    assert counted["launching"] <= 1.10 * committed["launching"], (method, counted, committed)
    assert counted["host_reads"] == 0, counted


@pytest.mark.parametrize("method", ["dm", "dm+fairdd", "dm+cobra", "dm+wbary", "dsa+fairdd"])
def test_a_distillation_step_reads_nothing_back_between_divergence_checks(method):
    """The middle step of three, 10 classes of unequal size with DSA: no operation that reads a
    device tensor on the host (the divergence check, every 50 steps and at the end, is the one).
    On the CPU every tensor is a host tensor, so reads of host-only tensors (the transform
    choices) are kept out of torch operations altogether."""
    torch.manual_seed(0)
    train = synthetic_dataset(10, 2, 9, 16, torch.device("cpu"))
    small = train.labels == 3
    keep = ~small | (torch.cumsum(small, 0) <= 5)  # class 3 smaller than the real batch
    train = dataclasses.replace(train, images=train.images[keep], labels=train.labels[keep], groups=train.groups[keep])
    hp = {**method_hparams(method, "", 2), "iterations": 3, "real_batch": 8}
    if "cobra" in method:
        hp["warmup_epochs"] = 2
    prof = profile(activities=[ProfilerActivity.CPU])
    ctx = DistillContext(
        torch.device("cpu"),
        lambda: build_model("convnet", 3, 10, 16, width=8),
        progress=op_counts.profile_iteration(prof, 1),
    )
    build_distiller(method, hp).distill(train, 2, ctx)
    reads = sorted({e.name for e in prof.events()} & op_counts.HOST_READS)
    assert reads == [], reads
