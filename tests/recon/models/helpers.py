"""Exact pointmaps and relative cameras of procedural items, shared by the model tests."""

from __future__ import annotations

import torch
from torch import Tensor

from recon.core.types import Views
from recon.models.adapter import unproject


def gt_pointmap(views: Views) -> tuple[Tensor, Tensor]:
    """Exact points ``[V, H, W, 3]`` of every view's GT depth in the first camera's frame (world units)
    and their validity ``[V, H, W]`` (depth > 0)."""
    cams = views.cameras
    depth = views.depth_z[..., 0]
    pts_w = unproject(depth[None], cams.c2w[None], cams.K[None])[0]
    w2c0 = torch.linalg.inv(cams.c2w[0])
    return pts_w @ w2c0[:3, :3].T + w2c0[:3, 3], depth > 0


def relative_c2w(views: Views) -> Tensor:
    """GT cameras ``[V, 4, 4]`` expressed in the first camera's frame (``c2w[0] = I``), world units."""
    return torch.linalg.inv(views.cameras.c2w[0]) @ views.cameras.c2w
