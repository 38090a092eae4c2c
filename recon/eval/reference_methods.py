"""Trivial reference methods: a floor for every protocol and an oracle check of the unprojection maths.

- ``MeanColorMethod`` ("mean-color"): one huge, nearly opaque Gaussian of the mean input colour
  around the point the input cameras look at, so that every target view renders (almost) that
  one colour. The best constant image for the inputs' pixels: any method should beat it.
- ``GroundTruthDepthMethod`` ("gt-depth"): pixel-aligned Gaussians unprojected from the inputs'
  ground-truth z-depth (synthetic protocols only). It is an oracle: it declares
  ``uses_ground_truth_depth`` and the runner gives it the inputs with depth and records that.
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

from recon.core.errors import ReconError
from recon.core.types import Reconstruction, Views
from renderer import Cameras, Gaussians


def look_at_point(cameras: Cameras) -> Tensor:
    """``[3]`` least-squares point closest to all optical axes (where a rig looks); the mean
    centre when the axes are (nearly) parallel."""
    c2w = cameras.c2w.double()
    o, d = c2w[:, :3, 3], torch.nn.functional.normalize(c2w[:, :3, 2], dim=-1)
    P = torch.eye(3, dtype=o.dtype) - d[:, :, None] * d[:, None, :]  # projectors orthogonal to each axis
    A, b = P.sum(0), (P @ o[:, :, None]).sum(0)[:, 0]
    if torch.linalg.matrix_rank(A, atol=1e-6) < 3:
        return o.mean(0).to(cameras.c2w.dtype)
    return torch.linalg.solve(A, b).to(cameras.c2w.dtype)


class MeanColorMethod:
    """The floor: renders the mean input colour everywhere (one Gaussian, 10x the rig's size)."""

    name = "mean-color"

    def reconstruct(self, inputs: Views) -> Reconstruction:
        t0 = time.perf_counter()
        cams = inputs.cameras
        centre = look_at_point(cams)
        radius = float((cams.centers - centre).norm(dim=-1).max())
        colour = inputs.images.reshape(-1, 3).float().mean(0)
        dev, dt = inputs.images.device, inputs.images.dtype
        g = Gaussians.from_rgb(
            centre.to(dev, dt)[None],
            colour.to(dev, dt)[None],
            torch.full((1, 3), 10.0 * max(radius, 1e-3), device=dev, dtype=dt),
            torch.tensor([0.999], device=dev, dtype=dt),
        )
        return Reconstruction(g, None, time.perf_counter() - t0, {"mean_color": [round(float(c), 5) for c in colour]})


def unproject_depth(
    cameras: Cameras,  # V cameras of size W x H
    depth_z: Tensor,  # [V, H, W, 1] camera z-depth, world units, 0 = no surface
    stride: int = 1,  # use every stride-th pixel in x and y
) -> tuple[Tensor, Tensor, Tensor]:
    """World points of pixel centres with depth: ``(points [V, h, w, 3], valid [V, h, w], footprint [V, h, w])``.

    ``footprint`` is the world size of one (strided) pixel at that depth, ``stride * z / f``.
    """
    H, W = depth_z.shape[1:3]
    dev, dt = depth_z.device, depth_z.dtype
    v, u = torch.meshgrid(torch.arange(0, H, stride, device=dev, dtype=dt) + 0.5,
                          torch.arange(0, W, stride, device=dev, dtype=dt) + 0.5, indexing="ij")
    z = depth_z[:, ::stride, ::stride, 0]
    K = cameras.K.to(dev, dt)
    fx, fy, cx, cy = (K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2])
    x = (u[None] - cx[:, None, None]) / fx[:, None, None] * z
    y = (v[None] - cy[:, None, None]) / fy[:, None, None] * z
    p_cam = torch.stack([x, y, z], dim=-1)  # OpenCV camera frame
    c2w = cameras.c2w.to(dev, dt)
    points = p_cam @ c2w[:, None, :3, :3].transpose(-1, -2) + c2w[:, None, None, :3, 3]
    footprint = stride * z / (0.5 * (fx + fy))[:, None, None]
    return points, z > 0, footprint


class GroundTruthDepthMethod:
    """Oracle: one isotropic Gaussian per input pixel with GT depth (inside the mask, if any).

    Scale is 0.7 x the pixel footprint (neighbours overlap, no holes), opacity 0.99, colour the
    pixel's. ``max_gaussians`` bounds the count by striding pixels (footprint grows to match).
    ``stride`` fixes the stride instead: one Gaussian per ``stride``-th pixel in x and y, the
    ceiling of a pixel-aligned model that works at ``1 / stride`` of the input resolution
    (``bench/oracle_ceiling.py``).
    """

    name = "gt-depth"
    uses_ground_truth_depth = True

    def __init__(self, max_gaussians: int = 200_000, stride: int | None = None):
        if stride is not None and (isinstance(stride, bool) or not isinstance(stride, int) or stride < 1):
            raise ReconError(f"stride must be a whole number >= 1, not {stride!r}")
        self.max_gaussians = max_gaussians
        self.stride = stride

    def reconstruct(self, inputs: Views) -> Reconstruction:
        if inputs.depth_z is None:
            raise ReconError("method gt-depth needs inputs with ground-truth depth (synthetic protocols only)")
        t0 = time.perf_counter()
        depth = inputs.depth_z.float()
        fg = (depth[..., 0] > 0) if inputs.masks is None else (depth[..., 0] > 0) & (inputs.masks[..., 0] > 0.5)
        stride = self.stride or max(1, math.ceil(math.sqrt(int(fg.sum()) / self.max_gaussians)))
        points, valid, footprint = unproject_depth(inputs.cameras, depth, stride)
        keep = valid & fg[:, ::stride, ::stride]
        rgb = inputs.images.float()[:, ::stride, ::stride][keep]
        n = int(keep.sum())
        g = Gaussians.from_rgb(
            points[keep],
            rgb,
            (0.7 * footprint[keep])[:, None].expand(n, 3).contiguous(),
            torch.full((n,), 0.99, device=depth.device),
        )
        return Reconstruction(g, None, time.perf_counter() - t0, {"stride": stride, "gaussians": n})
