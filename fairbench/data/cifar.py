"""CIFAR10-S (Wang et al., 2020, as used by FairDD) from CIFAR-10's python pickles.

The group is the color mode. In training, classes 0-4 are mostly grayscale (a fraction ``rho``)
and classes 5-9 mostly color, so color mode predicts the class; the test split holds every test
image twice, once grayscale and once in color, so both groups are equally represented.

``severity`` (0-5, COBRA's separation dial; :mod:`fairbench.data.corruptions`): at 0 the group-0
images are grayscale; at k >= 1 they are COBRA's stack of k corruptions of the colour image, in
the train split and in the test split's group-0 copies alike, at every ``rho``. COBRA's own code
applies the stack only when its ratio is not 0.9 (at 0.9 it always grayscales, whatever the
severity, and at another ratio its severity 0 leaves the colour image as it is): a quirk of the
reference, not a design, which fairbench does not copy.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..core.errors import FairbenchError
from .builders import dataset_builder
from .cells import rank_within
from .corruptions import MAX_SEVERITY, corrupt
from .dataset import DatasetSplits, GroupDataset
from .files import require_file

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
GROUPS = ["grayscale", "color"]
HOW_TO_GET = (
    "get cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and unpack it "
    "into data_root, or add download=true"
)


# The only callables a CIFAR-10 batch names: numpy's array rebuilders and the codec Python 3 uses
# for bytes pickled by Python 2. Anything else (``os.system``, ``builtins.eval``...) is refused
# before it is called, so a batch that carries a ``__reduce__`` payload cannot run it.
_BATCH_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),  # pickle protocol 5
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler for the dicts, lists, bytes, strings, ints and numpy arrays of the format."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _BATCH_GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 batch never holds")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch → ((N, 3, 32, 32) uint8 images, (N,) labels).

    The official files are Python 2 pickles (``latin1`` keeps their numpy arrays intact); keys may
    come back as bytes or str depending on who wrote the file, so both are accepted. The pickle is
    read by :class:`_BatchUnpickler`, which runs nothing but numpy's array rebuilders.
    """
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, KeyError) as e:
        raise FairbenchError(f"{path}: truncated or not a CIFAR-10 batch ({type(e).__name__}: {e})") from None
    if not isinstance(batch, dict):
        raise FairbenchError(f"{path}: not a CIFAR-10 batch (a {type(batch).__name__}, not a dict)")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise FairbenchError(f"{path}: not a CIFAR-10 batch (no 'data' and 'labels' entries)")
    try:
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as e:
        raise FairbenchError(f"{path}: not a CIFAR-10 batch ({type(e).__name__}: {e})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise FairbenchError(f"{path}: CIFAR-10 batch of the wrong shape: data {data.shape}, {len(labels)} labels")
    if len(labels) and not 0 <= labels.min() <= labels.max() < len(CLASSES):
        raise FairbenchError(f"{path}: labels outside 0-9")
    return data.reshape(-1, 3, 32, 32), labels


def read_split(root: Path, names: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    folder = root / FOLDER
    batches = [read_batch(require_file(folder / name, HOW_TO_GET)) for name in names]
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    return torch.from_numpy(images), torch.from_numpy(labels)


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """RGB → gray repeated on 3 channels, with PIL's ``convert("L")`` integer luma (ITU-R 601-2),
    which is what the CIFAR10-S reference applies image by image."""
    r, g, b = images.int().unbind(1)
    luma = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)
    return luma.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


@dataset_builder("cifar10_skewed")
def cifar10_skewed(
    root: Path, rho: float, seed: int, mean: list[float], std: list[float], severity: int = 0
) -> DatasetSplits:
    if not 0 < rho <= 1:
        raise FairbenchError(f"rho must lie in (0, 1], got {rho}")
    if severity not in range(MAX_SEVERITY + 1):
        raise FairbenchError(f"severity must be an integer 0-{MAX_SEVERITY}, got {severity!r}")
    noise = torch.Generator().manual_seed(seed)  # the corruptions' noise: train split, then test

    def group0(images: torch.Tensor) -> torch.Tensor:
        return corrupt(images, severity, noise) if severity else grayscale(images)

    train_images, train_labels = read_split(root, TRAIN_BATCHES)
    test_images, test_labels = read_split(root, [TEST_BATCH])

    # Per class, round(rho * n_c) random images take the class's majority mode: grayscale for
    # classes 0-4, color for 5-9.
    generator = torch.Generator().manual_seed(seed)
    per_class = torch.bincount(train_labels, minlength=len(CLASSES))
    majority = rank_within(train_labels, generator) < torch.round(rho * per_class)[train_labels]
    train_groups = torch.where(majority == (train_labels < len(CLASSES) // 2), 0, 1)
    gray = train_groups == 0
    train_images[gray] = group0(train_images[gray])

    def split(images, labels, groups):
        return GroupDataset(
            images=images,
            labels=labels,
            groups=groups,
            class_names=CLASSES,
            group_names=GROUPS,
            mean=tuple(mean),
            std=tuple(std),
        )

    return DatasetSplits(
        name="",
        train=split(train_images, train_labels, train_groups),
        test=split(
            torch.cat([group0(test_images), test_images]),
            test_labels.repeat(2),
            torch.cat([torch.zeros_like(test_labels), torch.ones_like(test_labels)]),
        ),
        source=str(root / FOLDER),
    )
