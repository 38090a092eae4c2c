"""``recon render GAUSSIANS --cameras FILE --out DIR``: draw a Gaussians file at the cameras of a camera
file, one PNG per view (and ``render.json`` with sizes, timings and file names)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import track

from recon.cli.args import add_device, check_out_flag, number_in, parse_color, parse_views
from recon.cli.spec import EXIT_OK, Command
from recon.core.device import resolve_device
from recon.core.errors import ReconError
from recon.io import read_cameras
from recon.io.images import write_npy, write_png
from renderer import render
from renderer.io import read_gaussians
from renderer.io.atomic import atomic_output, make_output_dir


@dataclass(frozen=True)
class RenderRequest:
    gaussians_path: Path
    cameras_path: Path
    out_dir: Path
    views: list[int | str] | None = None
    scale: float = 1.0  # fraction of each camera's resolution
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    sh_degree: int | None = None
    save_alpha: bool = False
    save_depth: bool = False
    device: str = "auto"  # auto | cpu | cuda


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("gaussians", type=Path, help="Gaussians file (.ply in the 3DGS layout, or .splat)")
    p.add_argument("--cameras", type=Path, required=True, help="camera file or dataset folder")
    p.add_argument("--views", help="views to render: indices, ranges (0-7) or image names, comma separated")
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--scale", type=number_in(0, 4), default=1.0,
                   help="render at this fraction of the camera resolution, in (0, 4]")
    p.add_argument("--background", default="white", help="white, black, gray or R,G,B in [0,1]")
    p.add_argument("--sh-degree", type=int, default=None, help="SH bands to use (default: all in the file)")
    p.add_argument("--save-alpha", action="store_true", help="write RGBA PNGs instead of RGB")
    p.add_argument("--save-depth", action="store_true", help="also write expected z-depth as float32 .npy")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    request = RenderRequest(gaussians_path=args.gaussians, cameras_path=args.cameras, out_dir=args.out,
                            views=parse_views(args.views), scale=args.scale, background=parse_color(args.background),
                            sh_degree=args.sh_degree, save_alpha=args.save_alpha, save_depth=args.save_depth,
                            device=args.device)
    summary = render_to_folder(request, progress=sys.stderr.isatty())
    print(f"rendered {summary['views']} views of {summary['gaussians']} Gaussians into {args.out}")
    return EXIT_OK


def render_to_folder(req: RenderRequest, progress: bool = False) -> dict:
    """Render every selected view to ``out_dir/<image stem>.png``; returns the summary also saved
    as ``out_dir/render.json``. Raises ``ReconError`` for bad files or arguments, before writing."""
    if not (math.isfinite(req.scale) and 0.0 < req.scale <= 4.0):
        raise ReconError(f"--scale must be in (0, 4], got {req.scale}")
    check_out_flag(req.out_dir)
    device = resolve_device(req.device)
    gaussians = read_gaussians(req.gaussians_path).to(device)
    if req.sh_degree is not None and not 0 <= req.sh_degree <= gaussians.sh_degree:
        raise ReconError(f"--sh-degree {req.sh_degree}: {req.gaussians_path} has SH degree {gaussians.sh_degree}")
    cams_set = read_cameras(req.cameras_path, views=req.views)
    cams = cams_set.cameras
    if req.scale != 1.0:
        cams = cams.resize(max(1, round(cams.width * req.scale)), max(1, round(cams.height * req.scale)))
    make_output_dir(req.out_dir)

    names = unique_stems([p.stem for p in cams_set.image_paths])
    views = track(range(len(cams)), description="rendering", transient=True) if progress else range(len(cams))
    timings = [_render_view(req, gaussians, cams[[i]].to(device), names[i]) for i in views]
    summary = {
        "gaussians": len(gaussians),
        "sh_degree": gaussians.sh_degree if req.sh_degree is None else req.sh_degree,
        "views": len(cams),
        "width": cams.width,
        "height": cams.height,
        "device": str(device),
        "files": [f"{n}.png" for n in names],
        "render_seconds": timings,
        "camera_source": cams_set.source,
    }
    with atomic_output(req.out_dir / "render.json") as f:
        f.write(json.dumps(summary, indent=2).encode())
    return summary


def _render_view(req: RenderRequest, gaussians, camera, name: str) -> float:
    """Render one view (one at a time bounds memory for large images) and write its files; returns
    the render's wall time in seconds."""
    t0 = time.perf_counter()
    with torch.no_grad():
        out = render(gaussians, camera, background=req.background, sh_degree=req.sh_degree)
    seconds = time.perf_counter() - t0
    image = torch.cat([out.rgb[0], out.alpha[0]], dim=-1) if req.save_alpha else out.rgb[0]
    write_png(req.out_dir / f"{name}.png", image)
    if req.save_depth:
        write_npy(req.out_dir / f"{name}_depth.npy", out.depth[0, ..., 0])
    return seconds


def unique_stems(stems: list[str]) -> list[str]:
    """Keep names readable but unique (two views of 'img' become 'img' and 'img_1')."""
    seen: dict[str, int] = {}
    out = []
    for s in stems:
        s = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s) or "view"
        if s in seen:
            seen[s] += 1
            out.append(f"{s}_{seen[s]}")
        else:
            seen[s] = 0
            out.append(s)
    return out


RENDER = Command(
    name="render",
    help="render a Gaussian PLY/.splat at the cameras of a camera file into PNGs",
    description="Render Gaussians at the cameras of a camera file (cameras.json, transforms.json, "
    "COLMAP model, poses_bounds.npy, cameras_sphere.npz, or a dataset folder) into DIR.",
    add_arguments=add_arguments,
    run=run,
)
