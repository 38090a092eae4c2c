"""Calibrate a checkpoint's ``inference.scale_gain`` on training seeds (never on validation seeds).

The shipped weights were trained with the photometric loss rendered at 64 px, while they are used
at 256 px and more; Gaussians sized for a 64 px render leave gaps between them at 256 (a dotted
pattern in the eval grids). ``Reconstructor(scale_gain=g)`` multiplies every predicted scale by
``g``. This measures target-view PSNR over procedural *training* items (seeds ``0 .. N-1``, every
5th a scene, as the training cache draws them; 4 inputs + 4 targets at 256x256 over white) for
each candidate gain, and reports the best. The gain goes into the checkpoint's ``config.json`` as
``{"inference": {"scale_gain": g}}`` by hand; the protocols then measure it on validation seeds.

    python -m bench.scale_gain --checkpoint checkpoints/default --json bench/results/scale_gain.json
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

from bench.results_io import write_json


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.scale_gain", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="checkpoints/default")
    p.add_argument("--items", type=int, default=20)
    p.add_argument("--gains", default="1,1.25,1.5,1.75,2,2.5,3")
    p.add_argument("--inputs", type=int, default=4, help="input views per item")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)

    import torch

    from recon.data.procedural.item import make_item
    from recon.eval.metrics import psnr
    from recon.inference import Reconstructor
    from renderer import render

    gains = [float(g) for g in a.gains.split(",")]
    rec = Reconstructor.from_pretrained(a.checkpoint, scale_gain=1.0)
    t0 = time.time()
    per_gain = {g: [] for g in gains}
    for seed in range(a.items):
        it = make_item(seed, a.inputs, 4, 256, scene=seed % 5 == 4, sdf_samples=0)
        g1 = rec.reconstruct(it.inputs).gaussians  # gain 1: scale the scales afterwards
        for g in gains:
            gg = dataclasses.replace(g1, scales=g1.scales * g)
            img = render(gg, it.targets.cameras, background=torch.ones(3)).rgb
            per_gain[g].append(float(psnr(img, it.targets.images)))
    means = {g: sum(v) / len(v) for g, v in per_gain.items()}
    best = max(means, key=means.get)
    result = {"benchmark": "scale_gain", "checkpoint": a.checkpoint, "seeds": f"0..{a.items - 1} (training)",
              "views": f"{a.inputs} inputs + 4 targets, 256x256, white background", "mean_psnr": {str(g): m for g, m in means.items()},
              "best_gain": best, "seconds": time.time() - t0, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    for g, m in means.items():
        print(f"gain {g:g}: {m:.3f} dB")
    print(f"best gain {best:g}")
    if a.json is not None:
        write_json(a.json, result)


if __name__ == "__main__":
    main()
