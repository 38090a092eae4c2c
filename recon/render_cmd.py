"""``recon render``: draw a Gaussians file at the cameras of a camera file, one PNG per view."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from recon.errors import ReconError
from recon.io import read_cameras
from recon.io.images import write_npy, write_png
from renderer import render
from renderer.io import read_gaussians
from renderer.io.atomic import atomic_output


@dataclass
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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ReconError("--device cuda: no CUDA device is available")
    return torch.device(name)


def render_to_folder(req: RenderRequest, progress: bool = False) -> dict:
    """Render every selected view to ``out_dir/<image stem>.png``; returns the summary also saved
    as ``out_dir/render.json``. Raises ``ReconError`` for bad files or arguments."""
    if not 0.0 < req.scale <= 4.0:
        raise ReconError(f"--scale must be in (0, 4], got {req.scale}")
    device = resolve_device(req.device)
    gaussians = read_gaussians(req.gaussians_path).to(device)
    if req.sh_degree is not None and not 0 <= req.sh_degree <= gaussians.sh_degree:
        raise ReconError(f"--sh-degree {req.sh_degree}: {req.gaussians_path} has SH degree {gaussians.sh_degree}")
    cams_set = read_cameras(req.cameras_path, views=req.views)
    cams = cams_set.cameras
    if req.scale != 1.0:
        cams = cams.resize(max(1, round(cams.width * req.scale)), max(1, round(cams.height * req.scale)))
    if req.out_dir.exists() and not req.out_dir.is_dir():
        raise ReconError(f"--out {req.out_dir}: exists and is not a folder")
    req.out_dir.mkdir(parents=True, exist_ok=True)

    names = _unique_stems([p.stem for p in cams_set.image_paths])
    timings = []
    iterator = range(len(cams))
    if progress:
        from rich.progress import track

        iterator = track(iterator, description="rendering", transient=True)
    for i in iterator:
        t0 = time.perf_counter()
        with torch.no_grad():  # one view at a time bounds memory for large images
            out = render(gaussians, cams[[i]].to(device), background=req.background, sh_degree=req.sh_degree)
        timings.append(time.perf_counter() - t0)
        image = torch.cat([out.rgb[0], out.alpha[0]], dim=-1) if req.save_alpha else out.rgb[0]
        write_png(req.out_dir / f"{names[i]}.png", image)
        if req.save_depth:
            write_npy(req.out_dir / f"{names[i]}_depth.npy", out.depth[0, ..., 0])
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


def _unique_stems(stems: list[str]) -> list[str]:
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
