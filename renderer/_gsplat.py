"""CUDA path: gsplat's fused rasterizer. Imported only when a CUDA tensor is rendered.

gsplat compiles its CUDA extension on first use (minutes); set ``TORCH_EXTENSIONS_DIR`` to keep the
build between runs. Colours are evaluated with our SH code (identical formula to gsplat's) so that
extra feature channels ride along in the same rasterization call.
"""

from __future__ import annotations

import torch
from torch import Tensor

from renderer.cameras import Cameras
from renderer.gaussians import Gaussians
from renderer.sh import sh_to_rgb
from renderer.types import RenderOutput


def render_gsplat(
    gaussians: Gaussians,
    cameras: Cameras,
    background: Tensor,  # [C, 3]
    sh_degree: int,
    features: Tensor | None,  # [N, F] or None
    near_plane: float,
    far_plane: float,
    eps2d: float,
):
    from gsplat import rasterization  # lazy: builds its CUDA kernels on first import

    C = len(cameras)
    dirs = gaussians.means[None] - cameras.centers[:, None, :]
    colors = sh_to_rgb(gaussians.sh[None].expand(C, -1, -1, -1), dirs, sh_degree)  # [C, N, 3]
    bg = background
    if features is not None:
        colors = torch.cat([colors, features[None].expand(C, -1, -1).to(colors.dtype)], dim=-1)
        bg = torch.cat([bg, torch.zeros(C, features.shape[1], dtype=bg.dtype, device=bg.device)], dim=-1)
    img, alpha, meta = rasterization(
        means=gaussians.means,
        quats=gaussians.quats_wxyz,
        scales=gaussians.scales,
        opacities=gaussians.opacities,
        colors=colors,
        viewmats=cameras.w2c,
        Ks=cameras.K,
        width=cameras.width,
        height=cameras.height,
        near_plane=near_plane,
        far_plane=far_plane,
        eps2d=eps2d,
        sh_degree=None,
        packed=False,
        backgrounds=bg,
        render_mode="RGB+ED",
        rasterize_mode="classic",
    )
    rgb, feats, depth = img[..., :3], img[..., 3:-1], img[..., -1:]
    depth = torch.where(alpha > 0, depth, torch.zeros_like(depth))
    return RenderOutput(rgb, alpha, depth, feats if features is not None else None, meta["radii"])
