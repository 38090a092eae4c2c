"""Model forward speed and memory: latency and peak memory of a preset for 1-8 posed views.

Two paths, each under bf16 autocast and in fp32, for square input views of each size:

- ``model``: ``ReconModel`` on posed views at the input size, Gaussian head only
  (``heads=("gaussians",)``): backbone, cost volume, Gaussian head, adapter.
- ``reconstructor``: ``Reconstructor.reconstruct``: resize to the model's working size
  (``image_size`` of the preset), canonical frame, model, Gaussians to the input world frame (CPU).

Latency is the median of ``--repeats`` timed calls after ``--warmup`` untimed ones (CUDA is
synchronised). Every configuration runs in a fresh subprocess, so its peak memory is its own: on
CPU the peak resident set size during the calls minus the resident size before them (Linux
``VmHWM``, reset through ``/proc/self/clear_refs``; elsewhere ``ru_maxrss``, which also counts the
set-up peak); on CUDA the allocator's peak minus what was allocated before. Weights are the
preset's random initialisation unless ``--checkpoint`` names a checkpoint folder (the cost is the
same; only the opacity filter of the reconstructor path keeps a different number of Gaussians).
Inputs: V cameras on an orbit (OpenCV, radius 2.8 world units around the origin, 50 deg field of
view) and random colours in [0, 1].

    python -m bench.model --json bench/results/model_cpu.json
    python -m bench.model --preset tiny --repeats 1 --json /tmp/model_tiny.json   # smoke test
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
PATHS = ("model", "reconstructor")


def _csv(kind):
    def parse(text: str) -> list:
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}") from None
    return parse


# ---- one configuration (runs in its own process) -----------------------------------------------

def _rss_kb() -> int | None:
    """Current resident set size in KiB (Linux), else None."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0); False where impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_kb() -> int:
    try:
        return int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))
    except (OSError, AttributeError):
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb // 1024 if sys.platform == "darwin" else kb  # bytes on macOS


def _inputs(views: int, size: int, masks: bool = False):
    """``Views`` of ``views`` random-colour images ``[V, size, size, 3]`` seen from an orbit rig;
    with ``masks``, a centred disc of half the image width as every view's mask (what the
    reconstructor's silhouette carving then tests every Gaussian against)."""
    from recon.core.types import Views
    from renderer import Cameras

    cams = Cameras.orbit(views, radius=2.8, elevation_deg=20, fov_deg=50, width=size, height=size)
    images = torch.rand(views, size, size, 3, generator=torch.Generator().manual_seed(0))
    m = None
    if masks:
        r = torch.arange(size) + 0.5 - size / 2
        disc = ((r[:, None] ** 2 + r[None, :] ** 2) <= (size / 4) ** 2).float()
        m = disc[None, :, :, None].expand(views, size, size, 1).contiguous()
    return Views(images, cams, masks=m)


def run_case(case: dict) -> dict:
    """Time and measure one configuration: ``case`` has preset, checkpoint, path, views, size,
    dtype, device, repeats, warmup, threads. Returns the case with its results."""
    from recon.core.resize import model_input_size
    from recon.inference import Reconstructor
    from recon.models import ReconModel, preset
    from recon.models.frame import CanonicalFrame

    if case["threads"]:
        torch.set_num_threads(case["threads"])
    dev = torch.device(case["device"])
    dtype = DTYPES[case["dtype"]]
    torch.manual_seed(0)
    if case["checkpoint"]:
        rec = Reconstructor.from_pretrained(case["checkpoint"], device=dev, dtype=dtype)
    else:
        rec = Reconstructor(ReconModel(preset(case["preset"])), device=dev, dtype=dtype)
    model = rec.model.eval()
    views = _inputs(case["views"], case["size"], case.get("masks", False))
    if case["path"] == "model":
        frame = CanonicalFrame.from_cameras(views.cameras)
        canon = frame.cameras_to_canonical(views.cameras)
        img = views.images.permute(0, 3, 1, 2)[None].to(dev)  # [1, V, 3, H, W]
        c2w, K = canon.c2w[None].to(dev), canon.K[None].to(dev)  # canonical frame, pixels of H x W
        conv = torch.tensor([frame.converged], device=dev)
        working = (case["size"], case["size"])

        @torch.no_grad()
        def call():
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
                out = model(img, c2w, K, conv, heads=("gaussians",))
            return out.gaussians.means.shape[1:4].numel()
    else:
        working = model_input_size(case["size"], case["size"], rec.cfg.input_long_side, rec.cfg.input_multiple)

        def call():
            return len(rec.reconstruct(views).gaussians)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    gc.collect()
    if dev.type == "cuda":
        sync()
        torch.cuda.reset_peak_memory_stats(dev)
        base_cuda = torch.cuda.memory_allocated(dev)
    base_rss = _rss_kb()
    exact_rss = _reset_peak_rss() and base_rss is not None
    for _ in range(case["warmup"]):
        call()
    sync()
    times, n = [], 0
    for _ in range(case["repeats"]):
        t0 = time.perf_counter()
        n = call()
        sync()
        times.append(time.perf_counter() - t0)
    res = dict(case, working_size=list(working), gaussians=int(n), median_s=statistics.median(times), times_s=times,
               threads=torch.get_num_threads())
    res["peak_rss_delta_mb"] = round((_peak_rss_kb() - (base_rss or 0)) / 1024, 1)
    res["peak_rss_exact"] = exact_rss  # False: ru_maxrss, which may include the set-up's own peak
    if dev.type == "cuda":
        res["cuda_peak_delta_mb"] = round((torch.cuda.max_memory_allocated(dev) - base_cuda) / 2**20, 1)
    return res


# ---- driver -------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def _spawn(case: dict) -> dict:
    """Run one configuration in a fresh interpreter; the case with its results (or an ``error``)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "bench.model", "--case", json.dumps(case)], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return dict(case, error=f"exit {proc.returncode}: {tail}")
    return json.loads(lines[-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="small", help="model preset (tiny, small, large)")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder to load instead of random weights")
    p.add_argument("--views", type=_csv(int), default=[1, 2, 4, 8], help="input view counts (default 1,2,4,8)")
    p.add_argument("--sizes", type=_csv(int), default=None,
                   help="square input sizes in pixels (default 256; 256,512 on CUDA)")
    p.add_argument("--dtypes", type=_csv(str), default=["bf16", "fp32"], help="bf16 (autocast), fp16, fp32")
    p.add_argument("--paths", type=_csv(str), default=list(PATHS), help="model, reconstructor")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per configuration (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--masks", action="store_true", help="give the views masks (the reconstructor path then carves)")
    p.add_argument("--json", default=None, help="output file (default bench/results/model_<device>.json)")
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)  # internal: one configuration, JSON
    a = p.parse_args(argv)
    if a.case is not None:
        print(json.dumps(run_case(json.loads(a.case))))
        return
    device = ("cuda" if torch.cuda.is_available() else "cpu") if a.device == "auto" else a.device
    sizes = a.sizes or ([256, 512] if device == "cuda" else [256])
    bad = [d for d in a.dtypes if d not in DTYPES] + [x for x in a.paths if x not in PATHS]
    if bad or a.repeats < 1 or a.warmup < 0 or min(a.views) < 1:
        p.error(f"bad arguments: {bad or 'repeats >= 1, warmup >= 0, views >= 1'}")
    cases = []
    for path in a.paths:
        for dtype in a.dtypes:
            for size in sizes:
                for views in a.views:
                    case = {"preset": a.preset, "checkpoint": a.checkpoint, "path": path, "views": views, "size": size,
                            "dtype": dtype, "device": device, "repeats": a.repeats, "warmup": a.warmup,
                            "threads": a.threads, "masks": a.masks}
                    r = _spawn(case)
                    print(json.dumps({k: v for k, v in r.items() if k not in ("times_s", "checkpoint")}), flush=True)
                    cases.append(r)
    result = {
        "benchmark": "model_forward",
        "preset": a.preset,
        "checkpoint": a.checkpoint,
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or platform.machine()),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "masks": a.masks,
        "cases": cases,
    }
    out = Path(a.json or f"bench/results/model_{device}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
