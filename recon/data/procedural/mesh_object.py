"""Triangle meshes as data-engine objects: render a ground-truth mesh file with ``render_sdf``.

``mesh_object(path)`` loads a mesh (OBJ, PLY, GLB, ... through trimesh), centres its bounding box at
the origin, scales it into the sphere of ``OBJECT_RADIUS`` (like ``random_object``), turns its up
axis to the data engine's world +z and wraps it as a ``ProceduralObject`` whose single leaf,
``MeshShape``, answers signed distances with Open3D's ``RaycastingScene.compute_signed_distance``
(exact unsigned distance to the triangles; the sign by ray parity, a majority vote over a few rays
so that small holes in scanned meshes do not flip it). The surface gets a procedural solid texture
from ``random_material``, so every view agrees. ``object_mesh(obj)`` returns the normalised
triangles (world frame, z up, world units) as the ground truth for ``mesh_metrics``.

Open3D is imported when a distance is first asked for (never at import time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import trimesh
from torch import Tensor

from recon.core.errors import ReconError
from recon.core.types import Mesh
from recon.data.procedural.objects import OBJECT_RADIUS, ProceduralObject
from recon.data.procedural.primitives import Primitive
from recon.data.procedural.texture import Material, random_material, random_palette
from recon.io.mesh_file import read_trimesh

AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0),
        "-x": (-1.0, 0.0, 0.0), "-y": (0.0, -1.0, 0.0), "-z": (0.0, 0.0, -1.0)}
SIGN_RAYS = 3  # rays per query voting on inside/outside (odd; Open3D's ``nsamples``)


@dataclass(kw_only=True, eq=False)
class MeshShape(Primitive):
    """A closed triangle mesh as an SDF leaf: ``vertices [V, 3]`` (leaf frame, world units, float32)
    and ``faces [F, 3]`` (int, outward winding not required). Distances are float32 from Open3D,
    negative inside; the sign needs a (nearly) closed surface."""

    vertices: np.ndarray
    faces: np.ndarray
    sign_rays: int = SIGN_RAYS
    _scene: object = field(default=None, repr=False)

    def _raycasting(self):
        if self._scene is None:
            import open3d as o3d  # lazy: heavy native library, mesh objects only

            scene = o3d.t.geometry.RaycastingScene()
            scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(self.vertices, np.float32)),
                                o3d.core.Tensor(np.ascontiguousarray(self.faces, np.uint32)))
            self._scene = scene
        return self._scene

    def dist(self, p: Tensor) -> Tensor:
        """Signed distance ``[P]`` at points ``p [3, P]`` (the internal layout; leaf frame)."""
        import open3d as o3d  # lazy: heavy native library, mesh objects only

        if p.shape[1] == 0:
            return p.new_zeros(0)
        q = p.detach().t().to("cpu", torch.float32).contiguous().numpy()
        d = self._raycasting().compute_signed_distance(o3d.core.Tensor(q), nsamples=self.sign_rays)
        return torch.from_numpy(d.numpy()).to(device=p.device, dtype=p.dtype)

    def _bound(self):
        return (0.0, 0.0, 0.0), float(np.linalg.norm(self.vertices, axis=1).max())


def _up_rotation(up) -> np.ndarray:
    """``[3, 3]`` smallest proper rotation taking the unit vector along ``up`` to world +z."""
    a = np.asarray(AXES[up] if isinstance(up, str) else up, np.float64).reshape(3)
    if np.linalg.norm(a) < 1e-12:
        raise ReconError("the up axis must be a non-zero vector")
    return trimesh.geometry.align_vectors(a / np.linalg.norm(a), np.array([0.0, 0.0, 1.0]))[:3, :3]


def load_normalised(path: str | Path, radius: float = OBJECT_RADIUS, up_axis="y") -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``[V, 3]`` float64 and faces ``[F, 3]`` int64 of the mesh file at ``path``: bounding
    box centred at the origin, scaled so that the farthest vertex is ``radius`` from it, ``up_axis``
    (``"x"``, ``"y"``, ``"z"``, ``"-y"``, ... or a 3-vector in the file's frame) turned to +z.
    Duplicate vertices (UV seams) are merged."""
    tm = read_trimesh(path)
    tm = trimesh.Trimesh(np.asarray(tm.vertices), np.asarray(tm.faces), process=True)  # merge seams, drop degenerates
    v = np.asarray(tm.vertices, np.float64)
    v = v - 0.5 * (v.min(0) + v.max(0))
    v = v @ _up_rotation(up_axis).T
    v = v * (radius / np.linalg.norm(v, axis=1).max())
    return v, np.asarray(tm.faces, np.int64)


def mesh_object(
    path: str | Path,  # mesh file trimesh can read (obj, ply, glb, stl, off, ...)
    radius: float = OBJECT_RADIUS,  # farthest vertex from the box centre, world units
    up_axis="y",  # the file's up direction ("y", "z", "-z", ... or a 3-vector), turned to world +z
    material: Material | None = None,  # solid texture; default drawn by ``random_material`` from ``seed``
    seed: int = 0,
) -> ProceduralObject:
    """The mesh at ``path`` as a ``ProceduralObject`` (world frame z up, centred, inside the sphere of
    ``radius``) for ``render_sdf``, ``surface_samples`` and friends. ``info``: kind ``"mesh"``,
    path, up_axis, vertices, faces. Raises ``ReconError`` for a missing or unreadable file."""
    v, f = load_normalised(path, radius, up_axis)
    if material is None:
        gen = torch.Generator().manual_seed(int(seed))
        feature = 0.15 * radius / OBJECT_RADIUS
        material = random_material(gen, random_palette(gen, 4), feature)
    shape = MeshShape(vertices=v.astype(np.float32), faces=f, material=0)
    lo, hi = v.min(0), v.max(0)
    pad = 1e-3 * radius
    info = {"kind": "mesh", "style": "mesh", "complexity": 0.0, "path": str(path), "up_axis": up_axis,
            "vertices": len(v), "faces": len(f)}
    return ProceduralObject(shape, [material], tuple((lo - pad).tolist()), tuple((hi + pad).tolist()), info=info)


def object_mesh(obj: ProceduralObject, colors: bool = True) -> Mesh:
    """The triangles of a ``mesh_object`` (world frame, world units) as a ``Mesh``, with vertex
    colours from the object's material when ``colors``: the ground truth for ``mesh_metrics``."""
    shape = obj.root
    if not isinstance(shape, MeshShape):
        raise ReconError("object_mesh needs an object made by mesh_object")
    v = torch.from_numpy(np.asarray(shape.vertices, np.float32))
    f = torch.from_numpy(np.asarray(shape.faces, np.int64))
    return Mesh(v, f, obj.albedo(v) if colors else None)
