"""Mesh extraction: posed views -> the triplane SDF head's zero level set in the input world frame."""

from __future__ import annotations

import torch
from torch import Tensor

from recon.core.errors import ReconError
from recon.core.types import Mesh, Views
from recon.inference.posed import run_posed
from recon.models import ReconModel
from recon.models.sdf_mesh import extract_mesh


@torch.no_grad()
def mesh_from_views(model: ReconModel, views: Views, device: torch.device, dtype: torch.dtype,
                    resolution: int = 128, chunk: int = 1 << 16) -> Mesh:
    """Mesh of the triplane SDF's zero level set for posed ``views`` (``images [V, H, W, 3]`` in
    [0, 1], cameras in any world frame): marching cubes over the head's cube (``extent``, canonical
    frame) at ``resolution`` nodes per axis, field queries in chunks of ``chunk`` points, vertices
    mapped to the input world frame and units; vertex colours in [0, 1] from the colour field."""
    if model.triplane_head is None:
        raise ReconError("this model has no triplane head, so it cannot make meshes")
    if len(views) < 1:
        raise ReconError("no input views")
    out, frame, _ = run_posed(model, views, ("triplane",), device, dtype)
    planes = out.planes.float()

    def field(p: Tensor) -> tuple[Tensor, Tensor]:  # canonical points [P, 3] -> (sdf [P], rgb [P, 3])
        sdf, rgb = model.sdf(planes, p[None].to(planes.device))
        return sdf[0], rgb[0]

    verts, faces, colors = extract_mesh(field, resolution, model.cfg.triplane_head.extent, chunk, device)
    return Mesh(frame.points_to_world(verts), faces, colors)
