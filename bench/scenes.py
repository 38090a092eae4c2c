"""Benchmark scenes shaped like what the model produces: pixel-aligned Gaussians from V views."""

from __future__ import annotations

import math

import torch

from renderer import Cameras, Gaussians


def pixel_aligned_scene(n_views: int = 4, size: int = 256, seed: int = 0) -> tuple[Gaussians, Cameras]:
    """``n_views * size^2`` Gaussians unprojected from an orbit rig onto a unit sphere in a room.

    Each input pixel's ray hits the object (a sphere of radius 1) or the room (a sphere of radius 4
    seen from inside); a Gaussian sits at the hit with a footprint of about one input pixel and a
    random colour. Returns the Gaussians and a novel-view camera rig (8 views, elevation 35 deg).
    """
    gen = torch.Generator().manual_seed(seed)
    cams = Cameras.orbit(n_views, radius=2.8, elevation_deg=15, fov_deg=50, width=size, height=size)
    o, d = cams.rays()
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    # Ray-sphere intersections (|d| = 1): t^2 + 2 (o.d) t + |o|^2 - r^2 = 0.
    od, oo = (o * d).sum(-1), (o * o).sum(-1)
    disc_obj = od**2 - (oo - 1.0)
    t_obj = -od - torch.sqrt(disc_obj.clamp_min(0))
    t_room = -od + torch.sqrt(od**2 - (oo - 16.0))
    t = torch.where(disc_obj > 0, t_obj, t_room)
    means = o + t[:, None] * d
    f = cams.K[0, 0, 0]
    footprint = (t / f)[:, None] * torch.tensor([0.7, 0.7, 0.15])
    n = means.shape[0]
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=-1)
    rgb = torch.rand(n, 3, generator=gen)
    opac = 0.5 + 0.5 * torch.rand(n, generator=gen)
    g = Gaussians.from_rgb(means, rgb, footprint, opac, quats, sh_degree=0)
    novel = Cameras.orbit(8, radius=2.8, elevation_deg=35, fov_deg=50, width=size, height=size, azimuth0_deg=22.5)
    return g, novel


def random_scene(n: int, seed: int = 0, sh_degree: int = 0, dtype=torch.float32) -> Gaussians:
    """``n`` random Gaussians in a unit ball with small random scales (the usual random test scene)."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=gen, dtype=dtype) * 0.6
    scales = torch.exp(torch.empty(n, 3, dtype=dtype).uniform_(math.log(0.003), math.log(0.05), generator=gen))
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=gen, dtype=dtype), dim=-1)
    opac = torch.rand(n, generator=gen, dtype=dtype) * 0.9 + 0.05
    sh = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=gen, dtype=dtype) * 0.4
    return Gaussians(means, quats, scales, opac, sh)
