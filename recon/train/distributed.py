"""The processes of one training run: which rank this is, on which device, and the collectives the
training loop needs (wrapping the model in DDP, agreeing on when to stop).

Under ``torchrun`` (``WORLD_SIZE > 1``) a ``ProcessGroup`` joins the default process group (gloo on
CPU, NCCL on CUDA) and wraps the model in DDP with ``find_unused_parameters=True``, because the
heads a step runs differ between steps and ranks (unposed steps run the pointmap head only; the
triplane head runs only on ranks whose items have SDF samples). A single process needs none of it:
every method then does the single-process thing.

torchrun describes the launch in the environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``); this
module is the only one in ``recon.train`` that reads it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class ProcessGroup:
    """This process's place in the run: ``world`` processes, this one ``rank`` (0 saves, logs and
    evaluates), training on ``device``. ``owns_group``: this object joined the process group (and
    ``close`` leaves it); False when there is none or the caller had joined it already."""

    world: int
    rank: int
    device: torch.device
    owns_group: bool = False

    @classmethod
    def join(cls, device: str | torch.device | None = None) -> ProcessGroup:
        """Read the launch from torchrun's environment, pick the device (default: this rank's local
        GPU when CUDA is available, else the CPU) and join the process group when ``WORLD_SIZE > 1``."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        if device is None:
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"
        device = torch.device(device)
        if device.type == "cuda" and device.index is not None:
            torch.cuda.set_device(device)
        owns = False
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            owns = True
        return cls(world, rank, device, owns)

    def wrap(self, model: torch.nn.Module) -> torch.nn.parallel.DistributedDataParallel | None:
        """``model`` in DDP (gradients averaged over ranks), or None for a single process."""
        if self.world == 1:
            return None
        return torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)

    def agree(self, stop: bool, loss: float) -> tuple[bool, float]:
        """All ranks' verdict: stop if any rank wants to, and the loss averaged over ranks. Every rank
        calls it after every step, so no rank is left waiting in a collective when another stops."""
        if self.world == 1:
            return stop, loss
        t = torch.tensor([float(stop), loss], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return bool(t[0] > 0), float(t[1]) / self.world

    def close(self) -> None:
        """Leave the process group if ``join`` joined it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False
