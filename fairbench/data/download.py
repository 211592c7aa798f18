"""``download=true``: fetching the datasets whose hosts allow it, through torchvision.

torchvision knows the mirrors and the MD5 checksums of MNIST, Fashion-MNIST and CIFAR-10 and
unpacks them into exactly the layout fairbench reads, so fairbench keeps no list of its own. Files
the user already has are never checked against those checksums: only missing ones are fetched.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from ..core.errors import FairbenchError, unknown_choice

TORCHVISION_CLASSES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10"}


def fetch(source: str, root: Path) -> None:
    if source not in TORCHVISION_CLASSES:
        raise unknown_choice("downloadable source", source, TORCHVISION_CLASSES)
    import torchvision.datasets

    dataset_class = getattr(torchvision.datasets, TORCHVISION_CLASSES[source])
    try:
        root.mkdir(parents=True, exist_ok=True)
        # torchvision reports progress on stdout, which belongs to the card's JSON and the tables
        with contextlib.redirect_stdout(sys.stderr):
            dataset_class(str(root), train=True, download=True)
    except (OSError, RuntimeError) as e:
        raise FairbenchError(f"downloading {source} into {root} failed: {e}") from None
