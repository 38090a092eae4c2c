"""Procedural data engine throughput: items per second (4 input + 4 target views at 256x256).

    python -m bench.data --out bench/results/data_cpu.json [--items 8] [--workers 0 2]

Measures objects and scenes separately, in-process and through a DataLoader with worker
processes, and on CUDA when a GPU is present.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from recon.data.dataset import ProceduralConfig, ProceduralDataset, collate_items


def _rate(ds: ProceduralDataset, indices: list[int], workers: int) -> dict:
    subset = torch.utils.data.Subset(ds, indices)
    loader = torch.utils.data.DataLoader(subset, batch_size=1, num_workers=workers, collate_fn=collate_items)
    t0 = time.perf_counter()
    n = sum(len(batch) for batch in loader)
    dt = time.perf_counter() - t0
    return {"items": n, "seconds": dt, "items_per_s": n / dt, "workers": workers}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench/results/data_cpu.json")
    p.add_argument("--items", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args(argv)
    results = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        ds = ProceduralDataset(ProceduralConfig(n_inputs=4, n_targets=4, size=args.size, scene_every=2), device=device)
        objects = [2 * i for i in range(args.items)]
        scenes = [2 * i + 1 for i in range(args.items)]
        ds[0]  # warm-up (imports, allocator)
        for kind, idx in (("object", objects), ("scene", scenes)):
            for workers in args.workers if device == "cpu" else [0]:
                r = _rate(ds, idx, workers) | {"kind": kind, "device": device, "size": args.size}
                print(json.dumps(r))
                results.append(r)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "procedural_items",
        "views_per_item": "4 inputs + 4 targets",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "results": results,
    }
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
