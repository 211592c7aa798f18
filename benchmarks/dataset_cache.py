"""First load vs cached load of an image-folder dataset, measured side by side in one process.

    python benchmarks/dataset_cache.py [--images 3000] [--repeats 3]

Writes CelebA-style files (178x218 JPEGs, the official text files) to a temporary folder and
points FAIRBENCH_CACHE at a temporary cache. Each repeat empties the cache and times
``load_dataset("celeba", ...)`` twice: the first load decodes, center-crops and resizes every JPEG
and writes the cache; the second reads the cache. Prints the medians and their ratio. The JPEGs
were just written, so they sit in the OS page cache: a first load from a cold disk is slower still.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ATTRIBUTES = ["Attractive", "Male", "Smiling"]


def write_celeba_like(root: Path, n: int, seed: int = 0) -> None:
    """Smooth images (a coarse random grid, upsampled, plus grain), so that the JPEGs have about the
    size and decoding cost of real face crops rather than those of white noise."""
    rng = np.random.default_rng(seed)
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    attr_rows, partition_rows = [], []
    for i in range(1, n + 1):
        name = f"{i:06d}.jpg"
        coarse = Image.fromarray(rng.integers(0, 256, (11, 9, 3), dtype=np.uint8)).resize((178, 218), Image.BICUBIC)
        grain = rng.integers(-8, 9, (218, 178, 3))
        pixels = np.clip(np.asarray(coarse, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / "img_align_celeba" / name, quality=90)
        values = rng.choice([-1, 1], len(ATTRIBUTES))
        attr_rows.append(name + "".join(f" {v:2d}" for v in values))
        partition_rows.append(f"{name} {0 if i % 10 < 8 else 1 if i % 10 == 8 else 2}")
    (folder / "list_attr_celeba.txt").write_text(f"{n}\n{' '.join(ATTRIBUTES)}\n" + "\n".join(attr_rows) + "\n")
    (folder / "list_eval_partition.txt").write_text("\n".join(partition_rows) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        os.environ["FAIRBENCH_CACHE"] = str(scratch / "cache")
        from fairbench.data import load_dataset
        from fairbench.data.images import DECODE_THREADS

        start = time.perf_counter()
        write_celeba_like(scratch / "data", args.images)
        print(f"wrote {args.images} CelebA-style JPEGs in {time.perf_counter() - start:.1f} s")

        first_s, cached_s = [], []
        for _ in range(args.repeats):
            shutil.rmtree(scratch / "cache", ignore_errors=True)
            start = time.perf_counter()
            first = load_dataset("celeba", scratch / "data")
            first_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            cached = load_dataset("celeba", scratch / "data")
            cached_s.append(time.perf_counter() - start)
            assert (first.train.images == cached.train.images).all()
            assert (first.test.images == cached.test.images).all()

        first_median, cached_median = statistics.median(first_s), statistics.median(cached_s)
        print(
            f"decode threads: {DECODE_THREADS}; splits: train {len(first.train)}, balanced test "
            f"{len(first.test)} (decoded: the train and test partitions)"
        )
        print(
            f"first load (decode + crop + resize + write cache): median {first_median:.3f} s of "
            f"{', '.join(f'{t:.3f}' for t in first_s)}"
        )
        print(
            f"cached load:                                      median {cached_median:.3f} s of "
            f"{', '.join(f'{t:.3f}' for t in cached_s)}"
        )
        print(f"speed-up: {first_median / cached_median:.1f}x")


if __name__ == "__main__":
    main()
