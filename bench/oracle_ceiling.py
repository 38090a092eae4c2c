"""How far can a pixel-aligned model go? The ground-truth-depth oracle on synthetic-val, at the
input resolution and at the model's working resolution, beside the model and optimize-30s on the
same items.

A model that puts one Gaussian on each pixel of its working resolution, at that pixel's depth with
that pixel's colour, can at best match the ``gt-depth`` oracle (exact depth, the input colour) at
that resolution: nothing it does covers surface that no input saw. This runs the oracle under the
protocol (``recon.eval.runner.run_protocol``, the same scoring as ``recon eval``) with a fixed
pixel stride of 1 (the protocol's 256 px) and 256 / working size (the shipped preset's 128 px:
stride 2), and reads the model's and optimize-30s's results on the same seeds from
``bench/results/model`` and ``bench/results/baselines``.

    python -m bench.oracle_ceiling --limit 100 --json bench/results/oracle_ceiling.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench.results_io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = {"recon": ROOT / "bench/results/model/synthetic-val__recon.json",
           "optimize-30s": ROOT / "bench/results/baselines/synthetic-val__optimize-30s.json",
           "plane-sweep": ROOT / "bench/results/baselines/synthetic-val__plane-sweep.json"}


def _same_items(result: dict, ids: list[str]) -> dict | None:
    """Mean PSNR / foreground PSNR / SSIM of ``result`` over exactly the items ``ids`` (None if any is missing)."""
    by_id = {it["id"]: it for it in result["items"]}
    if any(i not in by_id for i in ids):
        return None
    out = {}
    for key in ("psnr", "psnr_fg", "ssim"):
        vals = [by_id[i]["mean"].get(key) for i in ids]
        vals = [v for v in vals if isinstance(v, (int, float))]
        out[key] = sum(vals) / len(vals) if vals else None
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.oracle_ceiling", description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=100, help="first N synthetic-val items")
    p.add_argument("--strides", default="1,2", help="oracle pixel strides (2 = the shipped 128 px working size)")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)

    import torch

    from recon.eval.protocols import get_protocol
    from recon.eval.reference_methods import GroundTruthDepthMethod
    from recon.eval.runner import run_protocol

    t0 = time.time()
    rows, ids = {}, None
    for stride in (int(s) for s in a.strides.split(",")):
        r = run_protocol(get_protocol("synthetic-val"), GroundTruthDepthMethod(stride=stride), limit=a.limit)
        item_ids = [it["id"] for it in r["items"]]
        ids = ids or item_ids
        m = r["means"]
        rows[f"gt-depth, stride {stride}"] = {"psnr": m["psnr"], "psnr_fg": m.get("psnr_fg"), "ssim": m["ssim"],
                                             "working_px": 256 // stride, "gaussians": sum(it["gaussians"] for it in r["items"]) / len(r["items"])}
    for name, path in RESULTS.items():
        if path.exists():
            same = _same_items(json.loads(path.read_text()), ids)
            rows[name] = same if same is not None else f"{path.name} does not cover these {len(ids)} items"
    for name, row in rows.items():
        if isinstance(row, dict):
            print(f"{name:22s} psnr {row['psnr']:.2f}  fg {row['psnr_fg']:.2f}  ssim {row['ssim']:.3f}")
        else:
            print(f"{name:22s} {row}")
    result = {"benchmark": "oracle_ceiling", "protocol": "synthetic-val", "items": len(ids),
              "first_item": ids[0], "last_item": ids[-1], "rows": rows, "seconds": time.time() - t0,
              "threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    if a.json is not None:
        write_json(a.json, result)


if __name__ == "__main__":
    main()
