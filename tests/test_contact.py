"""The data-copying contact check: perturbed test images are flagged, honest sets are not.

Perturbations run on a slice of the embedded colored MNIST (``cmnist-mini``); honest sets are every
built-in method's, at IPC 1 and 10, distilled with fairbench.testing's tiny budgets on a slice of
the same training split (what verify sees: real-initialised sets a few steps from their start).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fairbench.board.contact import RATIO_EPS, ContactIndex
from fairbench.data import GroupDataset, load_dataset
from fairbench.distill import build_distiller, method_ids
from fairbench.testing import _context, _tiny_hparams


def _subset(split: GroupDataset, per_class: int) -> GroupDataset:
    keep = torch.cat([torch.nonzero(split.labels == c)[:per_class, 0] for c in range(split.num_classes)])
    return GroupDataset(
        split.images[keep],
        split.labels[keep],
        split.groups[keep],
        split.class_names,
        split.group_names,
        split.mean,
        split.std,
    )


@pytest.fixture(scope="module")
def splits():
    data = load_dataset("cmnist-mini", "data")
    return _subset(data.train, 60), _subset(data.test, 30)


@pytest.fixture(scope="module")
def index(splits):
    return ContactIndex(*splits, "cpu")


def _test_images(splits, count=40):
    test = splits[1]
    return test.normalize(test.images[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:count]])


def _shift(x):
    return torch.roll(x, (1, -1), (2, 3)) + 0.03 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))


def _crop(x):
    return F.interpolate(x[..., 2:-2, 2:-2], size=x.shape[-2:], mode="bilinear", align_corners=False)


def _noise(x):
    return x + 0.15 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))


def _blend_with_train(splits):
    train = splits[0]
    other = train.normalize(train.images[:40])
    return lambda x: 0.85 * x + 0.15 * other


@pytest.mark.parametrize("name", ["copy", "shift", "crop", "noise", "blend"])
def test_perturbed_test_images_are_flagged(splits, index, name):
    perturb = {"copy": lambda x: x, "shift": _shift, "crop": _crop, "noise": _noise}.get(name) or _blend_with_train(
        splits
    )
    contact = index.contact(perturb(_test_images(splits)))
    assert contact.flagged and contact.count >= contact.images // 2, contact
    assert contact.min_ratio < RATIO_EPS


def test_real_training_images_and_noise_are_not_flagged(splits, index):
    train = splits[0]
    assert not index.contact(train.normalize(train.images[:40])).flagged
    noise = torch.randn(40, *train.image_shape, generator=torch.Generator().manual_seed(3))
    contact = index.contact(noise)
    assert not contact.flagged and 0.8 < contact.median_ratio < 1.25  # far from both splits alike


def _honest(method: str, ipc: int, train: GroupDataset) -> torch.Tensor:
    hparams = _tiny_hparams(method, ipc, None)
    with tempfile.TemporaryDirectory() as experts:
        distiller = build_distiller(method, hparams)
        ctx = _context(hparams, train, torch.device("cpu"), Path(experts))
        distiller.prepare(train, ctx)
        torch.manual_seed(0)
        return distiller.distill(train, ipc, ctx).images.detach()


@pytest.mark.parametrize("ipc", [1, 10])
def test_honest_sets_of_every_built_in_method_pass(splits, index, ipc):
    train = _subset(splits[0], 40)  # the smallest real pool idc needs at IPC 10 (factor 2: 40 per class)
    ratios = {}
    for method in method_ids():
        contact = index.contact(_honest(method, ipc, train))
        ratios[method] = round(contact.min_ratio, 3)
        assert not contact.flagged, (method, contact)
    assert min(ratios.values()) > RATIO_EPS, ratios
