"""Mesh clean-up (floaters, small holes, non-manifold edges, winding, smoothing) and a topology report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from recon.core.types import Mesh
from recon.export._convert import from_numpy, from_open3d, to_numpy, to_open3d


@dataclass
class CleanupOptions:
    """Clean-up settings; sizes are relative so they hold for any world unit."""

    min_component_fraction: float = 0.05  # drop components with fewer triangles than this x the largest
    hole_size_fraction: float = 0.25  # fill holes whose perimeter is below this x the bbox diagonal
    taubin_iterations: int = 0  # Taubin (volume-preserving) smoothing passes; 0 = off


def mesh_report(mesh: Mesh) -> dict:
    """Topology of ``mesh``: ``faces``, ``vertices``, ``components``, ``watertight``, ``winding_consistent``,
    ``euler_characteristic`` (V - E + F) and ``genus`` (total over components, closed meshes only, else None)."""
    v, f, _ = to_numpy(mesh)
    if len(f) == 0:
        return {"faces": 0, "vertices": len(v), "components": 0, "watertight": False,
                "winding_consistent": False, "euler_characteristic": 0, "genus": None}
    tm = trimesh.Trimesh(v, f, process=False)
    components = len(trimesh.graph.connected_components(tm.face_adjacency, nodes=np.arange(len(f))))
    chi = int(tm.euler_number)
    watertight = bool(tm.is_watertight)
    genus = (2 * components - chi) // 2 if watertight else None
    return {"faces": len(f), "vertices": len(tm.vertices), "components": components,
            "watertight": watertight, "winding_consistent": bool(tm.is_winding_consistent),
            "euler_characteristic": chi, "genus": genus}


def clean_mesh(mesh: Mesh, options: CleanupOptions | None = None) -> Mesh:
    """A cleaned copy of ``mesh`` (same frame and units; colours kept where vertices survive).

    Steps: merge duplicate vertices, drop degenerate/duplicate triangles and non-manifold edges;
    keep connected components with at least ``min_component_fraction`` of the largest one's
    triangles (floaters go); fill holes up to ``hole_size_fraction`` of the bounding-box diagonal;
    make the winding consistent with normals pointing outwards; optional Taubin smoothing.
    """
    o = options or CleanupOptions()
    if len(mesh.faces) == 0:
        return mesh
    m = to_open3d(mesh)
    m.remove_duplicated_vertices()
    m.remove_degenerate_triangles()
    m.remove_duplicated_triangles()
    m.remove_non_manifold_edges()
    m.remove_unreferenced_vertices()
    if len(m.triangles) == 0:
        return from_open3d(m)
    labels, counts, _ = m.cluster_connected_triangles()
    labels, counts = np.asarray(labels), np.asarray(counts)
    small = counts < o.min_component_fraction * counts.max()
    m.remove_triangles_by_mask(small[labels])
    m.remove_unreferenced_vertices()
    if o.hole_size_fraction > 0:
        diag = float(np.linalg.norm(m.get_max_bound() - m.get_min_bound()))
        v, f, c = fill_holes(np.asarray(m.vertices), np.asarray(m.triangles),
                             np.asarray(m.vertex_colors) if m.has_vertex_colors() else None,
                             o.hole_size_fraction * diag)
        m = to_open3d(from_numpy(v, f, c))
    if o.taubin_iterations > 0:
        m = m.filter_smooth_taubin(number_of_iterations=o.taubin_iterations)
    out = from_open3d(m)
    v, f, c = to_numpy(out)
    tm = trimesh.Trimesh(v, f, process=False)
    trimesh.repair.fix_winding(tm)
    if tm.is_watertight and tm.volume < 0:
        tm.invert()
    elif not tm.is_watertight:
        trimesh.repair.fix_normals(tm, multibody=True)
    return from_numpy(tm.vertices, tm.faces, c)


def fill_holes(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None, max_perimeter: float):
    """Close every simple boundary loop whose perimeter is at most ``max_perimeter`` (source units)
    with a fan around a new vertex at the loop's centroid, wound to match its neighbours.

    Loops through a vertex with several boundary edges leaving it are left open. Returns
    ``(vertices, faces, colors)`` with the added vertices and triangles appended.
    """
    v, f = np.asarray(vertices, np.float64), np.asarray(faces, np.int64)
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    key = directed[:, 0] * len(v) + directed[:, 1]
    rkey = directed[:, 1] * len(v) + directed[:, 0]
    boundary = directed[~np.isin(key, rkey)]
    if len(boundary) == 0:
        return v, f, colors
    starts, n_out = np.unique(boundary[:, 0], return_counts=True)
    ambiguous = set(starts[n_out > 1].tolist())
    nxt = {int(a): int(b) for a, b in boundary if int(a) not in ambiguous}
    new_v, new_f, new_c, seen = [], [], [], set()
    for a0 in list(nxt):
        if a0 in seen:
            continue
        loop, a = [a0], nxt[a0]
        while a != a0 and a in nxt and a not in seen and len(loop) <= len(boundary):
            loop.append(a)
            a = nxt[a]
        seen.update(loop)
        if a != a0 or len(loop) < 3:
            continue
        ring = v[loop]
        if np.linalg.norm(ring - np.roll(ring, -1, 0), axis=1).sum() > max_perimeter:
            continue
        centre = len(v) + len(new_v)
        new_v.append(ring.mean(0))
        if colors is not None:
            new_c.append(np.asarray(colors)[loop].mean(0))
        new_f.extend([[b, a, centre] for a, b in zip(loop, loop[1:] + loop[:1])])
    if not new_v:
        return v, f, colors
    v = np.concatenate([v, np.asarray(new_v)])
    f = np.concatenate([f, np.asarray(new_f, np.int64)])
    if colors is not None:
        colors = np.concatenate([np.asarray(colors), np.asarray(new_c)])
    return v, f, colors


def decimate(mesh: Mesh, target_faces: int, passes: int = 3) -> Mesh:
    """Quadric-error decimation (Open3D) of ``mesh`` to about ``target_faces`` triangles.

    A mesh already within the budget is returned unchanged. Vertex colours are carried along.
    Open3D's pass can stop short of the target on meshes with many handles or thin parts; up to
    ``passes`` passes run while the result is more than 2% over the budget.
    """
    if len(mesh.faces) <= target_faces:
        return mesh
    m = to_open3d(mesh)
    for _ in range(passes):
        m = m.simplify_quadric_decimation(target_number_of_triangles=int(target_faces))
        m.remove_degenerate_triangles()
        m.remove_duplicated_triangles()
        m.remove_unreferenced_vertices()
        if len(m.triangles) <= 1.02 * target_faces:
            break
    return from_open3d(m)


def lod_chain(mesh: Mesh, target_faces: int, fractions: tuple[float, ...]) -> list[Mesh]:
    """Meshes at ``fractions`` of ``target_faces`` (e.g. 1.0, 0.25, 0.06), each decimated from the previous."""
    out, current = [], mesh
    for fr in fractions:
        current = decimate(current, max(4, round(target_faces * fr)))
        out.append(current)
    return out


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``[V, 3]`` unit area-weighted vertex normals (recomputed after every geometry change)."""
    v, f = np.asarray(vertices, np.float64), np.asarray(faces, np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return np.where(norm > 0, n / np.maximum(norm, 1e-30), np.array([0.0, 1.0, 0.0]))


