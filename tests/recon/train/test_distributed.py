"""A single process needs no process group: ``ProcessGroup`` then joins nothing, wraps nothing and
agrees with itself (the two-rank case is ``test_ddp``)."""

from __future__ import annotations

import torch
import torch.distributed as dist

from recon.train.distributed import ProcessGroup


def test_single_process_joins_nothing(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    group = ProcessGroup.join("cpu")
    assert (group.world, group.rank, group.device, group.owns_group) == (1, 0, torch.device("cpu"), False)
    assert group.wrap(torch.nn.Linear(2, 2)) is None
    assert group.agree(True, 0.25) == (True, 0.25) and group.agree(False, 1.5) == (False, 1.5)
    group.close()
    assert not dist.is_initialized()
