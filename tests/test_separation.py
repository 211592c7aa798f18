"""Separation dials: colored (F)MNIST's ``separation`` (colours blended toward one gray) and
CIFAR10-S's ``severity`` (COBRA's stacked corruptions of group 0), on native-format fixtures."""

import numpy as np
import pytest
import torch
from native_files import write_cifar10, write_mnist
from PIL import Image, ImageDraw

from fairbench.data import dataset_params, load_dataset
from fairbench.data.colored import COLORS, colorize, palette
from fairbench.data.corruptions import corrupt, rotate_clockwise


def test_separation_one_is_the_reference_and_zero_makes_groups_identical(tmp_path):
    write_mnist(tmp_path, per_class_train=20, per_class_test=10)
    today = load_dataset("cmnist", tmp_path)
    assert dataset_params("cmnist", {"separation": 1.0}) == dataset_params("cmnist")  # same protocol id
    assert palette(1.0) is COLORS
    half = load_dataset("cmnist", tmp_path, {"separation": 0.5})
    apart = load_dataset("cmnist", tmp_path, {"separation": 0.0})
    for knob in (half, apart):  # groups and labels untouched, in both splits
        for split in ("train", "test"):
            assert torch.equal(getattr(knob, split).groups, getattr(today, split).groups)
            assert torch.equal(getattr(knob, split).labels, getattr(today, split).labels)
        assert not torch.equal(knob.train.images, today.train.images)
    # at 0 an image no longer depends on its group: recolouring every sample with group 0 changes nothing
    gray = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8)
    groups = torch.arange(6)
    same = colorize(gray, groups, "foreground", colors=palette(0.0))
    assert torch.equal(same, colorize(gray, torch.zeros(6, dtype=torch.long), "foreground", colors=palette(0.0)))
    # in between, the colours move toward gray monotonically
    spread = [float(palette(s).std(0).mean()) for s in (0.0, 0.5, 1.0)]
    assert spread[0] == 0 and spread[0] < spread[1] < spread[2]


def _reference_levels_1_to_3(pixels: np.ndarray, severity: int) -> np.ndarray:
    """COBRA's first three levels as its code takes them, on one (H, W, 3) image with PIL."""
    image = Image.fromarray(pixels[:, :, [1, 2, 0]])
    if severity >= 2:
        ImageDraw.Draw(image).line((0, 0, 32, 32), fill=(255, 0, 0), width=2)
    array = np.array(image)
    if severity >= 3:
        array[2:7, 2:7, 0] = 255
        array[2:7, 2:7, 1:] = 0
    return array


@pytest.mark.parametrize("severity", [1, 2, 3])
def test_corruption_levels_match_pil(severity):
    pixels = np.random.default_rng(severity).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    ours = corrupt(torch.from_numpy(pixels).permute(0, 3, 1, 2), severity, torch.Generator().manual_seed(0))
    for k in range(2):
        np.testing.assert_array_equal(ours[k].permute(1, 2, 0).numpy(), _reference_levels_1_to_3(pixels[k], severity))


def test_rotation_is_pils_rotate_270():
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    expected = np.array(Image.fromarray(pixels).transpose(Image.Transpose.ROTATE_270))
    ours = rotate_clockwise(torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0))[0].permute(1, 2, 0)
    np.testing.assert_array_equal(ours.numpy(), expected)


def test_cifar10s_severity_corrupts_group_0_at_every_rho_and_keeps_groups(tmp_path):
    write_cifar10(tmp_path, per_class_train=10, per_class_test=2)
    today = load_dataset("cifar10s", tmp_path)
    assert dataset_params("cifar10s", {"severity": 0}) == dataset_params("cifar10s")
    previous = today
    for severity in range(1, 6):
        for rho in (0.9, 0.8):  # the reference would corrupt only at rho != 0.9
            base = today if rho == 0.9 else load_dataset("cifar10s", tmp_path, {"rho": rho})
            seen = load_dataset("cifar10s", tmp_path, {"severity": severity, "rho": rho})
            for split in ("train", "test"):
                a, b = getattr(base, split), getattr(seen, split)
                assert torch.equal(a.groups, b.groups) and torch.equal(a.labels, b.labels)
                color = a.groups == 1
                assert torch.equal(a.images[color], b.images[color])  # the colour group is untouched
                assert not torch.equal(a.images[~color], b.images[~color])
        assert not torch.equal(seen.train.images, previous.train.images)
        previous = seen
    again = load_dataset("cifar10s", tmp_path, {"severity": 5, "rho": 0.8})
    assert torch.equal(again.train.images, seen.train.images)  # the noise is seeded
