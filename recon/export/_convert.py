"""Conversions between ``recon.core.types.Mesh`` and Open3D / trimesh meshes (geometry only)."""

from __future__ import annotations

import numpy as np
import torch

from recon.core.types import Mesh


def to_numpy(mesh: Mesh) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``vertices [V, 3]`` float64, ``faces [F, 3]`` int64, ``colors [V, 3]`` float64 or None."""
    v = mesh.vertices.detach().cpu().double().numpy().reshape(-1, 3)
    f = mesh.faces.detach().cpu().long().numpy().reshape(-1, 3)
    c = None if mesh.vertex_colors is None else mesh.vertex_colors.detach().cpu().double().numpy().reshape(-1, 3)
    return v, f, c


def from_numpy(v: np.ndarray, f: np.ndarray, c: np.ndarray | None = None) -> Mesh:
    return Mesh(torch.from_numpy(np.asarray(v, np.float32).reshape(-1, 3).copy()),
                torch.from_numpy(np.asarray(f, np.int64).reshape(-1, 3).copy()),
                None if c is None else torch.from_numpy(np.asarray(c, np.float32).reshape(-1, 3).clip(0, 1).copy()))


def to_open3d(mesh: Mesh):
    import open3d as o3d  # lazy: heavy native library, mesh export only

    v, f, c = to_numpy(mesh)
    m = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(v), o3d.utility.Vector3iVector(f.astype(np.int32)))
    if c is not None:
        m.vertex_colors = o3d.utility.Vector3dVector(c)
    return m


def from_open3d(m) -> Mesh:
    c = np.asarray(m.vertex_colors) if m.has_vertex_colors() else None
    return from_numpy(np.asarray(m.vertices), np.asarray(m.triangles), c)
