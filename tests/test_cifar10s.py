import pickle

import numpy as np
import pytest
import torch
from native_files import write_cifar10
from PIL import Image

from fairbench.core.errors import DataNotFoundError, FairbenchError
from fairbench.data import load_dataset
from fairbench.data.cifar import grayscale


def read_pickles(folder, names):
    batches = []
    for name in names:
        with open(folder / name, "rb") as f:
            batches.append(pickle.load(f))
    data = np.concatenate([b["data"] for b in batches]).reshape(-1, 3, 32, 32)
    return torch.from_numpy(data), torch.tensor(sum((b["labels"] for b in batches), []))


def test_grayscale_is_pils_luma():
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(pixels).convert("L"))
    gray = grayscale(torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0))[0]
    for channel in gray:
        np.testing.assert_array_equal(channel.numpy(), expected)


@pytest.mark.parametrize("rho", [0.9, 0.75])
def test_train_split_is_skewed_by_rho_per_class(tmp_path, rho):
    folder = write_cifar10(tmp_path, per_class_train=20)
    train = load_dataset("cifar10s", tmp_path, {"rho": rho}).train
    majority = round(rho * 20)
    counts = train.counts()
    assert counts[:5, 0].tolist() == [majority] * 5 and counts[:5, 1].tolist() == [20 - majority] * 5
    assert counts[5:, 1].tolist() == [majority] * 5 and counts[5:, 0].tolist() == [20 - majority] * 5
    images, labels = read_pickles(folder, [f"data_batch_{i}" for i in range(1, 6)])
    assert torch.equal(train.labels, labels)
    gray = train.groups == 0
    assert torch.equal(train.images[~gray], images[~gray])  # color images untouched
    assert torch.equal(train.images[gray], grayscale(images[gray]))
    assert (train.images[gray][:, 0] == train.images[gray][:, 2]).all()


def test_test_split_holds_every_image_gray_then_color(tmp_path):
    folder = write_cifar10(tmp_path, per_class_test=3)
    test = load_dataset("cifar10s", tmp_path).test
    images, labels = read_pickles(folder, ["test_batch"])
    n = len(labels)
    assert len(test) == 2 * n
    assert torch.equal(test.counts(), torch.full((10, 2), 3))
    assert torch.equal(test.images[:n], grayscale(images)) and torch.equal(test.images[n:], images)
    assert torch.equal(test.labels, labels.repeat(2))


def test_seed_changes_which_images_are_gray_not_how_many(tmp_path):
    write_cifar10(tmp_path)
    a = load_dataset("cifar10s", tmp_path, {"seed": 0}).train
    b = load_dataset("cifar10s", tmp_path, {"seed": 1}).train
    assert torch.equal(a.counts(), b.counts()) and not torch.equal(a.groups, b.groups)


def test_truncated_pickle_is_named(tmp_path):
    folder = write_cifar10(tmp_path)
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(FairbenchError, match="data_batch_3: truncated or not a CIFAR-10 batch"):
        load_dataset("cifar10s", tmp_path)


def test_missing_batch_says_where_to_get_it(tmp_path):
    folder = write_cifar10(tmp_path)
    (folder / "test_batch").unlink()
    expected = r"cifar-10-batches-py/test_batch not found.*cs\.toronto\.edu.*download=true"
    with pytest.raises(DataNotFoundError, match=expected):
        load_dataset("cifar10s", tmp_path)
