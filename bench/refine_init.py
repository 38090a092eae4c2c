"""Does the feed-forward model make a better start for per-scene optimisation than the random ball?

Runs the optimisation baseline (``recon.baselines.optimize``, the recipe of ``optimize-30s``) at the
same wall-clock budget from three starts, under one protocol's scoring (``run_protocol``):

- ``scratch``: the baseline's own start (random points in the ball the cameras see, carved by masks);
- ``model``: the shipped model's Gaussians (``Reconstructor.reconstruct``), every one kept;
- ``model-K``: K of the model's Gaussians drawn in proportion to opacity, scales grown by
  sqrt(N / K) so they still cover the surface (fewer Gaussians buy more steps on a CPU).

The model's time counts against the budget (the optimiser's clock starts before the model runs), so
every row spends the same wall-clock time. The rows are only comparable on an otherwise idle
machine: the budget buys fewer steps under load (``iterations`` and the load average are recorded).

    python -m bench.refine_init --protocol lego-sparse-8 --budget 30 --keep 4000,10000 \
        --json bench/results/refine_init.json
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.results_io import write_json


class RefineFromModel:
    """``recon.core.types.Method``: the model's Gaussians (optionally ``keep`` of them) refined by
    the optimisation baseline for what is left of ``budget_s``."""

    def __init__(self, budget_s: float, keep: int | None = None, checkpoint: str | Path | None = None, seed: int = 0):
        from recon.baselines.optimize import OptimizeBaseline
        from recon.eval.model_methods import DEFAULT_CHECKPOINT
        from recon.inference import Reconstructor

        self.model = Reconstructor.from_pretrained(checkpoint or DEFAULT_CHECKPOINT)
        self.optimizer = OptimizeBaseline(budget_s)
        self.keep, self.seed = keep, seed
        self.name = f"model-{keep}" if keep else "model"

    def reconstruct(self, inputs):
        import torch

        t0 = time.perf_counter()
        start = self.model.reconstruct(inputs.to("cpu")).gaussians
        n = len(start)
        if self.keep and n > self.keep:
            idx = torch.multinomial(start.opacities.float(), self.keep, generator=torch.Generator().manual_seed(self.seed))
            start = start[idx]
            start.scales = start.scales * (n / self.keep) ** 0.5
        rec = self.optimizer.reconstruct(inputs, init=start.to(inputs.images.device), t0=t0)
        rec.info["start_gaussians"] = len(start)
        rec.info["model_gaussians"] = n
        return rec


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.refine_init", description=__doc__.splitlines()[0])
    p.add_argument("--protocol", default="lego-sparse-8")
    p.add_argument("--limit", type=int, default=None, help="first N items of the protocol")
    p.add_argument("--budget", type=float, default=30.0, help="wall-clock seconds per item, model included")
    p.add_argument("--keep", default="4000", help="comma-separated K for the model-K rows ('' for none)")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)

    import torch

    from recon.baselines.optimize import OptimizeBaseline
    from recon.eval.protocols import get_protocol
    from recon.eval.runner import run_protocol

    methods = [OptimizeBaseline(a.budget), RefineFromModel(a.budget)]
    methods += [RefineFromModel(a.budget, keep=int(k)) for k in a.keep.split(",") if k.strip()]
    names = ["scratch"] + [m.name for m in methods[1:]]
    rows = {}
    for name, method in zip(names, methods):
        r = run_protocol(get_protocol(a.protocol), method, limit=a.limit)
        items = r["items"]
        m = r["means"]
        rows[name] = {"psnr": m["psnr"], "ssim": m["ssim"], "psnr_fg": m.get("psnr_fg"),
                      "iterations": sum(it["info"]["iterations"] for it in items) / len(items),
                      "gaussians": sum(it["gaussians"] for it in items) / len(items),
                      "seconds_method": m["seconds_method"], "load_avg_1_5_15_min": r["machine"]["load_avg_1_5_15_min"]}
        print(f"{name:12s} psnr {m['psnr']:.2f}  ssim {m['ssim']:.3f}  iterations {rows[name]['iterations']:.0f}"
              f"  gaussians {rows[name]['gaussians']:.0f}", flush=True)
    result = {"benchmark": "refine_init", "protocol": a.protocol, "items": len(items), "budget_s": a.budget,
              "rows": rows, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    if a.json is not None:
        write_json(a.json, result)


if __name__ == "__main__":
    main()
