"""Brute-force per-pixel compositor: the slow, obviously-correct twin of ``_torch_impl.rasterize``.

It walks every Gaussian of every camera in depth order for all pixels at once, applying gsplat's
rules literally (skip ``sigma < 0`` or ``alpha < 1/255``; stop a pixel before transmittance would
reach ``<= 1e-4``). No tiles, no boxes beyond the culling flag, no chunking. For tests only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from renderer._torch_impl import (
    ALPHA_THRESHOLD,
    MAX_ALPHA,
    TRANSMITTANCE_MIN,
    Projection,
)


def rasterize_reference(proj: Projection, values: Tensor, width: int, height: int) -> tuple[Tensor, Tensor]:
    """Same contract as ``_torch_impl.rasterize``: ``(image [C, H, W, D], alpha [C, H, W, 1])``."""
    C, N = proj.depths.shape
    D = values.shape[-1]
    v, u = torch.meshgrid(
        torch.arange(height, dtype=values.dtype) + 0.5, torch.arange(width, dtype=values.dtype) + 0.5, indexing="ij"
    )
    u, v = u.reshape(-1), v.reshape(-1)
    images, alphas = [], []
    for c in range(C):
        T = torch.ones_like(u)
        done = torch.zeros_like(u, dtype=torch.bool)
        img = torch.zeros(len(u), D, dtype=values.dtype)
        for g in torch.argsort(proj.depths[c].detach(), stable=True).tolist():
            if not bool((proj.radii[c, g] > 0).all()):
                continue
            a, b, cc = proj.conics[c, g]
            dx, dy = proj.means2d[c, g, 0] - u, proj.means2d[c, g, 1] - v
            sigma = 0.5 * (a * dx * dx + cc * dy * dy) + b * dx * dy
            alpha = torch.clamp_max(proj.opacities[c, g] * torch.exp(-sigma), MAX_ALPHA)
            use = (sigma >= 0) & (alpha >= ALPHA_THRESHOLD) & ~done
            next_T = T * (1 - alpha)
            finishing = use & (next_T <= TRANSMITTANCE_MIN)
            done = done | finishing
            use = use & ~finishing
            w = torch.where(use, alpha * T, torch.zeros_like(alpha))
            img = img + w[:, None] * values[c, g][None, :]
            T = torch.where(use, next_T, T)
        images.append(img.reshape(height, width, D))
        alphas.append((1 - T).reshape(height, width, 1))
    return torch.stack(images), torch.stack(alphas)
