"""``idc``: gradient matching with multi-formation (Kim et al., ICML 2022).

Each stored synthetic image is a ``factor`` × ``factor`` mosaic of smaller images; training
decodes it into ``factor²`` full-size images (each tile upsampled), so the same storage budget
holds ``factor²`` times more training images. The stored images start as mosaics of real
images of their class (``init: mosaic``, IDC's). Matching and loops are DC's (``dc.py``,
``bilevel.py``), on the decoded images.

COBRA's ``train_idc.py`` differs in two details, each a setting its suites take: its stored images
start as whole real images, one each (``init: whole``: the decoded images start as zoomed-in tiles
of them), and it upsamples tiles with ``align_corners=True`` (``align_corners: true``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.errors import FairbenchError
from ..data import GroupDataset
from .dc import GradientMatching
from .sampling import ClassSampler


class MultiFormation(GradientMatching):
    name = "idc"
    description = "gradient matching with multi-formation: each stored image decodes into factor² images"

    @property
    def factor(self) -> int:
        return self.hparams["factor"]

    INITS = ("mosaic", "whole")

    @classmethod
    def check_hparams(cls, method_id: str, hparams: dict) -> None:
        if hparams["init"] not in cls.INITS:
            raise FairbenchError(
                f"method '{method_id}': init={hparams['init']!r} is invalid; choose from: {', '.join(cls.INITS)}"
            )

    def real_images_per_class(self, ipc: int) -> int:
        return ipc * self.factor**2 if self.hparams["init"] == "mosaic" else ipc

    def check_data(self, train: GroupDataset, ipc: int) -> None:
        f = self.factor
        _, height, width = train.image_shape
        if f < 1 or height % f or width % f:
            raise FairbenchError(
                f"{self.method_id}: factor={f} must be a positive divisor of the image size {height}x{width}"
            )
        super().check_data(train, ipc)

    def initial_images(self, train: GroupDataset, ipc: int, sampler: ClassSampler):
        f = self.factor
        channels, height, width = train.image_shape
        self.check_data(train, ipc)
        if self.hparams["init"] == "whole":  # one real image per stored image, as every base starts
            return super().initial_images(train, ipc, sampler)
        index = sampler.sample_exact(ipc * f * f)
        small = F.interpolate(
            train.normalize(train.images[index]),
            size=(height // f, width // f),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        mosaic = small.view(-1, f, f, channels, height // f, width // f).permute(0, 3, 1, 4, 2, 5)
        return mosaic.reshape(-1, channels, height, width), train.labels[index][:: f * f]

    def decode(self, stored: torch.Tensor) -> torch.Tensor:
        f = self.factor
        n, channels, height, width = stored.shape
        tiles = stored.view(n, channels, f, height // f, f, width // f).permute(0, 2, 4, 1, 3, 5)
        tiles = tiles.reshape(n * f * f, channels, height // f, width // f)
        return F.interpolate(tiles, size=(height, width), mode="bilinear", align_corners=self.hparams["align_corners"])

    def decode_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return labels.repeat_interleave(self.factor**2)

    def extras(self, ipc: int) -> dict:
        return {"stored_per_class": ipc, "factor": self.factor}
