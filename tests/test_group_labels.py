"""Group-label quality (dataset.group_noise, group_known with drop / infer): only the groups the
distiller sees change; the test split keeps the true ones; the defaults change nothing."""

import json

import pytest
import torch

from fairbench.cli import main
from fairbench.data import dataset_params, load_dataset
from fairbench.data.group_labels import UNKNOWN
from fairbench.distill import build_distiller
from fairbench.distill.aggregation import matching_terms
from fairbench.run.cell import splits_for
from fairbench.run.config import resolve_run_config
from fairbench.run.plan import make_plan
from fairbench.run.preparation import cell_context
from fairbench.testing import check_method

KNOBS = [
    {"group_noise": 0.5},
    {"group_known": 0.3},
    {"group_known": 0.3, "group_unknown": "infer"},
    {"group_noise": 0.2, "group_known": 0.5, "group_unknown": "infer", "group_seed": 3},
]


@pytest.fixture(scope="module")
def clean():
    return load_dataset("cmnist-mini", "data")


@pytest.mark.parametrize("knobs", KNOBS)
def test_the_test_split_and_the_train_images_are_untouched(clean, knobs):
    seen = load_dataset("cmnist-mini", "data", knobs)
    for split in ("test", "train"):
        a, b = getattr(clean, split), getattr(seen, split)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert torch.equal(seen.test.groups, clean.test.groups)
    assert torch.equal(seen.train.true_groups, clean.train.groups)
    assert not torch.equal(seen.train.groups, clean.train.groups)
    assert seen.distiller_groups["seed"] == knobs.get("group_seed", 0)


def test_noise_replaces_a_fraction_p_by_another_group_seeded(clean):
    seen = load_dataset("cmnist-mini", "data", {"group_noise": 0.3})
    changed = seen.train.groups != clean.train.groups
    assert abs(float(changed.float().mean()) - 0.3) < 0.03
    assert seen.distiller_groups["changed"] == pytest.approx(float(changed.float().mean()))
    again = load_dataset("cmnist-mini", "data", {"group_noise": 0.3})
    other = load_dataset("cmnist-mini", "data", {"group_noise": 0.3, "group_seed": 1})
    assert torch.equal(again.train.groups, seen.train.groups)
    assert not torch.equal(other.train.groups, seen.train.groups)


def test_unknown_groups_dropped_or_inferred(clean):
    dropped = load_dataset("cmnist-mini", "data", {"group_known": 0.25})
    unknown = dropped.train.groups == UNKNOWN
    assert int(unknown.sum()) == len(unknown) - round(0.25 * len(unknown))
    assert torch.equal(dropped.train.groups[~unknown], clean.train.groups[~unknown])
    assert dropped.train.counts().sum() == (~unknown).sum()  # an unknown sample is in no cell
    inferred = load_dataset("cmnist-mini", "data", {"group_known": 0.25, "group_unknown": "infer"})
    assert bool((inferred.train.groups >= 0).all())
    assert torch.equal(inferred.train.groups[~unknown], clean.train.groups[~unknown])
    accuracy = 100 * float((inferred.train.groups[unknown] == clean.train.groups[unknown]).float().mean())
    assert inferred.distiller_groups["infer_acc"] == pytest.approx(accuracy)
    assert accuracy > 50  # colour is easy to see: far above the 10% of a guess


def test_defaults_stay_out_of_the_protocol():
    plain = dataset_params("cmnist-mini")
    assert dataset_params("cmnist-mini", {"group_noise": 0.0, "group_known": 1.0, "group_seed": 4}) == plain
    assert dataset_params("cmnist-mini", {"group_known": 1.0, "group_unknown": "infer"}) == plain
    assert dataset_params("cmnist-mini", {"group_known": 0.5})["group_known"] == 0.5


def _synthetic(overrides, method="dm+fairdd"):
    config = resolve_run_config(["suite=ci", f"methods=[{method}]", "distill.iterations=3", *overrides])
    (cell,) = make_plan(config)
    splits = splits_for(cell, config | {"data_root": "data", "download": False})
    train = splits.train
    torch.manual_seed(0)
    distiller = build_distiller(cell.method, cell.hparams)
    return cell, distiller.distill(train, cell.ipc, cell_context(cell, train, torch.device("cpu"), config)).images


def test_group_noise_0_and_group_known_1_give_the_same_set_bit_for_bit():
    cell, today = _synthetic([])
    knobbed, same = _synthetic(["dataset.group_noise=0", "dataset.group_known=1"])
    assert knobbed.dataset_params == cell.dataset_params  # the same protocol id
    assert torch.equal(today, same)
    _, noisy = _synthetic(["dataset.group_noise=0.5"])
    assert not torch.equal(today, noisy)  # the knob does reach the distiller


@pytest.mark.parametrize("method", ["dm+fairdd", "dm+cobra"])
def test_distillers_run_with_unknown_groups(method):
    _, images = _synthetic(["dataset.group_known=0.1"], method)
    assert bool(torch.isfinite(images).all())


def test_variants_read_unknown_as_no_group():
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    groups = torch.tensor([0, 1, UNKNOWN, 0, UNKNOWN, UNKNOWN])
    for variant in ("fairdd", "cobra"):
        terms = matching_terms(variant, labels, groups, 2, 2)
        assert terms.weight[groups == UNKNOWN].tolist() == [0, 0, 0]
    vanilla = matching_terms("vanilla", labels, groups, 2, 2)
    assert vanilla.weight.tolist() == pytest.approx([1 / 3] * 6)  # pooled per class, groups unread
    fairdd = matching_terms("fairdd", labels, groups, 2, 2)
    assert fairdd.active.tolist() == [[True, True], [True, False]]
    assert "unknown groups" in check_method("dm+cobra").passed


def test_data_card_shows_the_distillers_counts_beside_the_true_ones(capsys):
    assert main(["data", "cmnist-mini", "dataset.group_known=0.5", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    train = card["splits"]["train"]
    assert sum(map(sum, train["counts"])) + sum(train["unknown"]) == sum(map(sum, train["true_counts"])) == 4000
    assert sum(train["unknown"]) == 2000
    assert card["distiller_groups"]["known"] == 0.5
    assert "true_counts" not in card["splits"]["test"]
