"""Test-set contact: does a synthetic set hold images of the test split?

A distilled set must be made from training data only. For each synthetic image this finds its
nearest neighbour among train ∪ test in two spaces:

- pixel space: the root-mean-square difference of the images on the [0, 1] pixel scale;
- feature space: the cosine distance between embeddings of a fixed random ConvNet (seed 0,
  width 32, instance norm, feature maps average-pooled to 4x4), the same network on every
  machine, so a test image that was only slightly perturbed still lands next to its original.

An image *sits on* the test set in a space when its nearest test image is within that space's
threshold and strictly closer than every training image (a test image with an exact copy in the
training split is no evidence of contact). A set with any such image is flagged, with the count
and the distances.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from ..data import GroupDataset
from ..models import build_model

PIXEL_EPS = 0.01  # RMS difference on the [0, 1] scale: 1% of the pixel range
FEATURE_EPS = 1e-3  # cosine distance in the fixed random ConvNet's embedding
_CHUNK = 2048
_WIDTH = 32


@dataclass
class Contact:
    """Per space: how many synthetic images sit on test images, and the smallest test distance."""

    pixel_count: int
    pixel_min_test: float
    feature_count: int
    feature_min_test: float
    images: int

    @property
    def flagged(self) -> bool:
        return self.pixel_count > 0 or self.feature_count > 0

    def as_dict(self) -> dict:
        return asdict(self) | {"flagged": self.flagged}


def _pixel_distance(std: torch.Tensor):
    """RMS difference on the [0, 1] scale of normalised images (undoing each channel's std)."""

    def distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = (a * std).flatten(1), (b * std).flatten(1)
        return torch.cdist(a, b) / a.shape[1] ** 0.5

    return distance


def _cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (1 - a @ b.T).clamp_min(0)  # rows are unit vectors


def fixed_embedding(image_shape: tuple[int, int, int], device) -> torch.nn.Module:
    """The feature network: a ConvNet drawn with seed 0, whatever the global random state."""
    channels, size, _ = image_shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = build_model("convnet", channels, 2, size, width=_WIDTH, depth=3, norm="instance")
    return net.to(device).eval()


class ContactIndex:
    """A dataset's train and test splits, indexed once for the contact checks of many sets:
    the feature space's embeddings (pooled to 4x4 per channel) are computed here, once."""

    def __init__(self, train: GroupDataset, test: GroupDataset, device):
        self.train, self.test, self.device = train, test, device
        self.pixel = _pixel_distance(torch.tensor(train.std, device=device).view(1, -1, 1, 1))
        self.net = fixed_embedding(train.image_shape, device)
        self.features = {
            name: torch.cat(list(self._embed_batches(split))) for name, split in (("train", train), ("test", test))
        }

    @torch.no_grad()
    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.net.features(images)
        return torch.nn.functional.normalize(F.adaptive_avg_pool2d(maps, 4).flatten(1), dim=1)

    def _batches(self, split: GroupDataset):
        for start in range(0, len(split), _CHUNK):
            yield split.normalize(split.images[start : start + _CHUNK].to(self.device))

    def _embed_batches(self, split: GroupDataset):
        return (self._embed(batch) for batch in self._batches(split))

    @torch.no_grad()
    def contact(self, images: torch.Tensor, pixel_eps: float = PIXEL_EPS, feature_eps: float = FEATURE_EPS) -> Contact:
        """The contact of normalised synthetic ``images`` with the test split."""
        syn = images.to(self.device).float()
        features = self._embed(syn)
        pixel_train, pixel_test = (_nearest(syn, self._batches(s), self.pixel) for s in (self.train, self.test))
        feature_train, feature_test = (
            _nearest(features, self.features[s].split(_CHUNK), _cosine_distance) for s in ("train", "test")
        )
        on_pixels = (pixel_test <= pixel_eps) & (pixel_test < pixel_train)
        on_features = (feature_test <= feature_eps) & (feature_test < feature_train)
        return Contact(
            pixel_count=int(on_pixels.sum()),
            pixel_min_test=float(pixel_test.min()),
            feature_count=int(on_features.sum()),
            feature_min_test=float(feature_test.min()),
            images=len(syn),
        )


def _nearest(queries: torch.Tensor, batches, distance) -> torch.Tensor:
    """Each query's smallest distance to any row of the batches."""
    best = torch.full((len(queries),), float("inf"), device=queries.device)
    for batch in batches:
        best = torch.minimum(best, distance(queries, batch).amin(1))
    return best
