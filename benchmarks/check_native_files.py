"""Writes a small copy of every benchmark in its native format, made independently of the tests,
loads each through ``fairbench data NAME data_root=ROOT --json`` and checks the counts per
(class, group) cell against counts worked out here from what was written.

    python benchmarks/check_native_files.py [--root DIR] [--text]

The files differ from the test helpers' on purpose: idx headers packed by numpy, Fashion-MNIST
gzipped, CIFAR-10 batches as protocol-2 pickles with bytes keys (as the Python 2 originals load),
CelebA text files with the official 40 attribute names and column alignment, JPEGs and PNGs
encoded by torchvision.io (libjpeg/libpng) instead of Pillow, UTKFace names with the release's
``.jpg.chip.jpg`` suffix and its known malformed names. Exit code 1 on any mismatch.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torchvision.io

REPO = Path(__file__).resolve().parent.parent
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
RNG = np.random.default_rng(2024)


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return np.array([magic, *array.shape], dtype=">i4").tobytes() + array.astype(np.uint8).tobytes()


def digit_images(labels: np.ndarray) -> np.ndarray:
    """A bright bar whose position depends on the class, over a dim background."""
    images = RNG.integers(0, 60, (len(labels), 28, 28))
    for i, c in enumerate(labels):
        images[i, 4 + 2 * c : 8 + 2 * c, 6:22] = 230
    return images


def write_idx_pair(raw: Path, prefix: str, labels: np.ndarray, compress: bool) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for kind, payload in (
        ("images-idx3", idx_bytes(digit_images(labels), 0x0803)),
        ("labels-idx1", idx_bytes(labels, 0x0801)),
    ):
        name = raw / f"{prefix}-{kind}-ubyte"
        if compress:
            with gzip.open(f"{name}.gz", "wb", compresslevel=9) as f:
                f.write(payload)
        else:
            name.write_bytes(payload)


def colored_expectation(train_per_class: list[int], test_per_class: list[int], rho: float) -> dict:
    """The C-MNIST rule worked out by hand: round(rho n) keep color c, the rest spread over the
    other nine colors as evenly as possible, the first colors (in order, skipping c) taking one more."""

    def counts(per_class, share):
        table = np.zeros((10, 10), dtype=int)
        for c, n in enumerate(per_class):
            major = round(share * n)
            table[c, c] = major
            others = [k for k in range(10) if k != c]
            for j, k in enumerate(others):
                table[c, k] = (n - major) // 9 + (1 if j < (n - major) % 9 else 0)
        return table.tolist()

    return {"train": counts(train_per_class, rho), "test": counts(test_per_class, 0.1)}


def write_digits(root: Path, folder: str, compress: bool) -> dict:
    train_per_class = [30 + 3 * c for c in range(10)]
    test_per_class = [10] * 10
    for prefix, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = np.repeat(np.arange(10), per_class)
        RNG.shuffle(labels)
        write_idx_pair(root / folder / "raw", prefix, labels, compress)
    return colored_expectation(train_per_class, test_per_class, 0.9)


def write_cifar(root: Path) -> dict:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_per_class = [20 + 2 * c for c in range(10)]
    labels = np.repeat(np.arange(10), train_per_class)
    RNG.shuffle(labels)
    for i, part in enumerate(np.array_split(labels, 5), start=1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump(
                {
                    b"batch_label": b"training batch",
                    b"labels": [int(v) for v in part],
                    b"data": RNG.integers(0, 256, (len(part), 3072), dtype=np.uint8),
                },
                f,
                protocol=2,
            )
    test_labels = np.tile(np.arange(10), 5)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(
            {b"labels": [int(v) for v in test_labels], b"data": RNG.integers(0, 256, (50, 3072), dtype=np.uint8)},
            f,
            protocol=2,
        )
    train = [
        [round(0.9 * n), n - round(0.9 * n)] if c < 5 else [n - round(0.9 * n), round(0.9 * n)]
        for c, n in enumerate(train_per_class)
    ]
    return {"train": train, "test": [[5, 5]] * 10}


def save_jpeg(path: Path, height: int, width: int) -> None:
    pixels = torch.from_numpy(RNG.integers(0, 256, (3, height, width), dtype=np.uint8))
    torchvision.io.write_jpeg(pixels, str(path), quality=85)


def write_celeba(root: Path) -> dict:
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    n = 90
    values = RNG.choice([-1, 1], (n, len(CELEBA_ATTRIBUTES)), p=[0.6, 0.4])
    partition = RNG.choice([0, 1, 2], n, p=[0.6, 0.1, 0.3])
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for name in names:
        save_jpeg(folder / "img_align_celeba" / name, 218, 178)
    rows = [name + " " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, values)]
    header = f"{n}\n" + " ".join(CELEBA_ATTRIBUTES) + " \n"  # the official header ends in a space
    (folder / "list_attr_celeba.txt").write_text(header + "\n".join(rows) + "\n")
    (folder / "list_eval_partition.txt").write_text("".join(f"{a} {p}\n" for a, p in zip(names, partition)))
    target, group = CELEBA_ATTRIBUTES.index("Attractive"), CELEBA_ATTRIBUTES.index("Male")

    def cells(mask):
        return [
            [int(np.sum(mask & ((values[:, target] > 0) == t) & ((values[:, group] > 0) == g))) for g in (0, 1)]
            for t in (0, 1)
        ]

    smallest = min(min(row) for row in cells(partition == 2))
    return {"train": cells(partition == 0), "test": [[smallest, smallest], [smallest, smallest]]}


def write_utkface(root: Path, test_per_cell: int) -> dict:
    folder = root / "UTKFace"
    folder.mkdir(parents=True)
    table = np.zeros((3, 4), dtype=int)
    for i in range(160):
        age, gender, race = int(RNG.integers(1, 90)), int(RNG.integers(0, 2)), int(RNG.integers(0, 5))
        save_jpeg(folder / f"{age}_{gender}_{race}_2017011{i:010d}.jpg.chip.jpg", 200, 200)
        if race != 4:
            table[0 if age < 20 else 1 if age < 40 else 2, race] += 1
    for broken in (
        "39_1_20170116174525125.jpg.chip.jpg",
        "61_1_20170109142408075.jpg.chip.jpg",
        "61_3_20170109150557335.jpg.chip.jpg",
    ):
        save_jpeg(folder / broken, 200, 200)
    per_cell = min(test_per_cell, int(table.min()))
    return {"train": (table - per_cell).tolist(), "test": [[per_cell] * 4] * 3}


def write_bffhq(root: Path) -> dict:
    folder = root / "bffhq"
    train, test = np.zeros((2, 2), dtype=int), np.zeros((2, 2), dtype=int)
    plan = [
        ("0.5pct/align", 0, 0, 20),
        ("0.5pct/align", 1, 1, 18),
        ("0.5pct/conflict", 0, 1, 2),
        ("0.5pct/conflict", 1, 0, 1),
        ("test", 0, 0, 4),
        ("test", 0, 1, 4),
        ("test", 1, 0, 4),
        ("test", 1, 1, 4),
    ]
    for i, (where, target, group, n) in enumerate(plan):
        sub = folder / where / (str(target) if where != "test" else "")
        sub.mkdir(parents=True, exist_ok=True)
        for j in range(n):
            pixels = torch.from_numpy(RNG.integers(0, 256, (3, 128, 128), dtype=np.uint8))
            torchvision.io.write_png(pixels, str(sub / f"{i:02d}{j:03d}_{target}_{group}.png"))
        (test if where == "test" else train)[target, group] += n
    return {"train": train.tolist(), "test": test.tolist()}


def write_all(root: Path) -> dict[str, tuple[list[str], dict]]:
    """Dataset name → (extra settings, expected counts per split)."""
    mnist = write_digits(root, "MNIST", compress=False)
    fashion = write_digits(root, "FashionMNIST", compress=True)
    return {
        "cmnist": ([], mnist),
        "cmnist-bg": ([], mnist),
        "cfmnist": ([], fashion),
        "cfmnist-bg": ([], fashion),
        "cifar10s": ([], write_cifar(root)),
        "celeba": ([], write_celeba(root)),
        "utkface": (["test_per_cell=3"], write_utkface(root, 3)),
        "bffhq": ([], write_bffhq(root)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="write the files here and keep them (default: a temporary folder)")
    parser.add_argument("--text", action="store_true", help="also print each text card")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="fairbench-native-"))
    expected = write_all(root)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "FAIRBENCH_CACHE": os.environ.get("FAIRBENCH_CACHE") or str(root / ".cache"),
    }
    failures = 0
    for name, (settings, counts) in expected.items():
        command = [sys.executable, "-m", "fairbench", "data", name, f"data_root={root}", *settings]
        proc = subprocess.run([*command, "--json"], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(f"{name}: FAILED to load: {proc.stderr.strip()}")
            failures += 1
            continue
        card = json.loads(proc.stdout)
        got = {split: card["splits"][split]["counts"] for split in ("train", "test")}
        verdict = "counts match" if got == counts else f"MISMATCH, expected {counts}"
        failures += got != counts
        print(f"$ fairbench data {name} data_root=ROOT {' '.join(settings)} --json   # {verdict}".replace("  ", " "))
        print(proc.stdout.strip())
        if proc.stderr.strip():
            print(f"(stderr) {proc.stderr.strip()}")
        if args.text:
            print(subprocess.run(command, capture_output=True, text=True, env=env).stdout)
    print(f"\n{len(expected) - failures} of {len(expected)} datasets load with the expected counts; files in {root}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
