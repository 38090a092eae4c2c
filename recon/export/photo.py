"""Texture colours from the input photos: project every surface point into the posed photos that see it.

A reconstruction's Gaussians hold colours at the model's working resolution (e.g. 128^2 per view);
the photos hold them at full resolution. ``photo_color_fn`` returns a colour callback for
``bake_texture`` (or vertex colours) that, for each surface point, blends the photos in which the
point is visible, weighting each by how squarely it sees the surface, and falls back to another
colour source (the Gaussians) where no photo sees the point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from recon.core.types import Views
from recon.export.extract import ColorFn


@dataclass
class PhotoBakeOptions:
    """How photos are blended; angles are between the surface normal and the direction to the camera."""

    sharpness: float = 6.0  # weight = cos(angle)^sharpness: favours the photo that faces the surface
    min_cos: float = 0.2  # photos seeing the surface at more than ~78 degrees are ignored (smeared texels)
    full_cos: float = 0.35  # from this best-photo cosine (~70 degrees) on, the photos fully replace the fallback
    occlusion_offset: float = 1e-3  # visibility rays start this far (x bbox diagonal) off the surface
    min_mask: float = 0.5  # photo pixels with a foreground mask below this are background, not colour


def photo_color_fn(views: Views, vertices: np.ndarray, faces: np.ndarray, fallback: ColorFn,
                   options: PhotoBakeOptions | None = None, chunk: int = 1 << 17) -> ColorFn:
    """Colour callback ``points [P, 3] -> rgb [P, 3]`` in [0, 1] for points on the mesh ``(vertices, faces)``.

    ``views``: the posed photos (``images [V, H, W, 3]`` in [0, 1], OpenCV ``cameras`` in the mesh's
    frame and units, optional ``masks [V, H, W, 1]``). ``vertices [N, 3]``, ``faces [F, 3]``: the mesh
    being textured (its own occluder: a photo only colours points it sees, tested by casting a ray
    from each point towards the photo's camera with Open3D). Each visible, in-frame, foreground
    sample gets the weight ``cos^sharpness`` of the angle between the surface normal (of the nearest
    triangle) and the direction to the camera; samples are bilinear. Where the best photo's cosine
    is below ``full_cos`` the result blends linearly towards ``fallback(points)``, which it is where
    no photo sees the point within ``min_cos``.
    """
    import open3d as o3d  # lazy: heavy native library, mesh export only

    o = options or PhotoBakeOptions()
    v = np.asarray(vertices, np.float32)
    f = np.asarray(faces, np.uint32)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(v), o3d.core.Tensor(f))
    diag = float(np.linalg.norm(v.max(0) - v.min(0))) if len(v) else 1.0
    offset = o.occlusion_offset * diag
    images = views.images.float().permute(0, 3, 1, 2).contiguous()  # [V, 3, H, W]
    masks = views.masks.float().permute(0, 3, 1, 2).contiguous() if views.masks is not None else None
    cams = views.cameras
    W, H = cams.width, cams.height
    centres = cams.c2w[:, :3, 3].float()  # [V, 3] camera centres, world
    proj = cams.K.float() @ cams.w2c[:, :3].float()  # [V, 3, 4]: world -> (z u, z v, z)

    def colours(points: np.ndarray) -> np.ndarray:
        p = np.ascontiguousarray(points, np.float32).reshape(-1, 3)
        closest = scene.compute_closest_points(o3d.core.Tensor(p))
        normals = torch.from_numpy(closest["primitive_normals"].numpy())  # [P, 3], outward for CCW faces
        pt = torch.from_numpy(p)
        acc = torch.zeros(len(p), 3)
        wsum = torch.zeros(len(p))
        best = torch.full((len(p),), o.min_cos)  # best cosine of a photo that coloured the point
        for i in range(len(cams)):
            to_cam, dist, cos, u, w_, cand = _facing_in_frame(pt, normals, centres[i], proj[i], W, H, o.min_cos)
            idx = cand.nonzero()[:, 0]
            if len(idx) == 0:
                continue
            # occluded when a triangle lies between the point (moved off the surface) and the
            # camera: rays of unnormalised direction origin -> camera centre, hits for t < 1
            origin = pt[idx] + (offset / dist[idx, None]) * to_cam[idx]
            rays = torch.cat([origin, centres[i] - origin], -1).contiguous().numpy()
            blocked = scene.test_occlusions(o3d.core.Tensor(rays), tnear=0.0, tfar=1.0)
            idx = idx[~torch.from_numpy(blocked.numpy().astype(bool))]
            if len(idx) == 0:
                continue
            grid = torch.stack([u[idx] / W * 2 - 1, w_[idx] / H * 2 - 1], -1).view(1, 1, -1, 2)
            rgb = torch.nn.functional.grid_sample(images[i:i + 1], grid, mode="bilinear",
                                                  padding_mode="border", align_corners=False)[0, :, 0].T
            weight = cos[idx].pow(o.sharpness)
            if masks is not None:
                fg = torch.nn.functional.grid_sample(masks[i:i + 1], grid, mode="bilinear",
                                                     padding_mode="border", align_corners=False)[0, 0, 0]
                weight = torch.where(fg >= o.min_mask, weight, torch.zeros(()))
            acc.index_add_(0, idx, weight[:, None] * rgb)
            wsum.index_add_(0, idx, weight)
            best[idx] = torch.maximum(best[idx], torch.where(weight > 0, cos[idx], torch.zeros(())))
        return _blend(acc, wsum, best, p, fallback, o)

    def fn(points: np.ndarray) -> np.ndarray:
        points = np.asarray(points).reshape(-1, 3)
        if len(points) == 0:
            return np.zeros((0, 3), np.float32)
        return np.concatenate([colours(points[s:s + chunk]) for s in range(0, len(points), chunk)])

    return fn


def _facing_in_frame(pt: Tensor, normals: Tensor, centre: Tensor, proj: Tensor, width: int, height: int,
                     min_cos: float) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One photo's view of surface points ``pt [P, 3]`` (world) with ``normals [P, 3]``: the vectors
    to its camera centre ``centre [3]`` and their lengths, the cosine between normal and that
    direction, the pixel coordinates ``u, v`` under ``proj [3, 4]`` (world -> (z u, z v, z)), and
    the candidates ``[P]`` bool: facing it within ``min_cos``, in front of it and inside its
    ``width x height`` frame (occlusion not yet tested)."""
    to_cam = centre - pt
    dist = to_cam.norm(dim=-1).clamp_min(1e-12)
    cos = (to_cam * normals).sum(-1) / dist
    ph = torch.addmm(proj[:, 3], pt, proj[:, :3].T)  # [P, 3] = (z u, z v, z)
    z = ph[:, 2]
    u = ph[:, 0] / z.clamp_min(1e-9)
    v = ph[:, 1] / z.clamp_min(1e-9)
    cand = (cos > min_cos) & (z > 0) & (u >= 0) & (u <= width) & (v >= 0) & (v <= height)
    return to_cam, dist, cos, u, v, cand


def _blend(acc: Tensor, wsum: Tensor, best: Tensor, points: np.ndarray, fallback: ColorFn,
           o: PhotoBakeOptions) -> np.ndarray:
    """Final colours ``[P, 3]`` in [0, 1]: the photos' weighted mean (``acc [P, 3]`` / ``wsum [P]``),
    blended towards ``fallback(points)`` where the best photo's cosine ``best [P]`` is below
    ``full_cos`` (all fallback where no photo coloured the point)."""
    photo = acc / wsum.clamp_min(1e-30)[:, None]
    blend = ((best - o.min_cos) / max(o.full_cos - o.min_cos, 1e-6)).clamp(0, 1)[:, None]
    blend = torch.where(wsum[:, None] > 0, blend, torch.zeros(()))
    out = blend * photo
    need = blend[:, 0] < 1
    if bool(need.any()):
        fb = torch.from_numpy(np.asarray(fallback(points[need.numpy()]), np.float32).reshape(-1, 3))
        out[need] += (1 - blend[need]) * fb
    return out.clamp(0, 1).numpy()
