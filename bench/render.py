"""CPU render speed: the compiled kernel and its pure-torch twin, forward and forward+backward.

65k and 262k Gaussians at 256^2 and 512^2, with 1 and 2 threads. Scenes are pixel-aligned Gaussians
unprojected from 4 input views (what the model produces: 4 views at 128^2 give 65k, at 256^2 give
262k), rendered from a novel viewpoint. Each case times both backends back to back (interleaved
repeats), so their ratio holds on a busy machine; the load average is recorded with every case.

    python -m bench.render --out bench/results/render_cpu.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from bench.results_io import write_json
from bench.scenes import pixel_aligned_scene
from renderer import _cpu, render

# Builds to compare with --isa (each run loads one: the operators of two builds cannot share a process).
ISA_BUILDS = {
    "generic": [],
    "avx2": ["-mavx2", "-mfma"],
    "x86_64_v3": ["-march=x86-64-v3", "-mtune=generic"],
    "x86_64_v4": ["-march=x86-64-v4", "-mtune=generic"],
    "native": ["-march=native"],
}
TARGETS = {
    "262k_256_forward_s": 0.08,
    "262k_256_forward_backward_s": 0.2,
    "forward_backward_speedup_vs_torch": 6.0,
}


def _timings(fns: dict, repeats: dict) -> dict:
    """Median and all times of every function in ``fns``, interleaving their repeats."""
    for fn in fns.values():
        fn()  # warm-up
    times = {name: [] for name in fns}
    for i in range(max(repeats.values())):
        for name, fn in fns.items():
            if i < repeats[name]:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {name: {"median_s": statistics.median(t), "times_s": t} for name, t in times.items()}


def _passes(g, cam, backend: str, tile_size: int):
    gr = g.clone()
    for name in ("means", "quats_wxyz", "scales", "opacities", "sh"):
        getattr(gr, name).requires_grad_(True)

    def forward():
        with torch.no_grad():
            return render(g, cam, backend=backend, tile_size=tile_size)

    def forward_backward():
        out = render(gr, cam, backend=backend, tile_size=tile_size)
        (out.rgb.sum() + out.depth.sum()).backward()

    return forward, forward_backward


def bench_case(g, cam, threads: int, repeats: int, tile_size: int, twin_tile_size: int, twin: bool) -> dict:
    torch.set_num_threads(threads)
    size = cam.width
    load_start = os.getloadavg()
    fns, reps = {}, {}
    backends = [("cpu", tile_size)] + ([("torch", twin_tile_size)] if twin else [])
    for backend, ts in backends:
        fns[f"{backend}_forward"], fns[f"{backend}_forward_backward"] = _passes(g, cam, backend, ts)
        reps[f"{backend}_forward"] = repeats if backend == "cpu" else max(2, repeats // 2)
        reps[f"{backend}_forward_backward"] = repeats if backend == "cpu" else max(2, repeats // 3)
    t = _timings(fns, reps)
    with torch.no_grad():
        proj = _cpu.project(g, cam)
        values = torch.zeros(1, len(g), 4)
        binning = _cpu.load().rasterize_fwd(proj.means2d, proj.conics, proj.opacities.contiguous(), values,
                                            proj.radii, proj.depths, size, size, tile_size)[4]
        alpha = render(g, cam, backend="cpu").alpha
    case = {
        "gaussians": len(g),
        "width": size,
        "height": size,
        "threads": threads,
        "tile_size": tile_size,
        "visible_gaussians": int((proj.radii > 0).all(-1).sum()),
        "gaussian_tile_pairs": int(binning[4].numel()),
        "mean_alpha": float(alpha.mean()),
        "loadavg_start_end": [list(load_start), list(os.getloadavg())],
    }
    for name, r in t.items():
        case[f"{name}_median_s"], case[f"{name}_times_s"] = r["median_s"], r["times_s"]
    if twin:
        case["torch_tile_size"] = twin_tile_size
        for p in ("forward", "forward_backward"):
            case[f"speedup_{p}"] = case[f"torch_{p}_median_s"] / case[f"cpu_{p}_median_s"]
    return case


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench/results/render_cpu.json")
    p.add_argument("--repeats", type=int, default=7, help="kernel repeats (the twin runs fewer)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--tile-size", type=int, default=_cpu.DEFAULT_TILE_SIZE, help="the kernel's tile size")
    p.add_argument("--twin-tile-size", type=int, default=4, help="the pure-torch twin's tile size")
    p.add_argument("--no-twin", action="store_true", help="time the kernel only")
    p.add_argument("--isa", choices=sorted(ISA_BUILDS), help="time this build instead of the one for this CPU")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    isa = (args.isa, ISA_BUILDS[args.isa]) if args.isa else _cpu._isa_flags()
    if args.isa:
        _cpu._state["ops"] = _cpu.build(isa=isa)  # before anything loads the default build
    if not _cpu.has_cpu_kernel():
        raise SystemExit(f"the compiled CPU kernel is unavailable: {_cpu.unavailable_reason()}")
    load_s = time.perf_counter() - t0
    load_start, cases = os.getloadavg(), []
    for input_size in (128, 256):  # 65,536 and 262,144 Gaussians
        g, novel = pixel_aligned_scene(4, input_size)
        for render_size in (256, 512):
            cam = novel[0].resize(render_size, render_size)
            for threads in (int(t) for t in args.threads.split(",")):
                case = bench_case(g, cam, threads, args.repeats, args.tile_size, args.twin_tile_size, not args.no_twin)
                print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in case.items()
                       if not k.endswith("times_s") and k != "loadavg_start_end"}, "load", case["loadavg_start_end"][1][0])
                cases.append(case)
    result = {
        "benchmark": "cpu_render",
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "kernel": {"build": isa[0], "flags": isa[1], "tile_size": args.tile_size, "load_or_build_s": load_s},
        "loadavg_start_end": [list(load_start), list(os.getloadavg())],
        "targets": TARGETS,
        "cases": cases,
    }
    write_json(Path(args.out), result)


if __name__ == "__main__":
    main()
