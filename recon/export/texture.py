"""UV unwrapping (xatlas) and base-colour baking into a texture.

UV convention: OBJ/trimesh's, ``u`` right and ``v`` up with the origin at the image's bottom-left;
texel ``(row, col)`` of an ``S x S`` image covers ``u in [col, col+1]/S``, ``v in [S-row-1, S-row]/S``.
trimesh flips ``v`` when it writes glTF (whose origin is top-left), so one texture serves both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt


@dataclass
class UVMesh:
    """A mesh with per-vertex UVs: ``vertices [V, 3]`` (source frame), ``faces [F, 3]``, ``uvs [V, 2]``
    in [0, 1], and ``source_index [V]``: the input vertex each (seam-split) vertex came from."""

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    source_index: np.ndarray


def split_faces(vertices: np.ndarray, faces: np.ndarray, max_faces: int) -> list[np.ndarray]:
    """Face index arrays of spatially compact pieces of at most ``max_faces`` faces each.

    Recursive median cuts of the face centroids across the longest side of each piece's bounding
    box (deterministic; pieces differ in size by at most one face per level).
    """
    centroids = np.asarray(vertices, np.float64)[np.asarray(faces, np.int64)].mean(1)
    todo, out = [np.arange(len(faces))], []
    while todo:
        idx = todo.pop()
        if len(idx) <= max(1, max_faces):
            out.append(idx)
            continue
        c = centroids[idx]
        axis = int(np.argmax(c.max(0) - c.min(0)))
        order = idx[np.argsort(c[:, axis], kind="stable")]
        half = len(order) // 2
        todo += [order[half:], order[:half]]
    return out


def unwrap(vertices: np.ndarray, faces: np.ndarray, texture_size: int = 1024, padding_px: int = 4,
           chart_iterations: int = 0, piece_faces: int = 1000) -> UVMesh:
    """xatlas charts packed into a square atlas of ``texture_size`` texels with ``padding_px`` between charts.

    Vertices on chart seams are duplicated (``source_index`` maps them back); the geometry is unchanged.
    ``chart_iterations``: xatlas's chart growing/seeding passes (its default is 1). 0 is 1.5-3x
    faster on 20k-face meshes for ~20% more charts (measured in docs/export.md).
    ``piece_faces``: xatlas's chart computation grows faster than linearly with the faces of one
    mesh (a 20k-face sphere: 3.9 s, 5k faces: 0.4 s), so the mesh is first cut into spatially
    compact pieces of at most this many faces (``split_faces``), charted separately and packed into
    one atlas at one texel density; the cuts become chart seams. 0: one piece.
    """
    import xatlas  # lazy: UV unwrapping for textured meshes only

    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    pieces = split_faces(vertices, faces, piece_faces) if piece_faces > 0 else [np.arange(len(faces))]
    atlas = xatlas.Atlas()
    used = []
    for idx in pieces:
        keep, local = np.unique(faces[idx], return_inverse=True)
        used.append(keep)
        atlas.add_mesh(np.ascontiguousarray(vertices[keep], np.float32),
                       np.ascontiguousarray(local.reshape(-1, 3), np.uint32))
    charts = xatlas.ChartOptions()
    charts.max_iterations = int(chart_iterations)
    pack = xatlas.PackOptions()
    pack.resolution = int(texture_size)
    pack.padding = int(padding_px)
    pack.bilinear = True
    atlas.generate(charts, pack)
    source, out_faces, out_uvs, offset = [], [], [], 0
    for i, keep in enumerate(used):
        vmapping, indices, uvs = atlas[i]
        source.append(keep[np.asarray(vmapping, np.int64)])
        out_faces.append(np.asarray(indices, np.int64) + offset)
        out_uvs.append(np.asarray(uvs, np.float64))
        offset += len(vmapping)
    vmapping = np.concatenate(source)
    return UVMesh(vertices[vmapping], np.concatenate(out_faces), np.concatenate(out_uvs).clip(0, 1), vmapping)


def rasterize_uv(uvs: np.ndarray, faces: np.ndarray, size: int, max_candidates: int = 1 << 16):
    """Texels whose centres fall inside UV triangles.

    Returns ``rows [T]``, ``cols [T]``, ``face [T]`` and barycentric weights ``bary [T, 3]`` (float64)
    of every covered texel of a ``size x size`` image (see the module docstring for the convention).
    Vectorised over triangles, in chunks bounded by ``max_candidates`` bounding-box texels.
    """
    px = np.empty((len(uvs), 2))
    px[:, 0] = uvs[:, 0] * size  # x: column coordinate, texel centres at +0.5
    px[:, 1] = (1.0 - uvs[:, 1]) * size  # y: row coordinate
    tri = px[faces]  # [F, 3, 2]
    lo = np.floor(tri.min(1) - 0.5).astype(np.int64).clip(0, size - 1)
    hi = np.ceil(tri.max(1) - 0.5).astype(np.int64).clip(0, size - 1)
    w, h = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    counts = w * h
    out_r, out_c, out_f, out_b = [], [], [], []
    start = 0
    cum = np.cumsum(counts)
    while start < len(faces):
        base = cum[start - 1] if start else 0
        stop = int(np.searchsorted(cum, base + max_candidates, side="right"))
        stop = max(stop, start + 1)
        idx = np.arange(start, stop)
        n = counts[idx]
        fid = np.repeat(idx, n)
        offs = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        col = lo[fid, 0] + offs % w[fid]
        row = lo[fid, 1] + offs // w[fid]
        p = np.stack([col + 0.5, row + 0.5], -1)
        a, b, c = tri[fid, 0], tri[fid, 1], tri[fid, 2]
        v0, v1, v2 = b - a, c - a, p - a
        den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
        ok = np.abs(den) > 1e-12
        den = np.where(ok, den, 1.0)
        l1 = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
        l2 = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
        l0 = 1.0 - l1 - l2
        eps = -1e-6
        inside = ok & (l0 >= eps) & (l1 >= eps) & (l2 >= eps)
        out_r.append(row[inside])
        out_c.append(col[inside])
        out_f.append(fid[inside])
        out_b.append(np.stack([l0, l1, l2], -1)[inside])
        start = stop
    return np.concatenate(out_r), np.concatenate(out_c), np.concatenate(out_f), np.concatenate(out_b)


def dilate(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Every texel outside ``mask [S, S]`` takes the colour of its nearest texel inside it.

    This pads every chart island all the way to its neighbours, so bilinear filtering and every
    mip level sample chart colours only (no background bleeding into seams).
    """
    if mask.all() or not mask.any():
        return image
    _, (ri, ci) = distance_transform_edt(~mask, return_indices=True)
    return image[ri, ci]


def bake_texture(uv: UVMesh, color_fn: Callable[[np.ndarray], np.ndarray], size: int,
                 chunk: int = 1 << 18) -> tuple[np.ndarray, float]:
    """Base-colour texture ``[size, size, 3]`` uint8 (sRGB-encoded 8-bit) of ``uv``'s surface.

    Each covered texel's surface point (barycentric interpolation of the triangle's 3D vertices, in
    the source frame) is coloured by ``color_fn(points [P, 3]) -> rgb [P, 3]`` in [0, 1]; islands are
    then dilated (``dilate``). Also returns the fraction of texels covered by charts.
    """
    rows, cols, fid, bary = rasterize_uv(uv.uvs, uv.faces, size)
    pts = np.einsum("tk,tkd->td", bary, uv.vertices[uv.faces[fid]])
    rgb = np.concatenate([np.asarray(color_fn(pts[i:i + chunk]), np.float64).reshape(-1, 3)
                          for i in range(0, len(pts), chunk)]) if len(pts) else np.zeros((0, 3))
    image = np.zeros((size, size, 3), np.float64)
    mask = np.zeros((size, size), bool)
    image[rows, cols] = rgb
    mask[rows, cols] = True
    image = dilate(image, mask)
    return (image.clip(0, 1) * 255).round().astype(np.uint8), float(mask.mean())
