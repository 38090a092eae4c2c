"""Exact geometry of procedural objects: SDF queries, surface samples, SDF samples, GT meshes.

All positions are world coordinates (z up, world units); distances are negative inside. For a
scene these cover the objects standing in the room, not the room itself.

Marching cubes: Open3D's ``TriangleMesh.create_isosurfaces`` (flying edges, open3d is already a
dependency), imported when ``ground_truth_mesh`` is first called.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from recon.core.types import Mesh, SdfSamples
from recon.data.procedural.grid import SdfGrid
from recon.data.procedural.objects import ProceduralObject


@dataclass
class SurfaceQuery:
    """Per-point SDF ``[P]``, unit outward normals ``[P, 3]`` and albedo ``[P, 3]`` (world frame)."""

    sdf: Tensor
    normals: Tensor
    albedo: Tensor


def query(obj: ProceduralObject, points: Tensor) -> SurfaceQuery:
    """Exact SDF, normal (SDF gradient) and albedo at world ``points [P, 3]``.

    The albedo is that of the part nearest the point (meaningful on or near the surface).
    """
    return SurfaceQuery(obj.sdf(points), obj.normals(points), obj.albedo(points))


def project_to_surface(obj: ProceduralObject, points: Tensor, iters: int = 5) -> tuple[Tensor, Tensor]:
    """Move points along the SDF gradient onto the zero level set: ``p <- p - f(p) n(p)``.

    Returns ``(points [P, 3], sdf [P])`` after ``iters`` steps (exact in one step for a true SDF
    with a unique nearest point; more steps fix bounds and curved regions).
    """
    for _ in range(iters):
        f = obj.sdf(points)
        points = points - f[:, None] * obj.normals(points)
    return points, obj.sdf(points)


def surface_samples(obj: ProceduralObject, gen: torch.Generator, n: int, tol: float = 1e-4,
                    device: str | torch.device = "cpu") -> tuple[Tensor, Tensor, Tensor]:
    """``n`` points on the surface with ``|sdf| < tol`` (world units): ``(points, normals, colors)``.

    Candidates are drawn uniformly in the bounding box, kept where the tracer grid says they lie
    within two cells of the surface (so the samples are roughly uniform over the area), and then
    projected along the gradient. ``gen`` is a CPU generator; results go to ``device``.
    """
    grid = obj.grid(device)
    lo = torch.tensor(obj.bbox_min)
    ext = torch.tensor(obj.bbox_max) - lo
    out: list[Tensor] = []
    got = 0
    for _ in range(64):
        cand = (lo + ext * torch.rand(max(4 * n, 4096), 3, generator=gen)).to(device)
        near = grid.interp(*cand.unbind(-1)).abs() < 2 * grid.h
        pts, f = project_to_surface(obj, cand[near])
        pts = pts[f.abs() < tol]
        out.append(pts)
        got += pts.shape[0]
        if got >= n:
            break
    pts = torch.cat(out)[:n]
    return pts, obj.normals(pts), obj.albedo(pts)


def sdf_samples(obj: ProceduralObject, gen: torch.Generator, n: int, near_fraction: float = 0.7,
                sigmas: tuple[float, float] = (0.01, 0.05), device: str | torch.device = "cpu") -> SdfSamples:
    """``n`` exact SDF samples: ``near_fraction`` near the surface (surface samples displaced by
    Gaussian noise, half with each ``sigma``, world units) and the rest uniform in the bounding box
    grown by 10% (for an object: the cube [-1, 1]^3 at least). Colours are the nearest part's albedo."""
    n_near = round(n * near_fraction)
    surf, _, _ = surface_samples(obj, gen, n_near, device=device)
    n_near = surf.shape[0]
    sig = torch.full((n_near, 1), sigmas[0])
    sig[n_near // 2 :] = sigmas[1]
    near = surf + (torch.randn(n_near, 3, generator=gen) * sig).to(device)
    lo, hi = torch.tensor(obj.bbox_min), torch.tensor(obj.bbox_max)
    c, half = (lo + hi) / 2, (hi - lo) / 2 * 1.1
    if obj.room is None:
        half = torch.maximum(half, torch.ones(3) - c.abs())
    uni = (c + half * (2 * torch.rand(n - n_near, 3, generator=gen) - 1)).to(device)
    pts = torch.cat([near, uni])
    return SdfSamples(pts, obj.sdf(pts), obj.albedo(pts))


def sdf_volume(obj: ProceduralObject, resolution: int = 128, device: str | torch.device = "cpu") -> SdfGrid:
    """SDF on a grid over the bounding box (plus two cells): exact within two cells of the surface,
    correct in sign everywhere (coarse-to-fine, see ``SdfGrid.build_sparse``)."""
    span = max(b - a for a, b in zip(obj.bbox_min, obj.bbox_max))
    pad = 2.0 * span / (resolution - 1)
    lo = tuple(a - pad for a in obj.bbox_min)
    hi = tuple(b + pad for b in obj.bbox_max)
    base = max(17, (resolution - 1) // 4 + 1)
    return SdfGrid.build_sparse(obj.sdf, lo, hi, resolution, base_res=base, device=device)


def ground_truth_mesh(obj: ProceduralObject, resolution: int = 128, colors: bool = True) -> Mesh:
    """Triangle mesh of the zero level set by marching cubes on a ``resolution``-node grid (longest
    side of the bounding box), vertex colours from the albedo. Faces wind counter-clockwise seen
    from outside (outward normals); vertices lie within about a cell's interpolation error of the
    true surface (exact SDF values at the grid nodes)."""
    import open3d as o3d  # heavy: imported on first use

    grid = sdf_volume(obj, resolution)
    nx, ny, nz = grid.shape
    vol = grid.values.reshape(nx, ny, nz).permute(2, 1, 0).contiguous()  # Open3D reads [z, y, x]
    mesh = o3d.t.geometry.TriangleMesh.create_isosurfaces(o3d.core.Tensor(vol.numpy()), [0.0])
    verts = torch.from_numpy(mesh.vertex.positions.numpy().copy()).float()
    faces = torch.from_numpy(mesh.triangle.indices.numpy().copy()).long()
    if faces.numel() == 0:
        return Mesh(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, 3) if colors else None)
    verts = torch.tensor(grid.lo) + verts * grid.h
    faces = faces[:, [2, 1, 0]]  # Open3D winds negative-inside fields inward
    return Mesh(verts, faces, obj.albedo(verts) if colors else None)
