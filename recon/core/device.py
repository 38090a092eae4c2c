"""Devices: the ``--device`` rule every command shares, and the machine description results record."""

from __future__ import annotations

import os
import platform

import torch

from recon.core.errors import ReconError


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is a ``ReconError``."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ReconError("device cuda: no CUDA device is available")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ReconError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def machine_info(device: torch.device) -> dict:
    info = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        # wall-clock budgets (optimize-30s) buy fewer steps on a loaded machine: record the load
        "load_avg_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
