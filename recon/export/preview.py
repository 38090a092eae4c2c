"""Preview renders of triangle meshes (exported files or in-memory) by ray casting with Open3D.

``render_mesh`` casts one ray per pixel centre (``+0.5``, like the rest of the repo) of OpenCV
``renderer.Cameras`` into an Open3D ``RaycastingScene`` and shades the first hit: texture lookup at
the barycentrically interpolated UVs (bilinear, UV origin bottom-left, ``recon.export.texture``'s
convention), interpolated vertex colours, or a grey Lambert "headlight" picture. ``load_mesh_file``
reads a GLB/OBJ/PLY back into arrays with trimesh, in the file's own frame.

Open3D is imported on first use (a heavy native library).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import trimesh

from recon.core.errors import ReconError
from recon.io.mesh_file import read_trimesh
from renderer import Cameras

GREY = 0.8  # albedo of the "shaded" picture
AMBIENT = 0.25  # its ambient share; the rest is Lambert with the light at the camera


@dataclass
class MeshRender:
    """``render_mesh`` output for C cameras of ``H x W``: ``rgb [C, H, W, 3]`` in [0, 1] (background
    where nothing is hit), ``alpha [C, H, W]`` (1 on hits), ``depth_z [C, H, W]`` camera z in world
    units (0 on misses), ``normals [C, H, W, 3]`` unit world normals facing the camera (0 on misses),
    ``face [C, H, W]`` int64 hit triangle (-1 on misses)."""

    rgb: torch.Tensor
    alpha: torch.Tensor
    depth_z: torch.Tensor
    normals: torch.Tensor
    face: torch.Tensor


@dataclass
class MeshFile:
    """A mesh file's contents in the file's frame: ``vertices [V, 3]`` float64, ``faces [F, 3]``
    int64, ``uvs [V, 2]`` (u right, v up, origin bottom-left) or None, ``texture [S, T, 3]`` uint8
    (first row = top of the image) or None, ``vertex_colors [V, 3]`` in [0, 1] or None."""

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray | None = None
    texture: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None


def load_mesh_file(path: str | Path) -> MeshFile:
    """Read an exported (or any trimesh-readable) mesh file into a ``MeshFile`` (no vertex merging,
    scene graph transforms applied). Raises ``ReconError`` for a missing or unreadable file."""
    tm = read_trimesh(path)
    out = MeshFile(np.asarray(tm.vertices, np.float64), np.asarray(tm.faces, np.int64))
    visual = tm.visual
    if isinstance(visual, trimesh.visual.TextureVisuals):
        mat = visual.material
        image = getattr(mat, "baseColorTexture", None) or getattr(mat, "image", None)
        if visual.uv is not None and image is not None:
            out.uvs = np.asarray(visual.uv, np.float64)
            out.texture = np.asarray(image.convert("RGB"), np.uint8)
    elif isinstance(visual, trimesh.visual.ColorVisuals) and visual.kind == "vertex":
        out.vertex_colors = np.asarray(visual.vertex_colors, np.float64)[:, :3] / 255.0
    return out


def sample_texture(texture: np.ndarray | torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of ``texture [S, T, 3]`` (uint8 or float in [0, 1], first row = top) at
    ``uv [N, 2]`` (origin bottom-left; texel centres at ``(col + 0.5) / T``, ``1 - (row + 0.5) / S``),
    clamped at the border -> ``[N, 3]`` float32 in [0, 1]."""
    tex = torch.from_numpy(np.array(texture))
    tex = tex.float() / 255.0 if tex.dtype == torch.uint8 else tex.float()
    grid = torch.stack([2 * uv[:, 0] - 1, 1 - 2 * uv[:, 1]], -1).float().reshape(1, 1, -1, 2)
    out = F.grid_sample(tex.permute(2, 0, 1)[None], grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].t()


def _rays(cameras: Cameras) -> np.ndarray:
    """``[C, H, W, 6]`` float32 rays through pixel centres; directions scaled to camera z = 1, so the
    hit distance is the z-depth."""
    H, W = cameras.height, cameras.width
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64) + 0.5, torch.arange(W, dtype=torch.float64) + 0.5,
                          indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], -1)  # [H, W, 3]
    Kinv = torch.linalg.inv(cameras.K.double().cpu())  # [C, 3, 3]
    R = cameras.c2w.double().cpu()[:, :3, :3]
    d = torch.einsum("cij,cjk,hwk->chwi", R, Kinv, pix)
    o = cameras.c2w.double().cpu()[:, None, None, :3, 3].expand_as(d)
    return torch.cat([o, d], -1).float().numpy()


def render_mesh(
    vertices,  # [V, 3] world units (same frame as the cameras), array or tensor
    faces,  # [F, 3] int
    cameras: Cameras,  # C OpenCV cameras (c2w, K in pixels, pixel centres at +0.5)
    uvs=None,  # [V, 2] texture coordinates (origin bottom-left) for ``texture``
    texture=None,  # [S, T, 3] uint8 or float in [0, 1], first row = top
    vertex_colors=None,  # [V, 3] in [0, 1]
    shading: str = "auto",  # "auto": texture > vertex colours > shaded; or "texture", "vertex", "shaded"
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    smooth: bool = True,  # shaded picture: interpolated vertex normals (else flat face normals)
) -> MeshRender:
    """Ray-cast ``vertices/faces`` from every camera (Open3D ``RaycastingScene.cast_rays``).

    Colour: ``"texture"`` samples ``texture`` bilinearly at the hit's UV (interpolated with the
    hit's barycentrics, ``primitive_uvs``); ``"vertex"`` interpolates ``vertex_colors``;
    ``"shaded"`` is grey ``0.8 * (0.25 + 0.75 |n . view|)`` (Lambert with a light at the camera).
    No lighting is applied to texture or vertex colours (they are albedo, as baked).
    """
    import open3d as o3d  # lazy: heavy native library, previews only

    v = np.ascontiguousarray(torch.as_tensor(vertices).detach().cpu().double().numpy(), np.float32)
    f = np.ascontiguousarray(torch.as_tensor(faces).detach().cpu().long().numpy(), np.uint32)
    if shading == "auto":
        shading = "texture" if texture is not None and uvs is not None else "vertex" if vertex_colors is not None else "shaded"
    if shading == "texture" and (texture is None or uvs is None):
        raise ReconError("texture shading needs uvs and a texture")
    if shading == "vertex" and vertex_colors is None:
        raise ReconError("vertex shading needs vertex_colors")
    if shading not in ("texture", "vertex", "shaded"):
        raise ReconError(f"shading must be auto, texture, vertex or shaded, got {shading!r}")
    C, H, W = len(cameras), cameras.height, cameras.width
    rays = _rays(cameras).reshape(-1, 6)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(v), o3d.core.Tensor(f))
    ans = scene.cast_rays(o3d.core.Tensor(rays))
    t = torch.from_numpy(ans["t_hit"].numpy().copy())
    hit = torch.isfinite(t)
    fid = torch.from_numpy(ans["primitive_ids"].numpy().astype(np.int64))
    fid = torch.where(hit, fid, torch.full_like(fid, -1))
    bary_uv = torch.from_numpy(ans["primitive_uvs"].numpy().copy())  # point = (1-u-w) a + u b + w c
    idx = hit.nonzero()[:, 0]
    tri = torch.from_numpy(f.astype(np.int64))[fid[idx]]  # [N, 3]
    b = torch.cat([1 - bary_uv[idx].sum(-1, keepdim=True), bary_uv[idx]], -1)  # [N, 3]
    dirs = torch.from_numpy(rays[:, 3:])[idx]
    view = F.normalize(dirs, dim=-1)
    n = torch.from_numpy(ans["primitive_normals"].numpy().copy())[idx]
    n = torch.where(((n * view).sum(-1, keepdim=True) > 0), -n, n)  # face the camera
    rgb = torch.tensor(background, dtype=torch.float32).repeat(C * H * W, 1)
    if shading == "texture":
        uv = (torch.as_tensor(np.asarray(uvs, np.float64)).float()[tri] * b[..., None]).sum(1)
        rgb[idx] = sample_texture(texture, uv)
    elif shading == "vertex":
        vc = torch.as_tensor(np.asarray(vertex_colors, np.float64)).float()
        rgb[idx] = (vc[tri] * b[..., None]).sum(1).clamp(0, 1)
    else:
        shade_n = n
        if smooth:
            vn = torch.from_numpy(np.asarray(trimesh.Trimesh(v, f.astype(np.int64), process=False).vertex_normals,
                                             np.float32))
            sn = F.normalize((vn[tri] * b[..., None]).sum(1), dim=-1)
            shade_n = torch.where(((sn * n).sum(-1, keepdim=True) < 0), -sn, sn)
        lam = (shade_n * -view).sum(-1).clamp_min(0)
        rgb[idx] = (GREY * (AMBIENT + (1 - AMBIENT) * lam))[:, None].expand(-1, 3)
    normals = torch.zeros(C * H * W, 3)
    normals[idx] = n
    depth = torch.where(hit, t, torch.zeros_like(t))
    return MeshRender(rgb.reshape(C, H, W, 3), hit.float().reshape(C, H, W), depth.reshape(C, H, W),
                      normals.reshape(C, H, W, 3), fid.reshape(C, H, W))
