"""Silhouette carving on *training* seeds: target PSNR (whole image and over the target masks) for
carving off and for each mask threshold (``Reconstructor(carve_threshold=...)``).

Same items as ``bench.scale_gain`` (seeds ``0 .. N-1``, every 5th a scene; scenes have no masks and
are left out here), 4+4 views at 256x256 over white, the checkpoint's own scale gain.

    python -m bench.carve --json bench/results/carve.json
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.results_io import write_json


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.carve", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="checkpoints/default")
    p.add_argument("--items", type=int, default=20, help="seeds 0..N-1 (the objects among them)")
    p.add_argument("--inputs", type=int, default=4, help="input views per item")
    p.add_argument("--thresholds", default="0.5,0.25")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)

    import torch

    from recon.data.procedural.item import make_item
    from recon.eval.metrics import psnr
    from recon.inference import Reconstructor
    from renderer import render

    settings = {"off": {"carve_votes": 0}}
    settings.update({f"threshold {t}": {"carve_threshold": float(t)} for t in a.thresholds.split(",")})
    recs = {name: Reconstructor.from_pretrained(a.checkpoint, **kw) for name, kw in settings.items()}
    t0 = time.time()
    scores = {name: {"psnr": [], "psnr_fg": [], "carved": []} for name in settings}
    seeds = [s for s in range(a.items) if s % 5 != 4]
    for seed in seeds:
        it = make_item(seed, a.inputs, 4, 256, scene=False, sdf_samples=0)
        for name, rec in recs.items():
            r = rec.reconstruct(it.inputs)
            img = render(r.gaussians, it.targets.cameras, background=torch.ones(3)).rgb
            scores[name]["psnr"].append(float(psnr(img, it.targets.images)))
            scores[name]["psnr_fg"].append(float(psnr(img, it.targets.images, it.targets.masks)))
            scores[name]["carved"].append(r.info["carved"])
    means = {name: {k: sum(v) / len(v) for k, v in s.items()} for name, s in scores.items()}
    for name, m in means.items():
        print(f"{name}: psnr {m['psnr']:.3f} dB, foreground {m['psnr_fg']:.3f} dB, carved {m['carved']:.0f} per item")
    result = {"benchmark": "carve", "checkpoint": a.checkpoint, "seeds": f"objects among 0..{a.items - 1} (training)",
              "items": len(seeds), "views": f"{a.inputs} inputs + 4 targets, 256x256, white background",
              "means": means, "seconds": time.time() - t0, "threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count()}
    if a.json is not None:
        write_json(a.json, result)


if __name__ == "__main__":
    main()
