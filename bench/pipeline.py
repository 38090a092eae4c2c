"""End-to-end pipeline benchmark: ``recon reconstruct`` on 4 lego views, and batch throughput.

    python -m bench.pipeline [--checkpoint checkpoints/default] [--repeats 3] [--jobs 6]
                             [--json bench/results/pipeline_cpu.json]

Each reconstruction runs as its own process (``python -m recon reconstruct``), so the wall time
includes interpreter start, imports and model load, as a user sees it; the stage timings come from
the run's ``report.json`` and the peak RSS from ``resource.getrusage(RUSAGE_CHILDREN)`` of that
process. Batch throughput runs ``recon batch`` over ``--jobs`` copies of the posed example
(``assets/examples/toy_posed``) with 1 and 2 workers. Run it on an idle machine: other processes on
the two cores slow torch down several times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEGO = REPO.parent / "shared" / "eval_data" / "nerf_synthetic_lego"
LEGO_VIEWS = "26,86,2,55"


def _child_run(cmd: list[str], env: dict) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run ``cmd``; return (wall seconds, peak RSS in MB of the child, result)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, max over finished children
    if res.returncode != 0:
        raise SystemExit(f"command failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return wall, max(peak, before) / 1024, res


def bench_reconstruct(checkpoint: Path, repeats: int, env: dict, tmp: Path) -> dict:
    runs = []
    for r in range(repeats):
        out = tmp / f"lego_{r}"
        cmd = [sys.executable, "-m", "recon", "reconstruct", str(LEGO), "--views", LEGO_VIEWS, "--out", str(out),
               "--checkpoint", str(checkpoint), "--device", "cpu"]
        wall, rss, _ = _child_run(cmd, env)
        rep = json.loads((out / "report.json").read_text())
        runs.append({"wall_s": wall, "peak_rss_mb": rss, "stages_s": rep["timings"], "gaussians": rep["gaussians"]})
    return {
        "input": f"lego train views {LEGO_VIEWS} (800x800 RGBA), posed, to gaussians.ply",
        "wall_s_median": statistics.median(r["wall_s"] for r in runs),
        "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
        "runs": runs,
        "note": "peak RSS is the largest of all child processes so far (getrusage RUSAGE_CHILDREN)",
    }


def bench_batch(checkpoint: Path, jobs: int, env: dict, tmp: Path) -> dict:
    root = tmp / "batch_root"
    for i in range(jobs):
        shutil.copytree(REPO / "assets" / "examples" / "toy_posed", root / f"job_{i:02d}")
    out = {}
    for workers in (1, 2):
        dest = tmp / f"batch_out_{workers}"
        cmd = [sys.executable, "-m", "recon", "batch", str(root), "--out", str(dest), "--workers", str(workers),
               "--checkpoint", str(checkpoint), "--device", "cpu"]
        wall, _, _ = _child_run(cmd, env)
        rep = json.loads((dest / "batch_report.json").read_text())
        out[f"workers_{workers}"] = {"jobs": jobs, "ok": rep["ok"], "wall_s": wall, "jobs_per_minute": 60 * jobs / wall}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "default")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--jobs", type=int, default=6)
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "pipeline_cpu.json")
    a = p.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory(prefix="recon_bench_") as d:
        tmp = Path(d)
        result = {
            "reconstruct": bench_reconstruct(a.checkpoint, a.repeats, env, tmp),
            "batch": bench_batch(a.checkpoint, a.jobs, env, tmp),
            "checkpoint": str(a.checkpoint),
            "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version()},
        }
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result["reconstruct"].items() if k != "runs"}, indent=1))
    print(json.dumps(result["batch"], indent=1))


if __name__ == "__main__":
    main()
