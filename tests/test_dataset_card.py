"""``fairbench data NAME``: the dataset card, and the dataset suites' behaviour without data."""

import json
import time

import pytest
from native_files import write_bffhq, write_cifar10, write_mnist

from fairbench.cli import main


def card(capsys, *args):
    assert main(["data", *args]) == 0
    return capsys.readouterr().out


def test_json_card_has_the_documented_shape_and_counts(tmp_path, capsys):
    write_cifar10(tmp_path, per_class_train=10, per_class_test=2)
    about = json.loads(card(capsys, "cifar10s", f"data_root={tmp_path}", "--json", "rho=0.8"))
    assert set(about) == {"name", "image_shape", "classes", "groups", "splits"}
    assert about["name"] == "cifar10s" and about["image_shape"] == [3, 32, 32]
    assert about["groups"] == ["grayscale", "color"] and len(about["classes"]) == 10
    assert about["splits"]["train"] == {"n": 100, "counts": [[8, 2]] * 5 + [[2, 8]] * 5}
    assert about["splits"]["test"] == {"n": 40, "counts": [[2, 2]] * 10}


def test_text_card_shows_source_shape_names_and_cells(tmp_path, capsys):
    write_bffhq(tmp_path, {(0, 0): 3, (1, 1): 4}, {(0, 1): 1}, {(0, 0): 1, (0, 1): 1, (1, 0): 1, (1, 1): 2})
    text = card(capsys, "bffhq", f"data_root={tmp_path}", "image_size=16")
    assert f"source: {tmp_path / 'bffhq'}" in text and "image shape: 3 x 16 x 16" in text
    assert "classes: young, old" in text and "groups: female, male" in text
    assert "train: 8 samples" in text and "test: 5 samples" in text
    young = next(line for line in text.splitlines() if line.startswith("young"))
    assert young.split() == ["young", "3", "1", "4"]


def test_embedded_dataset_needs_no_settings(capsys):
    about = json.loads(card(capsys, "cmnist-mini", "--json"))
    assert about["splits"]["train"]["n"] == 4000 and about["splits"]["test"]["n"] == 1000


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["nope"], ["unknown dataset 'nope'", "celeba, cfmnist"]),
        (["cmnist-mini", "rho"], ["malformed override 'rho'"]),
        (["cmnist-mini", "target=Male"], ["dataset 'cmnist-mini' has no setting target", "rho"]),
        (["cmnist-mini", "rho=high"], ["wrong type"]),
        (["cmnist", "rho=1.5", "data_root=DATA"], ["rho must lie in (0, 1]"]),
        (["utkface", "data_root=DATA"], ["UTKFace not found", "susanqq.github.io"]),
        (["cmnist", "download=maybe"], ["download must be true or false"]),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, fragments):
    write_mnist(tmp_path / "data", per_class_train=2, per_class_test=1)
    args = [a.replace("DATA", str(tmp_path / "data")) for a in args]
    assert main(["data", *args]) == 2
    error = capsys.readouterr().err
    assert error.startswith("fairbench: error:") and error.count("\n") == 1
    for fragment in fragments:
        assert fragment in error


@pytest.mark.parametrize("suite", ["cmnist-bg", "cfmnist", "cfmnist-bg", "cifar10s", "celeba", "utkface", "bffhq"])
def test_dataset_suites_plan_the_paper_grid_and_fail_at_once_without_data(tmp_path, capsys, suite):
    assert main(["run", f"suite={suite}", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "12 cells" in plan and suite in plan and "20000" in plan
    start = time.perf_counter()
    assert main(["run", f"suite={suite}", f"data_root={tmp_path / 'none'}", f"out={tmp_path / 'out'}"]) == 2
    assert time.perf_counter() - start < 5
    error = capsys.readouterr().err
    assert error.startswith("fairbench: error:") and f"{tmp_path / 'none'} does not exist" in error
    assert not (tmp_path / "out").exists()


def test_download_run_key_must_be_a_boolean(capsys):
    assert main(["run", "--dry-run", "download=maybe"]) == 2
    assert "download must be true or false" in capsys.readouterr().err
