"""CPU render speed: forward and forward+backward for 65k and 262k Gaussians at 256^2 and 512^2.

Scenes are pixel-aligned Gaussians unprojected from 4 input views (what the model produces: 4 views
at 128^2 give 65k, at 256^2 give 262k), rendered from a novel viewpoint.

    python -m bench.render --out bench/results/render_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from bench.scenes import pixel_aligned_scene
from renderer import _torch_impl as impl
from renderer import render


def _median_time(fn, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def bench_case(input_size: int, render_size: int, repeats: int, tile_size: int) -> dict:
    g, novel = pixel_aligned_scene(4, input_size)
    cam = novel[0].resize(render_size, render_size)

    def fwd():
        with torch.no_grad():
            return render(g, cam, tile_size=tile_size)

    gr = g.clone()
    for name in ("means", "quats_wxyz", "scales", "opacities", "sh"):
        getattr(gr, name).requires_grad_(True)

    def fwd_bwd():
        out = render(gr, cam, tile_size=tile_size)
        (out.rgb.sum() + out.depth.sum()).backward()

    fwd_med, fwd_all = _median_time(fwd, repeats)
    fb_med, fb_all = _median_time(fwd_bwd, max(2, repeats // 2))
    proj = impl.project(g, cam)
    lists = impl._build_tile_lists(proj, render_size, render_size, tile_size)
    out = fwd()
    return {
        "gaussians": len(g),
        "width": render_size,
        "height": render_size,
        "tile_size": tile_size,
        "visible_gaussians": int((proj.radii > 0).all(-1).sum()),
        "gaussian_tile_pairs": len(lists.gauss_flat),
        "mean_alpha": float(out.alpha.mean()),
        "forward_median_s": fwd_med,
        "forward_times_s": fwd_all,
        "forward_backward_median_s": fb_med,
        "forward_backward_times_s": fb_all,
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench/results/render_cpu.json")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tile-size", type=int, default=4)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = []
    for input_size in (128, 256):  # 65,536 and 262,144 Gaussians
        for render_size in (256, 512):
            case = bench_case(input_size, render_size, args.repeats, args.tile_size)
            print(json.dumps({k: v for k, v in case.items() if not k.endswith("times_s")}))
            cases.append(case)
    result = {
        "benchmark": "cpu_render",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "targets": {"262k_256_forward_s": 0.5, "262k_256_forward_backward_s": 2.0},
        "cases": cases,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
