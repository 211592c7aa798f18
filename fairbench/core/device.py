"""Which torch device a run names, and whether this machine can use it: one module, so the plan,
the cell, the verifier and the benchmarks refuse and resolve a device the same way.

Where a run's cells execute elsewhere (``launcher=ray`` or ``slurm``), the driver only parses the
name (:func:`check_device` with ``here=False``): the GPU is checked by :func:`task_device`, where
the cell runs, which also maps ``cuda:N`` to the task's own GPU (a Ray task or a Slurm job sees
only the GPUs it was given, as ``cuda:0`` onwards).
"""

from __future__ import annotations

import os

import torch

from .errors import FairbenchError

SUPPORTED_DEVICES = "auto, cpu, cuda, cuda:N, mps"


def parse_device(name) -> torch.device | None:
    """The device ``name`` names (None for ``auto``), refusing a name torch does not know; checks
    nothing about this machine."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise FairbenchError(f"unknown device '{name}'; choose from: {SUPPORTED_DEVICES}") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise FairbenchError(f"device '{name}' is not supported; choose from: {SUPPORTED_DEVICES}")
    return device


def wants_gpu(name: str) -> bool:
    """Whether a task of a run on ``name`` asks its scheduler for a GPU: ``cuda*`` and ``auto``."""
    device = parse_device(name)
    return device is None or device.type == "cuda"


def check_device(name, *, here: bool = True, where: str = "torch") -> None:
    """Refuse, before anything runs, a device torch cannot use on this machine (``here=False``:
    only the name, for a driver whose cells run on other machines)."""
    device = parse_device(name)
    if device is None or not here:
        return
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise FairbenchError(f"device={name} asked for, but {where} sees no CUDA GPU; use device=cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise FairbenchError(
                f"device={name}: this machine has {torch.cuda.device_count()} CUDA GPUs "
                f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise FairbenchError(f"device={name} asked for, but torch sees no MPS device here; use device=cpu")


def resolve_device(name: str) -> torch.device:
    """``auto`` as CUDA where there is a GPU, else the device named, checked as the plan checks it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_device(name)
    return torch.device(name)


def task_device(name: str) -> torch.device:
    """The device of a cell running as a Ray task or a Slurm job, checked there.

    The task sees only the GPU its scheduler gave it, so ``cuda:N`` means that GPU (``cuda:0``
    in the task). A worker without the GPU it was promised fails with one line.
    """
    device = parse_device(name)
    if device is not None and device.type == "cuda":
        if not torch.cuda.is_available():
            raise FairbenchError(
                f"device={name} asked for, but this worker's torch sees no CUDA GPU (the scheduler gave the "
                f"task none, or the node has none); check ray.gpus_per_cell / slurm.gpus_per_node, or use device=cpu"
            )
        return torch.device("cuda:0")
    return resolve_device(name)


def configure_backends(device: torch.device) -> None:
    """Settings a cell's compute runs under: on CUDA, the device made current (so CUDA events,
    POT's backend and anything else that uses the current device time and run on this GPU, not
    GPU 0) and cuDNN's autotuner on (every shape of a cell is static). Recorded in the
    fingerprint (``core/provenance.py``)."""
    if device.type != "cuda":
        return
    if device.index is not None:
        torch.cuda.set_device(device)
    torch.backends.cudnn.benchmark = True


def to_device(tensor: torch.Tensor, device) -> torch.Tensor:
    """``tensor`` (on the host) copied to ``device``; to a GPU from pinned memory without blocking
    the host (a pageable copy waits for the device to catch up). A tensor already pinned is not
    copied again on the host, so callers pin a whole split once and pass its slices."""
    device = torch.device(device)
    if device.type != "cuda" or tensor.device.type != "cpu":
        return tensor.to(device)
    if not tensor.is_pinned():
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def pinned(tensor: torch.Tensor, device) -> torch.Tensor:
    """``tensor`` in page-locked host memory when it will be copied to a GPU in slices."""
    if torch.device(device).type == "cuda" and tensor.device.type == "cpu" and not tensor.is_pinned():
        return tensor.pin_memory()
    return tensor


def total_memory(device: torch.device) -> int | None:
    """Bytes of memory a cell on ``device`` can use, where torch can tell (a CUDA GPU)."""
    return torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else None


def free_memory(device) -> int | None:
    """Bytes ``device`` can give now (on the CPU the kernel's MemAvailable, which counts the page
    cache it would drop); None where that cannot be asked."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
