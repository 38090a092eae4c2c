"""Plane-sweep correlation volume between views (MVSNet/MVSplat style, fronto-parallel planes).

For every view as reference, D planes at z-depths spaced uniformly in inverse depth between a near
and a far depth; the features of every other view are warped onto each plane with ``grid_sample``
and correlated with the reference features (cosine similarity); sources are averaged where the
plane point projects inside them. Matching is what transfers from synthetic training data to real
photos, so the depth head starts from this volume rather than regressing depth from appearance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def plane_depths(near: Tensor, far: Tensor, num: int) -> Tensor:
    """``[..., num]`` z-depths uniform in inverse depth from ``near [...]`` (first) to ``far [...]``."""
    t = torch.linspace(0, 1, num, device=near.device, dtype=near.dtype)
    inv = 1 / near[..., None] * (1 - t) + 1 / far[..., None] * t
    return 1 / inv


def correlation_volume(
    feats: Tensor,  # [B, V, C, h, w] per-view features
    c2w: Tensor,  # [B, V, 4, 4] OpenCV camera-to-world (canonical frame)
    K: Tensor,  # [B, V, 3, 3] intrinsics in pixels of the h x w feature grid
    depths: Tensor,  # [B, V, D] plane z-depths per reference view
) -> Tensor:
    """Mean cosine similarity ``[B, V, D, h, w]`` (in [-1, 1]) of each view's features with the others' warped onto its
    planes; 0 where no other view sees the point (and everywhere when V == 1)."""
    B, V, C, h, w = feats.shape
    D = depths.shape[-1]
    if V == 1:
        return feats.new_zeros(B, V, D, h, w)
    dev, dt = feats.device, torch.float32
    v, u = torch.meshgrid(torch.arange(h, device=dev, dtype=dt) + 0.5, torch.arange(w, device=dev, dtype=dt) + 0.5,
                          indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], -1).reshape(-1, 3)  # [P, 3]
    rays = pix @ torch.linalg.inv(K.float()).transpose(-1, -2)  # [B, V, P, 3] camera frame, z = 1
    pts_cam = rays[:, :, None] * depths.float()[..., None, None]  # [B, V, D, P, 3]
    R, t = c2w[..., :3, :3].float(), c2w[..., :3, 3].float()
    pts_w = pts_cam @ R[:, :, None].transpose(-1, -2) + t[:, :, None, None]  # [B, V, D, P, 3]
    w2c = torch.linalg.inv(c2w.float())
    fn = F.normalize(feats.float(), dim=2)
    out = []
    for i in range(V):
        src = [j for j in range(V) if j != i]
        Rs, ts = w2c[:, src, :3, :3], w2c[:, src, :3, 3]  # [B, S, 3, 3]
        p = pts_w[:, i, None] @ Rs[:, :, None].transpose(-1, -2) + ts[:, :, None, None]  # [B, S, D, P, 3]
        uvw = p @ K[:, src, None].float().transpose(-1, -2)
        z = uvw[..., 2:3]
        uv = uvw[..., :2] / z.clamp_min(1e-6)
        grid = torch.stack([uv[..., 0] / w * 2 - 1, uv[..., 1] / h * 2 - 1], -1)  # [B, S, D, P, 2]
        valid = (z[..., 0] > 1e-3) & (grid.abs() <= 1).all(-1)  # [B, S, D, P]
        S = len(src)
        sampled = F.grid_sample(fn[:, src].reshape(B * S, C, h, w), grid.reshape(B * S, D, h * w, 2),
                                mode="bilinear", padding_mode="zeros", align_corners=False)  # [BS, C, D, P]
        corr = (sampled.view(B, S, C, D, h * w) * fn[:, i, None, :, None].reshape(B, 1, C, 1, h * w)).sum(2)
        corr = corr * valid
        n = valid.sum(1).clamp_min(1)
        out.append((corr.sum(1) / n).view(B, D, h, w))
    return torch.stack(out, 1)
