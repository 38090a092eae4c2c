"""Backbone: per-view CNN stem, plane-sweep correlation, patch tokens with Plücker rays, and an
alternating frame/global transformer.

Shapes (B items, V views, H x W input pixels, both multiples of ``patch``):

- ``f2 [B*V, c2, H/2, W/2]``, ``f4 [B*V, c4, H/4, W/4]``: stem features (skip connections for heads);
- ``cost [B*V, D, H/4, W/4]``: cosine correlation on D planes (zeros for unposed input or one view);
- ``tokens [B, V, N, dim]`` with ``N = (H/patch) * (W/patch)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recon.models.blocks import Block, RMSNorm, rope_2d_angles
from recon.models.cost_volume import correlation_volume, plane_depths


@dataclass
class BackboneConfig:
    dim: int = 256
    depth: int = 8  # blocks; even ones attend within a frame, odd ones across all views
    heads: int = 4
    patch: int = 8  # token stride in input pixels (multiple of 4)
    c2: int = 32  # stem channels at 1/2 resolution
    c4: int = 64  # stem channels at 1/4 resolution
    match_channels: int = 32  # features correlated by the plane sweep
    num_planes: int = 32
    cost_volume: bool = True
    rope_grid: int = 16  # token grid (long side) whose positions RoPE counts in whole steps
    rope_base: float = 100.0


@dataclass
class BackboneOutput:
    tokens: Tensor
    f2: Tensor
    f4: Tensor
    cost: Tensor
    plane_depths: Tensor  # [B, V, D] z-depths of the planes, canonical units
    grid: tuple[int, int]  # token grid (h, w)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GELU())


def depth_range(c2w: Tensor, converged: Tensor) -> tuple[Tensor, Tensor]:
    """Per-view z-depth range ``(near, far) [B, V]`` in the canonical frame (unit ball at the origin).

    Object rigs (``converged``): the ball grown to radius 1.6 (objects reach into the image
    corners). Forward-facing rigs: from a quarter to three times the depth of the centre.
    """
    w2c = torch.linalg.inv(c2w.float())
    z0 = w2c[..., 2, 3].clamp_min(1e-3)  # depth of the origin
    conv = converged[:, None].expand_as(z0)
    near = torch.where(conv, torch.maximum(z0 - 1.6, 0.1 * z0), 0.25 * z0)
    far = torch.where(conv, z0 + 1.6, 3.0 * z0)
    return near, far


class Backbone(nn.Module):
    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        self.cfg = cfg
        c = cfg
        self.stem2 = nn.Sequential(_conv(3, c.c2, 2), _conv(c.c2, c.c2))
        self.stem4 = nn.Sequential(_conv(c.c2, c.c4, 2), _conv(c.c4, c.c4))
        self.match = nn.Conv2d(c.c4, c.match_channels, 1)
        k = c.patch // 4
        self.patchify = nn.Conv2d(c.c4 + c.num_planes + 6, c.dim, k, k)
        self.view_embed = nn.Parameter(torch.zeros(2, c.dim))  # reference view, other views
        self.mode_embed = nn.Parameter(torch.zeros(2, c.dim))  # posed, unposed
        nn.init.normal_(self.view_embed, std=0.02)
        nn.init.normal_(self.mode_embed, std=0.02)
        self.blocks = nn.ModuleList([Block(c.dim, c.heads) for _ in range(c.depth)])
        self.norm = RMSNorm(c.dim)

    def forward(self, images: Tensor, c2w: Tensor | None, K: Tensor | None, converged: Tensor | None) -> BackboneOutput:
        """``images [B, V, 3, H, W]`` in [0, 1]; ``c2w [B, V, 4, 4]`` canonical-frame cameras and ``K
        [B, V, 3, 3]`` (pixels of H x W), both None for unposed input; ``converged [B]`` bool."""
        c = self.cfg
        B, V, _, H, W = images.shape
        if H % c.patch or W % c.patch:
            raise ValueError(f"image size {W}x{H} must be a multiple of the patch size {c.patch}")
        x = images.reshape(B * V, 3, H, W) * 2 - 1
        f2 = self.stem2(x)
        f4 = self.stem4(f2)
        h4, w4 = H // 4, W // 4
        posed = c2w is not None
        if posed:
            with torch.autocast(images.device.type, enabled=False):  # geometry in fp32
                K4 = K.clone().float()
                K4[..., :2, :] /= 4
                near, far = depth_range(c2w, converged)
                planes = plane_depths(near, far, c.num_planes)  # [B, V, D]
                if c.cost_volume:
                    m = self.match(f4.float()).view(B, V, -1, h4, w4)
                    cost = correlation_volume(m, c2w, K4, planes).reshape(B * V, c.num_planes, h4, w4)
                else:
                    cost = f4.new_zeros(B * V, c.num_planes, h4, w4)
                plucker = _plucker(c2w, K4, h4, w4).reshape(B * V, h4, w4, 6).permute(0, 3, 1, 2)
        else:
            planes = images.new_zeros(B, V, c.num_planes)
            cost = f4.new_zeros(B * V, c.num_planes, h4, w4)
            plucker = f4.new_zeros(B * V, 6, h4, w4)
        t = self.patchify(torch.cat([f4, cost.to(f4.dtype), plucker.to(f4.dtype)], 1))  # [BV, dim, h, w]
        gh, gw = t.shape[-2:]
        t = t.flatten(2).transpose(1, 2).reshape(B, V, gh * gw, c.dim)
        view_ids = torch.ones(V, dtype=torch.long, device=t.device)
        view_ids[0] = 0
        t = t + self.view_embed[view_ids][None, :, None] + self.mode_embed[0 if posed else 1]
        step = c.rope_grid / max(gh, gw)
        rows, cols = torch.meshgrid(torch.arange(gh, device=t.device) * step, torch.arange(gw, device=t.device) * step,
                                    indexing="ij")
        rope_frame = rope_2d_angles(rows.flatten(), cols.flatten(), c.dim // c.heads, c.rope_base)
        rope_global = (rope_frame[0].repeat(V, 1), rope_frame[1].repeat(V, 1))
        N = gh * gw
        for i, blk in enumerate(self.blocks):
            if i % 2 == 0:
                t = blk(t.reshape(B * V, N, c.dim), rope_q=rope_frame, rope_k=rope_frame).reshape(B, V, N, c.dim)
            else:
                t = blk(t.reshape(B, V * N, c.dim), rope_q=rope_global, rope_k=rope_global).reshape(B, V, N, c.dim)
        return BackboneOutput(self.norm(t), f2, f4, cost, planes, (gh, gw))


def _plucker(c2w: Tensor, K: Tensor, h: int, w: int) -> Tensor:
    """Plücker rays ``[B, V, h, w, 6]`` = (o x d, d), canonical frame, through pixel centres of an h x w grid."""
    dev = c2w.device
    v, u = torch.meshgrid(torch.arange(h, device=dev) + 0.5, torch.arange(w, device=dev) + 0.5, indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], -1).float()
    d = pix @ torch.linalg.inv(K.float())[:, :, None].transpose(-1, -2)  # [B, V, h, w, 3]
    d = d @ c2w[:, :, None, :3, :3].float().transpose(-1, -2)
    d = F.normalize(d, dim=-1)
    o = c2w[:, :, None, None, :3, 3].float().expand_as(d)
    return torch.cat([torch.linalg.cross(o, d, dim=-1), d], -1)
