"""Triangle meshes from a signed distance field by marching cubes (the triplane head's mesh export).

The field is sampled on a regular grid of ``resolution``^3 nodes over ``[-extent, extent]^3`` (in
the field's own frame and units: the model's canonical frame for the triplane head) and its zero
level set is extracted with Open3D's ``TriangleMesh.create_isosurfaces`` (flying edges), the same
machinery as the procedural ground-truth meshes (``recon.data.procedural.mesh``). Colours are the
colour field evaluated at the vertices themselves, not interpolated from the grid.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

# field(points [P, 3]) -> (sdf [P], negative inside; rgb [P, 3] in [0, 1])
SdfField = Callable[[Tensor], tuple[Tensor, Tensor]]


def _evaluate(fn: SdfField, points: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    sdf, rgb = [], []
    for p in points.split(chunk):
        s, c = fn(p)
        sdf.append(s.detach().float().reshape(-1).cpu())
        rgb.append(c.detach().float().reshape(-1, 3).cpu())
    return torch.cat(sdf), torch.cat(rgb)


def isosurface(values: Tensor, extent: float) -> tuple[Tensor, Tensor]:
    """Zero level set of a sampled field ``values [R, R, R]`` (x slowest, nodes spanning
    ``[-extent, extent]^3``, negative inside) by marching cubes: ``vertices [N, 3]`` (float32, field
    units) and ``faces [F, 3]`` (int64, counter-clockwise seen from outside); empty when no crossing."""
    import open3d as o3d  # heavy: imported on first use

    R = values.shape[0]
    vol = values.float().cpu().permute(2, 1, 0).contiguous()  # Open3D reads [z, y, x]
    mesh = o3d.t.geometry.TriangleMesh.create_isosurfaces(o3d.core.Tensor(vol.numpy()), [0.0])
    verts = torch.from_numpy(mesh.vertex.positions.numpy().copy()).float()
    faces = torch.from_numpy(mesh.triangle.indices.numpy().copy()).long()
    if faces.numel() == 0:
        return torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long)
    verts = verts * (2 * extent / (R - 1)) - extent
    return verts, faces[:, [2, 1, 0]]  # Open3D winds negative-inside fields inward


@torch.no_grad()
def extract_mesh(
    sdf_fn: SdfField,  # points [P, 3] -> (sdf [P], rgb [P, 3]); called on chunks of at most ``chunk`` points
    resolution: int = 128,  # grid nodes per axis
    extent: float = 1.6,  # the grid spans [-extent, extent]^3, field units
    chunk: int = 1 << 16,
    device: str | torch.device = "cpu",  # where the query points are made
) -> tuple[Tensor, Tensor, Tensor]:
    """Zero level set of ``sdf_fn`` by marching cubes (``isosurface``).

    Returns ``vertices [N, 3]`` (field frame and units, float32), ``faces [F, 3]`` (int64, wound
    counter-clockwise seen from outside, so normals point out of the negative region) and
    ``colors [N, 3]`` (``sdf_fn``'s colour at the vertices). Vertices lie within the linear
    interpolation error of the field along grid edges (exact for a field linear on each edge);
    empty tensors when the level set does not cross the grid.
    """
    if resolution < 2:
        raise ValueError(f"resolution must be at least 2, got {resolution}")
    axis = torch.linspace(-extent, extent, resolution, device=device)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)  # x slowest
    sdf, _ = _evaluate(sdf_fn, grid, chunk)
    verts, faces = isosurface(sdf.reshape(resolution, resolution, resolution), extent)
    if faces.numel() == 0:
        return verts, faces, torch.zeros(0, 3)
    _, colors = _evaluate(sdf_fn, verts.to(device), chunk)
    return verts, faces, colors.clamp(0, 1)
