"""MTT's expert trajectories: networks trained on the real data, a parameter snapshot per epoch.

Trajectories are expensive and shared: every MTT cell with the same training split, network and
expert settings uses the same files, made once by ``fairbench prepare`` (alias ``fairbench experts``) and cached under
``experts_dir/<dataset>-<digest>/expert_<k>.pt``. The digest covers everything that shapes the
training, including each sample's loss weight:

- ``mtt`` trains experts with the plain mean loss (MTT);
- ``mtt+fairdd`` and ``mtt+cobra`` train them with a group-balanced loss, each sample weighted by
  its aggregation's weight from ``matching_terms`` over the whole training split (FairDD: each
  group of a class counts equally and the groups' terms add up; COBRA: each class is the uniform
  mean of its groups), normalised to mean one. No public fair MTT exists; FairDD notes it would
  need group-aware experts, and this is the smallest change that gives them. Where every class
  has the same number of groups the two weightings coincide, so do the digests, and the two
  variants share their experts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..core.atomic import atomic_path, check_writable, why_not_written
from ..core.errors import FairbenchError, first_line
from ..data import GroupDataset
from ..training.augment import DSA
from ..training.train import train_classifier
from .aggregation import matching_terms

EXPERT_SETTINGS = ("trajectory_epochs", "expert_lr", "expert_batch", "expert_dsa")


def balance_weights(aggregation: str, train: GroupDataset) -> torch.Tensor:
    """Per-sample loss weights of the experts for an MTT variant, mean one.

    Computed on the CPU in double precision whatever the device, so the cache digest they enter is
    the same for ``fairbench experts`` and for every run that looks the experts up.
    """
    if aggregation == "vanilla":  # MTT's own experts: the plain mean loss
        return torch.ones(len(train), dtype=torch.float64)
    labels, groups = train.labels.cpu(), train.groups.cpu()
    weight = matching_terms(aggregation, labels, groups, train.num_classes, train.num_groups).weight.double()
    return weight / weight.mean()


def expert_folder(root: Path, provenance: dict, hparams: dict, weights: torch.Tensor) -> Path:
    """The cache folder of the trajectories a cell needs: named by what would produce them."""
    digest = hashlib.sha1(
        json.dumps(
            {"provenance": provenance, "settings": {k: hparams[k] for k in EXPERT_SETTINGS}},
            sort_keys=True,
            default=str,
        ).encode()
    )
    digest.update(weights.numpy().round(6).tobytes())
    return Path(root) / f"{provenance['dataset']}-{digest.hexdigest()[:12]}"


def expert_paths(folder: Path, count: int) -> list[Path]:
    return [folder / f"expert_{k}.pt" for k in range(count)]


def missing_experts(folder: Path, count: int) -> list[Path]:
    return [p for p in expert_paths(folder, count) if not p.is_file()]


def check_experts(folder: Path, count: int, method_id: str, dataset: str) -> None:
    """A clear error, before anything runs, when a cell's trajectories have not been made."""
    missing = missing_experts(folder, count)
    if missing:
        raise FairbenchError(
            f"{method_id} needs {count} expert trajectories in {folder} and {len(missing)} are missing; make "
            f"them with `fairbench prepare` followed by the same suite= and key=value settings as this run "
            f"(or `fairbench experts {dataset}` with them)"
        )


def _load_expert(path: Path, device) -> torch.Tensor:
    """One trajectory; an unreadable file is set aside as ``*.corrupt`` and named, so that
    the next run's preparation step (or ``fairbench prepare``) makes it again instead of every run
    failing on it."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # torch.load raises RuntimeError, EOFError, UnpicklingError, ...
        aside = path.with_name(path.name + ".corrupt")
        path.replace(aside)
        raise FairbenchError(
            f"{path}: not a readable expert trajectory ({first_line(error)}); set aside as "
            f"{aside.name}: rerun the same command, whose preparation step makes it again"
        ) from None


def load_experts(folder: Path, count: int, device) -> torch.Tensor:
    """(count, epochs + 1, P) flat parameters of the first ``count`` trajectories."""
    return torch.stack([_load_expert(p, device) for p in expert_paths(folder, count)])


def train_expert(net: nn.Module, train: GroupDataset, weights: torch.Tensor, hparams: dict) -> torch.Tensor:
    """One trajectory: the flat parameters at initialisation and after each epoch."""
    snapshots = [nn.utils.parameters_to_vector(net.parameters()).detach().clone()]

    def snapshot():
        snapshots.append(nn.utils.parameters_to_vector(net.parameters()).detach().clone())

    train_classifier(
        net,
        train.images,  # uint8: each batch is normalised when drawn, not the whole split at once
        train.labels,
        epochs=hparams["trajectory_epochs"],
        lr=hparams["expert_lr"],
        momentum=0.0,
        weight_decay=0.0,
        batch_size=hparams["expert_batch"],
        augment=DSA() if hparams["expert_dsa"] else None,
        schedule="constant",
        sample_weight=weights.to(train.labels.device, torch.float32),
        on_epoch=snapshot,
        batch_transform=train.normalize,
    )
    return torch.stack(snapshots)


def make_experts(
    folder: Path,
    count: int,
    train: GroupDataset,
    weights: torch.Tensor,
    hparams: dict,
    make_net: Callable[[], nn.Module],
    device,
    progress=lambda it, **_: it,
) -> int:
    """Train the trajectories missing from ``folder`` (expert k with seed k); return how many.

    A folder that already holds them all is only read, so a shared read-only cache serves every
    run; one that must take new files is proved writable before the first expert trains."""
    todo = missing_experts(folder, count)
    if todo:
        check_writable(folder, "experts_dir")
    for path in progress(todo, desc=f"experts {folder.name}"):
        torch.manual_seed(int(path.stem.split("_")[1]))
        trajectory = train_expert(make_net().to(device), train, weights, hparams)
        try:
            with atomic_path(path) as tmp:  # a kill or a full disk never leaves a truncated expert
                torch.save(trajectory.cpu(), tmp)
        except (OSError, RuntimeError) as error:  # torch.save's zip writer raises RuntimeError on a full disk
            why = why_not_written(error) if isinstance(error, OSError) else first_line(error)
            raise FairbenchError(
                f"cannot write expert trajectory {path}: {why}; the "
                f"{path.parent} folder keeps every expert written before it"
            ) from None
    return len(todo)
