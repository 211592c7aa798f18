"""Where a record was measured: the device, the machine's fingerprint, the code's commit.

CPU runs are bit-for-bit only on one machine (kernels, thread counts and library builds change the
order of float sums), so a record carries enough of its machine to tell whether a rerun elsewhere
may be compared exactly (``fairbench regress``) or only statistically.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import torch


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return str(device)


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The checkout's commit (``-dirty`` with local changes), or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=40"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _onednn_version() -> str | None:
    """oneDNN's version as torch's build reports it (the CPU convolution kernels)."""
    found = re.search(r"(?:oneDNN|MKL-DNN) v?([\d.]+)", torch.__config__.show())
    return found.group(1) if found else None


def cuda_settings() -> dict:
    """The backend flags that change a CUDA run's numbers: cuDNN's algorithm choice (autotuned
    when ``benchmark``, fixed when ``deterministic``) and TF32 for matmuls and convolutions."""
    return {
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
    }


def machine_fingerprint(device: torch.device) -> dict:
    """What decides whether two runs of one protocol may agree bit for bit (on CUDA also the
    backend flags of :func:`cuda_settings`; a CPU run uses none of them)."""
    cuda = device.type == "cuda"
    return {
        "device_type": device.type,
        "cpu": _cpu_model(),
        "gpu": torch.cuda.get_device_name(device) if cuda else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "onednn": _onednn_version(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled() or not cuda,
        "os": platform.system(),
        "cores": os.cpu_count(),
        **(cuda_settings() if cuda else {}),
    }
