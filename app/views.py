"""What the app shows besides the 3D viewer: thumbnails with the mask, the turntable, the camera plot.

All of it is computed from pipeline outputs (``LoadedImage``, ``Gaussians``, ``Cameras``) with our
renderer; nothing here runs the network.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from renderer import Cameras, Gaussians, render


def thumbnail(rgb: np.ndarray, long_side: int = 256) -> np.ndarray:
    """``[H, W, 3]`` float in [0, 1] -> uint8 thumbnail whose long side is at most ``long_side``."""
    im = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    im.thumbnail((long_side, long_side))
    return np.asarray(im)


def mask_overlay(rgb: np.ndarray, mask: np.ndarray, tint=(1.0, 0.25, 0.25), strength: float = 0.55) -> np.ndarray:
    """The background (mask 0) tinted red so that the kept object stands out; float [H, W, 3]."""
    m = np.clip(mask, 0, 1)[..., None]
    tinted = rgb * (1 - strength) + np.asarray(tint) * strength
    return rgb * m + tinted * (1 - m)


def orbit_for(gaussians: Gaussians, cameras: Cameras, n: int, size: int, elevation_deg: float = 15.0) -> Cameras:
    """``n`` cameras circling the reconstruction: centre = opacity-weighted median of the means,
    up = the input cameras' mean up (OpenCV: -y), radius = the inputs' mean distance to the centre,
    field of view = the first input's horizontal one."""
    means = gaussians.means.detach().float().cpu()
    keep = gaussians.opacities.detach().float().cpu() > 0.1
    pts = means[keep] if int(keep.sum()) >= 16 else means
    centre = pts.median(dim=0).values
    c2w = cameras.c2w.detach().float().cpu()
    up = torch.nn.functional.normalize(-c2w[:, :3, 1].mean(0), dim=0)
    radius = float((c2w[:, :3, 3] - centre).norm(dim=-1).mean())
    if not math.isfinite(radius) or radius <= 1e-6:
        radius = 2.5
    fx = float(cameras.K[0, 0, 0])
    fov = math.degrees(2 * math.atan(cameras.width / (2 * fx))) if fx > 0 else 50.0
    # start behind the first input camera so the first frame resembles the first photo
    rel = c2w[0, :3, 3] - centre
    a = torch.nn.functional.normalize(torch.linalg.cross(up, torch.tensor([1.0, 0.0, 0.0]) if abs(float(up[0])) < 0.9
                                                         else torch.tensor([0.0, 1.0, 0.0])), dim=0)
    b = torch.linalg.cross(up, a)
    az0 = math.degrees(math.atan2(float(rel @ b), float(rel @ a)))
    return Cameras.orbit(n, radius=radius, elevation_deg=elevation_deg, center=tuple(centre.tolist()),
                         up=tuple(up.tolist()), fov_deg=min(max(fov, 20.0), 90.0), width=size, height=size,
                         azimuth0_deg=az0)


def render_turntable(gaussians: Gaussians, cameras: Cameras, n: int = 36, size: int = 256,
                     background=(1.0, 1.0, 1.0), on_frame=None) -> list[np.ndarray]:
    """``n`` uint8 frames ``[size, size, 3]`` of an orbit around the reconstruction (see ``orbit_for``).
    ``on_frame(i, n)`` is called after each frame (progress)."""
    orbit = orbit_for(gaussians, cameras, n, size)
    frames = []
    with torch.no_grad():
        for i in range(n):
            out = render(gaussians, orbit[i:i + 1].to(device=gaussians.means.device), background=background)
            frames.append((out.rgb[0].clamp(0, 1).float().cpu().numpy() * 255).round().astype(np.uint8))
            if on_frame is not None:
                on_frame(i + 1, n)
    return frames


def write_video(frames: list[np.ndarray], path: Path, fps: int = 12) -> Path:
    """H.264 MP4 (yuv420p, plays in every browser) through imageio-ffmpeg's bundled ffmpeg."""
    import imageio.v2 as imageio  # ffmpeg bindings: only the turntable needs them

    with imageio.get_writer(path, fps=fps, codec="libx264", pixelformat="yuv420p", quality=8,
                            macro_block_size=16, ffmpeg_log_level="error") as w:
        for f in frames:
            w.append_data(f)
    return path


def camera_plot(gaussians: Gaussians, cameras: Cameras, path: Path, names: list[str] | None = None,
                max_points: int = 4000) -> Path:
    """PNG of the input (or estimated) cameras as frusta around a sample of the Gaussian centres."""
    from matplotlib.backends.backend_agg import (
        FigureCanvasAgg,  # slow to import: only the camera plot needs it
    )
    from matplotlib.figure import Figure

    means = gaussians.means.detach().float().cpu().numpy()
    colors = (gaussians.sh[:, 0, :].detach().float().cpu().numpy() * 0.28209479 + 0.5).clip(0, 1)
    if len(means) > max_points:
        idx = np.random.default_rng(0).choice(len(means), max_points, replace=False)
        means, colors = means[idx], colors[idx]
    c2w = cameras.c2w.detach().float().cpu().numpy()
    centres = c2w[:, :3, 3]
    scale = 0.15 * float(np.linalg.norm(centres - means.mean(0), axis=1).mean() if len(means) else 1.0)
    K = cameras.K.detach().float().cpu().numpy()
    W, H = cameras.width, cameras.height
    fig = Figure(figsize=(5.5, 5.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(projection="3d")
    ax.scatter(means[:, 0], means[:, 1], means[:, 2], c=colors, s=1, depthshade=False)
    for i in range(len(c2w)):
        corners = np.array([[0, 0], [W, 0], [W, H], [0, H]], dtype=np.float64)
        rays = np.stack([(corners[:, 0] - K[i, 0, 2]) / K[i, 0, 0], (corners[:, 1] - K[i, 1, 2]) / K[i, 1, 1],
                         np.ones(4)], axis=1) * scale
        world = rays @ c2w[i, :3, :3].T + centres[i]
        for c in world:
            ax.plot(*zip(centres[i], c, strict=True), color="tab:blue", lw=0.8)
        loop = np.vstack([world, world[:1]])
        ax.plot(loop[:, 0], loop[:, 1], loop[:, 2], color="tab:blue", lw=0.8)
        ax.text(*centres[i], str(i), fontsize=7, color="tab:blue")
    allp = np.vstack([means, centres]) if len(means) else centres
    mid, half = (allp.max(0) + allp.min(0)) / 2, (allp.max(0) - allp.min(0)).max() / 2 + 1e-6
    ax.set_xlim(mid[0] - half, mid[0] + half)
    ax.set_ylim(mid[1] - half, mid[1] + half)
    ax.set_zlim(mid[2] - half, mid[2] + half)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("z")
    ax.set_title(f"{len(c2w)} camera(s) and Gaussian centres", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path
