import numpy as np
import pytest
import torch
from native_files import write_mnist

from fairbench.core.errors import DataNotFoundError, FairbenchError
from fairbench.data import load_dataset
from fairbench.data.colored import COLORS, assign_colors, colorize


def test_rho_per_class_and_even_spread_of_the_rest():
    labels = torch.arange(10).repeat_interleave(100)
    groups = assign_colors(labels, 0.9, torch.Generator().manual_seed(0))
    for c in range(10):
        counts = torch.bincount(groups[labels == c], minlength=10)
        assert counts[c] == 90
        others = torch.cat([counts[:c], counts[c + 1 :]])
        assert others.max() - others.min() <= 1 and others.sum() == 10


def test_uniform_test_colors():
    labels = torch.arange(10).repeat_interleave(50)
    groups = assign_colors(labels, 0.1, torch.Generator().manual_seed(0))
    counts = torch.bincount(labels * 10 + groups, minlength=100).view(10, 10)
    assert counts.min() == 5 and counts.max() == 5


def test_foreground_and_background_coloring():
    gray = torch.tensor([[[0, 127], [128, 255]]], dtype=torch.uint8)
    fg = colorize(gray, torch.tensor([1]), "foreground", pad_first=False)
    assert fg.shape == (1, 3, 32, 32)  # padded to 32
    inner = fg[0, :, 15:17, 15:17]
    assert inner[:, 0, 0].tolist() == [0, 0, 0] and inner[:, 0, 1].tolist() == [0, 0, 0]
    assert inner[:, 1, 0].tolist() == COLORS[1].int().tolist() == inner[:, 1, 1].tolist()
    bg = colorize(gray, torch.tensor([1]), "background", pad_first=False)[0, :, 15:17, 15:17]
    assert bg[:, 0, 0].tolist() == COLORS[1].int().tolist() and bg[:, 1, 1].tolist() == [0, 0, 0]
    intensity = colorize(gray, torch.tensor([9]), "intensity", pad_first=False)[0, :, 15:17, 15:17]
    assert intensity[:, 1, 0].tolist() == [128, 128, 128]


@pytest.mark.parametrize("compress", [False, True])
def test_cmnist_from_native_idx_files(tmp_path, compress):
    write_mnist(tmp_path, per_class_train=20, per_class_test=10, compress=compress)
    splits = load_dataset("cmnist", tmp_path)
    train, test = splits.train, splits.test
    assert train.image_shape == (3, 32, 32) and len(train) == 200 and len(test) == 100
    counts = train.counts()
    assert torch.equal(counts.diagonal(), torch.full((10,), 18))  # int(0.9 * 20)
    assert torch.equal(test.counts(), torch.ones(10, 10, dtype=torch.long))
    assert splits.source.endswith("MNIST/raw")


def test_rho_override(tmp_path):
    write_mnist(tmp_path, per_class_train=20)
    train = load_dataset("cmnist", tmp_path, {"rho": 0.5}).train
    assert torch.equal(train.counts().diagonal(), torch.full((10,), 10))


def test_rho_out_of_range_is_refused(tmp_path):
    write_mnist(tmp_path)
    with pytest.raises(FairbenchError, match="rho must lie in"):
        load_dataset("cmnist", tmp_path, {"rho": 1.5})


def test_missing_files_say_where_they_go(tmp_path):
    with pytest.raises(DataNotFoundError, match="MNIST/raw/train-images-idx3-ubyte.*ossci-datasets"):
        load_dataset("cmnist", tmp_path)


def test_truncated_idx_is_named(tmp_path):
    raw = write_mnist(tmp_path)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(FairbenchError, match="train-images-idx3-ubyte: truncated"):
        load_dataset("cmnist", tmp_path)


def test_embedded_mini_needs_no_files(tmp_path):
    splits = load_dataset("cmnist-mini", tmp_path / "nowhere")
    assert len(splits.train) == 4000 and len(splits.test) == 1000
    assert torch.equal(splits.train.counts().diagonal(), torch.full((10,), 360))
    assert splits.test.counts().min() == 10
    again = load_dataset("cmnist-mini", tmp_path)
    assert torch.equal(splits.train.images, again.train.images)  # deterministic split and colors
    np.testing.assert_array_equal(splits.test.groups.numpy(), again.test.groups.numpy())


def test_reference_pads_top_left_before_coloring():
    """28 -> 32 by 4 px on top and left, then colored: a background image has a colored border."""
    gray = torch.full((1, 28, 28), 255, dtype=torch.uint8)
    bg = colorize(gray, torch.tensor([2]), "background")
    assert bg.shape == (1, 3, 32, 32)
    assert (bg[0, :, :4, :] == COLORS[2].view(3, 1, 1)).all() and (bg[0, :, :, :4] == COLORS[2].view(3, 1, 1)).all()
    assert (bg[0, :, 4:, 4:] == 0).all()  # the digit (all ink) is black, no bottom/right pad


def _reference_stream(labels_by_split, rho_by_split):
    """The reference's draws spelled out as its code makes them: the global NumPy generator seeded
    30, per class a shuffle of the class's indices, int(n * rho) of the class color, a shuffled
    *list* of the other colors, chunks of ceil(rest / 9); a shuffle of the split's order; the test
    split next from the same stream."""
    np.random.seed(30)
    out = []
    for labels, rho in zip(labels_by_split, rho_by_split):
        groups = np.full(len(labels), -1)
        for c in range(10):
            idx = np.where(labels == c)[0]
            np.random.shuffle(idx)
            n_corr = int(len(idx) * rho)
            groups[idx[:n_corr]] = c
            per = int(np.ceil((len(idx) - n_corr) / 9))
            other = [k % 10 for k in range(c + 1, c + 10)]
            np.random.shuffle(other)
            for j, part in enumerate(torch.split(torch.from_numpy(idx[n_corr:]), per)):
                groups[part.numpy()] = other[j]
        order = np.arange(len(labels))
        np.random.shuffle(order)
        out.append(groups)
    return out


def test_reference_construction_gives_every_image_the_reference_color(tmp_path):
    # unequal classes (23..32 train images), so int() and the ceil chunks matter: 23 * 0.9 = 20.7
    # gives 20 of the class color (round would give 21) and 3 leftovers in chunks of 1.
    rng = np.random.default_rng(0)
    train_labels = np.repeat(np.arange(10), np.arange(23, 33))
    test_labels = np.repeat(np.arange(10), 12)
    rng.shuffle(train_labels)
    write_mnist(tmp_path, labels=(train_labels, test_labels))
    splits = load_dataset("cmnist", tmp_path)
    expected_train, expected_test = _reference_stream([train_labels, test_labels], [0.9, 0.1])
    np.testing.assert_array_equal(splits.train.groups.numpy(), expected_train)
    np.testing.assert_array_equal(splits.test.groups.numpy(), expected_test)
    assert splits.train.counts()[0, 0] == 20


def test_balanced_construction_is_an_option(tmp_path):
    write_mnist(tmp_path, per_class_train=20, per_class_test=10)
    splits = load_dataset("cmnist", tmp_path, {"construction": "balanced", "rho": 0.85})
    others = splits.train.counts().masked_fill(torch.eye(10, dtype=torch.bool), 0)
    assert torch.equal(splits.train.counts().diagonal(), torch.full((10,), 17))
    assert (others.sum(1) == 3).all() and others.max() == 1
    with pytest.raises(FairbenchError, match="construction 'even'; choose from: reference, balanced"):
        load_dataset("cmnist", tmp_path, {"construction": "even"})
