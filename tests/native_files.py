"""Tiny dataset files in their native formats, written by the tests themselves (no downloads)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def write_mnist(
    root: Path,
    per_class_train: int = 20,
    per_class_test: int = 10,
    folder: str = "MNIST",
    compress: bool = False,
    seed: int = 0,
    labels: tuple | None = None,
) -> Path:
    """idx files under ``root/<folder>/raw`` in torchvision's layout: digits are random blobs;
    ``labels`` = (train labels, test labels) replaces the shuffled ``per_class`` layout."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    for split, (prefix, per_class) in enumerate((("train", per_class_train), ("t10k", per_class_test))):
        if labels is None:
            split_labels = np.repeat(np.arange(10), per_class)
            rng.shuffle(split_labels)
        else:
            split_labels = np.asarray(labels[split])
        images = rng.integers(0, 256, (len(split_labels), 28, 28))
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", split_labels, compress)
    return raw


def write_cifar10(root: Path, per_class_train: int = 20, per_class_test: int = 4, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` with the five train batches and the test batch, random pixels."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    train_labels = np.repeat(np.arange(10), per_class_train)
    rng.shuffle(train_labels)
    batches = np.array_split(np.arange(len(train_labels)), 5)
    for i, index in enumerate(batches, start=1):
        _write_cifar_batch(folder / f"data_batch_{i}", train_labels[index], rng)
    _write_cifar_batch(folder / "test_batch", np.repeat(np.arange(10), per_class_test), rng)
    return folder


def _write_cifar_batch(path: Path, labels: np.ndarray, rng) -> None:
    data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    with open(path, "wb") as f:
        pickle.dump(
            {
                "batch_label": path.name,
                "labels": labels.tolist(),
                "data": data,
                "filenames": [f"{path.name}_{i}.png" for i in range(len(labels))],
            },
            f,
        )


def write_image(path: Path, rng, size: tuple[int, int], fmt: str = "JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, fmt)


CELEBA_ATTRIBUTES = ["5_o_Clock_Shadow", "Attractive", "Blond_Hair", "Male", "Young"]


def write_celeba(root: Path, cells: dict, seed: int = 0, size: tuple[int, int] = (178, 218)) -> Path:
    """``root/celeba`` with the official text files and JPEGs.

    ``cells[(partition, attractive, male)]`` is the number of images of that kind; the other
    attributes are random.
    """
    rng = np.random.default_rng(seed)
    folder = root / "celeba"
    rows, partitions = [], []
    for (partition, attractive, male), n in sorted(cells.items()):
        for _ in range(n):
            name = f"{len(rows) + 1:06d}.jpg"
            values = rng.choice([-1, 1], len(CELEBA_ATTRIBUTES))
            values[1], values[3] = (1 if attractive else -1), (1 if male else -1)
            rows.append(f"{name} " + " ".join(f"{v:2d}" for v in values))
            partitions.append(f"{name} {partition}")
            write_image(folder / "img_align_celeba" / name, rng, size)
    header = f"{len(rows)}\n{' '.join(CELEBA_ATTRIBUTES)}\n"
    (folder / "list_attr_celeba.txt").write_text(header + "\n".join(rows) + "\n")
    (folder / "list_eval_partition.txt").write_text("\n".join(partitions) + "\n")
    return folder


def write_utkface(
    root: Path, people: list[tuple[int, int, int]], extra_names: tuple[str, ...] = (), seed: int = 0
) -> Path:
    """``root/UTKFace`` with one 200x200 JPEG per (age, gender, race), named as in the release."""
    rng = np.random.default_rng(seed)
    folder = root / "UTKFace"
    for i, (age, gender, race) in enumerate(people):
        write_image(folder / f"{age}_{gender}_{race}_2017011{i:010d}.jpg.chip.jpg", rng, (200, 200))
    for name in extra_names:
        write_image(folder / name, rng, (200, 200))
    return folder


def write_bffhq(root: Path, align: dict, conflict: dict, test: dict, seed: int = 0) -> Path:
    """``root/bffhq`` with 128x128 PNGs; each dict maps (target, group) to a number of images."""
    rng = np.random.default_rng(seed)
    folder = root / "bffhq"
    count = 0
    for sub, cells in (("0.5pct/align", align), ("0.5pct/conflict", conflict), ("test", test)):
        for (target, group), n in cells.items():
            for _ in range(n):
                count += 1
                where = folder / sub / str(target) if sub != "test" else folder / sub
                write_image(where / f"{count}_{target}_{group}.png", rng, (128, 128), "PNG")
    return folder
