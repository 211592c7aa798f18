"""The colored (Fashion-)MNIST variants and ``download=true`` for the sources that allow it."""

import pytest
import torch
import torchvision.datasets
from native_files import write_cifar10, write_mnist

from fairbench.core.errors import DataNotFoundError
from fairbench.data import load_dataset
from fairbench.data.colored import COLORS
from fairbench.data.idx import read_idx


@pytest.mark.parametrize(
    "name,folder", [("cmnist-bg", "MNIST"), ("cfmnist", "FashionMNIST"), ("cfmnist-bg", "FashionMNIST")]
)
def test_variants_have_rho_per_class_and_uniform_test(tmp_path, name, folder):
    write_mnist(tmp_path, per_class_train=20, per_class_test=10, folder=folder, compress=True)
    splits = load_dataset(name, tmp_path, {"rho": 0.85})
    assert torch.equal(splits.train.counts().diagonal(), torch.full((10,), 17))  # int(0.85 * 20)
    assert torch.equal(splits.test.counts(), torch.ones(10, 10, dtype=torch.long))
    assert splits.source.endswith(f"{folder}/raw")


@pytest.mark.parametrize(
    "name,folder,weight",
    [
        ("cmnist-bg", "MNIST", lambda gray: (gray < 128).float()),
        ("cfmnist", "FashionMNIST", lambda gray: gray / 255),
        ("cfmnist-bg", "FashionMNIST", lambda gray: 1 - gray / 255),
    ],
)
def test_pixels_are_the_group_color_weighted_by_the_style(tmp_path, name, folder, weight):
    raw = write_mnist(tmp_path, per_class_train=3, folder=folder)
    gray = torch.from_numpy(read_idx(raw / "train-images-idx3-ubyte").copy()).float()
    train = load_dataset(name, tmp_path).train
    color = COLORS[train.groups].view(-1, 3, 1, 1)
    padded = torch.nn.functional.pad(gray, (4, 0, 4, 0))  # the reference: 4 px top and left, then color
    expected = (weight(padded).unsqueeze(1) * color).round()
    assert torch.equal(train.images.float(), expected)


def test_missing_files_are_fetched_with_download_true(tmp_path, monkeypatch, capsys):
    fetched = []

    class FakeMNIST:
        def __init__(self, root, train, download):
            fetched.append((root, train, download))
            print("Downloading train-images-idx3-ubyte.gz")  # as torchvision does, on stdout
            write_mnist(tmp_path / "data", per_class_train=3, per_class_test=1)

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    root = tmp_path / "data"
    with pytest.raises(DataNotFoundError, match="download=true"):
        load_dataset("cmnist", root)
    assert len(load_dataset("cmnist", root, download=True).train) == 30
    assert fetched == [(str(root), True, True)]
    assert capsys.readouterr().out == ""  # stdout stays the card's
    load_dataset("cmnist-bg", root, download=True)  # files present: nothing fetched
    assert len(fetched) == 1


def test_download_is_not_offered_where_the_host_forbids_it(tmp_path):
    with pytest.raises(DataNotFoundError, match="mmlab"):
        load_dataset("celeba", tmp_path, download=True)


def test_download_uses_torchvisions_cifar10(tmp_path, monkeypatch):
    class FakeCIFAR10:
        def __init__(self, root, train, download):
            write_cifar10(tmp_path, per_class_train=5, per_class_test=1)

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    assert len(load_dataset("cifar10s", tmp_path, download=True).test) == 20
