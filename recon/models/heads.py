"""Swappable heads on the backbone's tokens: pixel-aligned Gaussians, pointmaps, triplane SDF.

Heads return raw network outputs; ``recon.models.adapter`` turns them into physical values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recon.models.backbone import BackboneOutput
from recon.models.blocks import Block


def _conv(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1), nn.GELU())


def _up(x: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _token_map(out: BackboneOutput) -> Tensor:
    B, V, _N, C = out.tokens.shape
    gh, gw = out.grid
    return out.tokens.reshape(B * V, gh, gw, C).permute(0, 3, 1, 2)


@dataclass
class GaussianHeadConfig:
    c4: int = 96  # decoder channels at 1/4 resolution
    c2: int = 48
    c1: int = 32  # full resolution
    cost_scale: float = 10.0  # initial weight of the correlation volume in the depth logits


class GaussianHead(nn.Module):
    """DPT-like decoder to full resolution.

    Returns ``depth_logits [B*V, D, H/4, W/4]`` over the backbone's planes and raw ``params
    [B*V, 12, H, W]``: inverse-depth refinement (1), opacity (1), scale (3), rotation (4), colour
    residual (3), in the order of ``recon.models.adapter.GAUSSIAN_CHANNELS``.
    """

    out_channels = 12

    def __init__(self, cfg: GaussianHeadConfig, dim: int, c2_stem: int, c4_stem: int, num_planes: int):
        super().__init__()
        self.cfg = cfg
        self.proj = nn.Conv2d(dim, cfg.c4, 1)
        self.fuse4 = nn.Sequential(_conv(cfg.c4 + c4_stem + num_planes, cfg.c4), _conv(cfg.c4, cfg.c4))
        self.depth_logits = nn.Conv2d(cfg.c4, num_planes, 3, 1, 1)
        self.cost_scale = nn.Parameter(torch.tensor(float(cfg.cost_scale)))
        self.fuse2 = nn.Sequential(_conv(cfg.c4 + c2_stem, cfg.c2))
        self.fuse1 = nn.Sequential(_conv(cfg.c2 + 3 + 1, cfg.c1), nn.Conv2d(cfg.c1, self.out_channels, 3, 1, 1))
        nn.init.zeros_(self.fuse1[-1].weight)
        nn.init.zeros_(self.fuse1[-1].bias)

    def forward(self, out: BackboneOutput, images: Tensor) -> tuple[Tensor, Tensor]:
        B, V, _, H, W = images.shape
        x = self.proj(_token_map(out))
        h4, w4 = out.f4.shape[-2:]
        x = self.fuse4(torch.cat([_up(x, (h4, w4)), out.f4, out.cost.to(x.dtype)], 1))
        logits = self.depth_logits(x) + self.cost_scale * out.cost.to(x.dtype)
        # Expected inverse depth (normalised to [0, 1] between near and far) feeds the fine levels.
        t = torch.softmax(logits.float(), 1) * torch.linspace(0, 1, logits.shape[1], device=x.device)[None, :, None, None]
        t = t.sum(1, keepdim=True)
        x = self.fuse2(torch.cat([_up(x, out.f2.shape[-2:]), out.f2], 1))
        img = images.reshape(B * V, 3, H, W)
        x = self.fuse1(torch.cat([_up(x, (H, W)), img.to(x.dtype) * 2 - 1, _up(t, (H, W)).to(x.dtype)], 1))
        return logits, x


@dataclass
class PointmapHeadConfig:
    c4: int = 64


class PointmapHead(nn.Module):
    """Per-pixel 3D points in the first camera's frame and a confidence, at 1/4 resolution upsampled
    bilinearly: returns ``[B*V, 4, H, W]`` raw (xyz, confidence logit)."""

    def __init__(self, cfg: PointmapHeadConfig, dim: int, c4_stem: int):
        super().__init__()
        self.proj = nn.Conv2d(dim, cfg.c4, 1)
        self.fuse = nn.Sequential(_conv(cfg.c4 + c4_stem, cfg.c4), _conv(cfg.c4, cfg.c4), nn.Conv2d(cfg.c4, 4, 3, 1, 1))

    def forward(self, out: BackboneOutput, size: tuple[int, int]) -> Tensor:
        x = self.proj(_token_map(out))
        x = self.fuse(torch.cat([_up(x, out.f4.shape[-2:]), out.f4], 1))
        return _up(x.float(), size)


@dataclass
class TriplaneHeadConfig:
    tokens: int = 8  # token grid per plane (tokens x tokens)
    layers: int = 2  # each: cross-attention to image tokens, then self-attention
    plane_res: int = 32
    plane_channels: int = 32
    extent: float = 1.6  # the planes span [-extent, extent]^3 of the canonical frame
    hidden: int = 64


class TriplaneSdfHead(nn.Module):
    """Learned triplane tokens cross-attend the image tokens; planes decode SDF and colour via an MLP.

    ``forward`` returns planes ``[B, 3, C, R, R]`` (xy, xz, yz); ``decode(planes, points)`` maps
    canonical points ``[B, P, 3]`` to ``(sdf [B, P] canonical units, rgb [B, P, 3] in [0, 1])``.
    """

    def __init__(self, cfg: TriplaneHeadConfig, dim: int, heads: int):
        super().__init__()
        self.cfg = cfg
        n = 3 * cfg.tokens**2
        self.queries = nn.Parameter(torch.randn(n, dim) * 0.02)
        self.cross = nn.ModuleList([Block(dim, heads, kv_dim=dim) for _ in range(cfg.layers)])
        self.self_attn = nn.ModuleList([Block(dim, heads) for _ in range(cfg.layers)])
        c = cfg.plane_channels
        ups = max(0, round(torch.log2(torch.tensor(cfg.plane_res / cfg.tokens)).item()))
        layers: list[nn.Module] = [nn.Conv2d(dim, 2 * c, 1)]
        ch = 2 * c
        for _ in range(ups):
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), _conv(ch, c)]
            ch = c
        layers.append(nn.Conv2d(ch, c, 3, 1, 1))
        self.up = nn.Sequential(*layers)
        self.mlp = nn.Sequential(nn.Linear(c, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, cfg.hidden), nn.SiLU(),
                                 nn.Linear(cfg.hidden, 4))

    def forward(self, out: BackboneOutput) -> Tensor:
        B, V, N, C = out.tokens.shape
        ctx = out.tokens.reshape(B, V * N, C)
        q = self.queries[None].expand(B, -1, -1)
        for cross, selfa in zip(self.cross, self.self_attn):
            q = cross(q, context=ctx)
            q = selfa(q)
        T = self.cfg.tokens
        planes = q.reshape(B * 3, T, T, C).permute(0, 3, 1, 2)
        planes = self.up(planes)
        R = planes.shape[-1]
        return planes.reshape(B, 3, -1, R, R).float()

    def decode(self, planes: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
        B, _, C, R, _ = planes.shape
        p = (points / self.cfg.extent).float()
        coords = torch.stack([p[..., [0, 1]], p[..., [0, 2]], p[..., [1, 2]]], 1)  # [B, 3, P, 2]
        f = F.grid_sample(planes.reshape(B * 3, C, R, R), coords.reshape(B * 3, 1, -1, 2), mode="bilinear",
                          padding_mode="border", align_corners=True)  # [B*3, C, 1, P]
        f = f.reshape(B, 3, C, -1).sum(1).transpose(1, 2)  # [B, P, C]
        raw = self.mlp(f).float()
        # The SDF is a residual over a sphere of radius 0.8 so an untrained head is already a surface.
        sdf = p.norm(dim=-1) * self.cfg.extent - 0.8 + 0.1 * raw[..., 0]
        return sdf, torch.sigmoid(raw[..., 1:])
