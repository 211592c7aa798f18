"""Which torch device a run names, and whether this machine can use it: one module, so the plan,
the cell, the verifier and the benchmarks refuse and resolve a device the same way."""

from __future__ import annotations

import torch

from .errors import FairbenchError

SUPPORTED_DEVICES = "auto, cpu, cuda, cuda:N, mps"


def check_device(name) -> None:
    """Refuse, before anything runs, a device torch cannot use on this machine."""
    if name == "auto":
        return
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise FairbenchError(f"unknown device '{name}'; choose from: {SUPPORTED_DEVICES}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise FairbenchError(f"device={name} asked for, but torch sees no CUDA GPU; use device=cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise FairbenchError(
                f"device={name}: this machine has {torch.cuda.device_count()} CUDA GPUs "
                f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise FairbenchError(f"device={name} asked for, but torch sees no MPS device here; use device=cpu")
    elif device.type != "cpu":
        raise FairbenchError(f"device '{name}' is not supported; choose from: {SUPPORTED_DEVICES}")


def resolve_device(name: str) -> torch.device:
    """``auto`` as CUDA where there is a GPU, else the device named, checked as the plan checks it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_device(name)
    return torch.device(name)
