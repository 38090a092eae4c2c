"""torchrun entry of the DDP test: ``python -m torch.distributed.run --standalone --nproc_per_node=2
-m tests.recon.train.ddp_worker CONFIG OUT_DIR``.

Each rank trains ``CONFIG`` (on ``common.mixed_items()``) for the steps given by ``--steps`` and
writes ``OUT_DIR/rank{r}.json``: digests of its weights before and after, the sum of its final
weights, and the plan (items, posed or not, which micro-batches had SDF samples) of every step.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from recon.train.config import TrainConfig
from recon.train.trainer import Trainer
from tests.recon.train.common import has_sdf, mixed_items, state_digest


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=3)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = TrainConfig.load(a.config)
    tr = Trainer(cfg, device="cpu", dataset=mixed_items())
    init = state_digest(tr.model)
    plans = []
    for s in range(a.steps):
        pl = tr._step_plan(s)
        per = -(-cfg.batch_size // cfg.grad_accum)
        micro = [list(pl.indices[m * per:(m + 1) * per]) for m in range(cfg.grad_accum)]
        plans.append({"unposed": pl.unposed, "n_inputs": pl.n_inputs, "indices": list(pl.indices),
                      "micro_sdf": [any(has_sdf(i) for i in mb) for mb in micro]})
    tr.fit(max_steps=a.steps)
    rec = {"rank": tr.rank, "world": tr.world, "step": tr.step, "init": init, "final": state_digest(tr.model),
           "ema": state_digest(tr.ema), "sum": float(sum(p.double().sum() for p in tr.model.parameters())),
           "plans": plans}
    tr.close()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".rank{tr.rank}.json.tmp{os.getpid()}"
    tmp.write_text(json.dumps(rec, indent=1))
    os.replace(tmp, out / f"rank{rec['rank']}.json")


if __name__ == "__main__":
    main()
