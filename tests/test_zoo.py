"""Every method id end to end on cmnist-mini with tiny budgets, MTT's expert cache, failed cells."""

import json

import pytest
import torch
from conftest import TINY_CI

from fairbench.data import GroupDataset
from fairbench.distill import method_ids
from fairbench.distill.experts import balance_weights, expert_folder, make_experts
from fairbench.models import build_model
from fairbench.run.config import resolve_run_config
from fairbench.run.driver import run_suite
from fairbench.run.preparation import prepare_run

# one outer step everywhere but in dc, which also runs an inner epoch between two
TINY = TINY_CI + [
    "distill.outer_loop=1",
    "distill.inner_loop=1",
    "distill.dc.outer_loop=2",
    "distill.warmup_epochs=1",
    "distill.syn_steps=2",
    "distill.num_experts=1",
    "distill.trajectory_epochs=1",
    "distill.expert_epochs=1",
    "distill.max_start_epoch=0",
    "distill.expert_batch=512",
    "distill.expert_dsa=false",
]


def tiny_config(tmp, *extra):
    config = resolve_run_config(TINY + [f"experts_dir={tmp / 'experts'}", f"out={tmp / 'out'}", *extra])
    return config


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zoo")
    config = tiny_config(tmp, f"methods=[{','.join(method_ids())}]")
    made = prepare_run(config)
    out, frame, failures = run_suite(config)
    return tmp, config, made, frame, failures


def test_every_method_id_runs_on_cmnist_mini(zoo_run):
    tmp, config, made, frame, failures = zoo_run
    assert not failures
    assert sorted(frame["method"]) == sorted(method_ids())
    records = [json.loads(line) for line in (tmp / "out" / "results.jsonl").read_text().splitlines()]
    assert {r["status"] for r in records} == {"ok"}
    for record in records:
        if record["method"] != "random":
            assert 0 < record["target_ms"] <= record["iter_ms"]
    per_class = {r["method"]: r for r in records}
    assert per_class["idc"]["config"]["method"]["hparams"]["factor"] == 2


def test_overhead_column_compares_each_variant_with_its_base(zoo_run):
    _, _, _, frame, _ = zoo_run
    overhead = dict(zip(frame["method"], frame["overhead"]))
    iter_ms = dict(zip(frame["method"], frame["iter_ms"]))
    for method in method_ids():
        base = method.partition("+")[0]
        if base == "random":
            assert overhead[method] != overhead[method]  # NaN: no iterations to compare
        else:
            assert overhead[method] == pytest.approx(iter_ms[method] / iter_ms[base])


def trained_per_folder(lines):
    """``prepare_run``'s lines ("FOLDER: N expert trajectories trained, M reused") summed per folder."""
    trained = {}
    for line in lines:
        folder, _, rest = line.rpartition(": ")
        trained[folder] = trained.get(folder, 0) + int(rest.split()[0])
    return sorted(trained.values())


def test_experts_are_made_once_and_shared_where_the_training_is_identical(zoo_run):
    tmp, config, made, _, _ = zoo_run
    # vanilla experts, and one group-balanced set that mtt+fairdd and mtt+cobra share
    # (every class of cmnist-mini has all ten colours, so their weights coincide)
    assert trained_per_folder(made) == [1, 1]
    files = sorted((tmp / "experts").glob("*/expert_0.pt"))
    stamps = [f.stat().st_mtime_ns for f in files]
    again = prepare_run(config)
    assert trained_per_folder(again) == [0, 0]
    assert [f.stat().st_mtime_ns for f in files] == stamps


def test_a_run_makes_the_experts_its_mtt_cells_need_before_any_cell(tmp_path):
    """No separate `fairbench prepare` is needed: the driver runs each base's preparation step
    first, once per distinct set, and a second run reuses what it made."""
    config = tiny_config(tmp_path, "methods=[dm,mtt+fairdd]")
    out, frame, failures = run_suite(config)
    assert not failures and sorted(frame["method"]) == ["dm", "mtt+fairdd"]
    (expert,) = (tmp_path / "experts").glob("*/expert_0.pt")
    stamp = expert.stat().st_mtime_ns
    run_suite({**config, "out": str(tmp_path / "again")})
    assert expert.stat().st_mtime_ns == stamp


def test_a_diverging_cell_fails_alone_and_the_suite_goes_on(tmp_path):
    config = tiny_config(tmp_path, "methods=[dm,dm+fairdd]")
    config["distill"]["dm+fairdd"] = {"lr_img": float("inf"), "iterations": 2}
    out, frame, failures = run_suite(config)
    assert len(failures) == 1 and "dm+fairdd" in failures[0] and "NaN" in failures[0]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["method"], r["status"]) for r in records] == [("dm", "ok"), ("dm+fairdd", "failed")]
    assert "NaN" in records[1]["reason"] and "metrics" not in records[1]
    assert list(frame["method"]) == ["dm"]


def small_groups(groups_of_class_1):
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    groups = torch.tensor([0, 0, 0, 1] + groups_of_class_1)
    return GroupDataset(
        torch.zeros(8, 3, 8, 8, dtype=torch.uint8), labels, groups, ["a", "b"], ["x", "y"], (0.5,) * 3, (0.5,) * 3
    )


def test_balanced_expert_weights_follow_the_aggregations():
    train = small_groups([0, 1, 1, 1])
    assert torch.equal(balance_weights("vanilla", train), torch.ones(8, dtype=torch.float64))
    fairdd = balance_weights("fairdd", train)
    assert fairdd.mean().item() == pytest.approx(1.0)
    # class 0: the lone group-1 sample weighs as much as the three group-0 samples together
    assert fairdd[3].item() == pytest.approx(3 * fairdd[0].item())
    # equal group counts per class: FairDD's and COBRA's weights coincide; otherwise they differ
    assert torch.allclose(fairdd, balance_weights("cobra", train))
    uneven = small_groups([0, 0, 0, 0])
    assert not torch.allclose(balance_weights("fairdd", uneven), balance_weights("cobra", uneven))


def test_expert_cache_is_keyed_by_what_shapes_the_training(tmp_path):
    train = small_groups([0, 1, 1, 1])
    hparams = {"trajectory_epochs": 2, "expert_lr": 0.01, "expert_batch": 4, "expert_dsa": False}
    provenance = {"dataset": "toy", "net": {"width": 2}}
    folder = expert_folder(tmp_path, provenance, hparams, balance_weights("vanilla", train))
    make = lambda: build_model("convnet", 3, 2, 8, width=2, depth=1)  # noqa: E731
    assert make_experts(folder, 2, train, balance_weights("vanilla", train), hparams, make, "cpu") == 2
    trajectory = torch.load(folder / "expert_0.pt")
    assert trajectory.shape == (3, sum(p.numel() for p in make().parameters()))
    assert make_experts(folder, 3, train, balance_weights("vanilla", train), hparams, make, "cpu") == 1
    assert torch.equal(torch.load(folder / "expert_0.pt"), trajectory)
    assert (
        expert_folder(tmp_path, provenance, {**hparams, "expert_lr": 0.1}, balance_weights("vanilla", train)) != folder
    )
    assert expert_folder(tmp_path, provenance, hparams, balance_weights("fairdd", train)) != folder


@pytest.mark.parametrize("losses, diverged", [([1.0, float("nan"), 2.0], True), ([3.0, float("inf")], True),
                                              ([1e30, 2e30, 0.5], False)])  # fmt: skip
def test_one_non_finite_loss_among_finite_ones_stops_the_run(losses, diverged):
    from fairbench.core.errors import DistillationDiverged
    from fairbench.distill import DistillContext
    from fairbench.distill.base import DistillStats, IterationClock

    ctx = DistillContext(device=torch.device("cpu"), make_net=None)
    clock = IterationClock(ctx, DistillStats(), "dm", len(losses))
    seen = []
    try:
        for it in clock:
            clock.watch(torch.tensor(losses[it]))
            seen.append(it)
    except DistillationDiverged as error:
        assert diverged and f"NaN or infinite by iteration {len(losses)}" in str(error) and len(seen) == len(losses)
    else:
        assert not diverged
