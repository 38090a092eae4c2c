"""Camera-rig geometry the baselines share: where the cameras look, how big that region is, and how
to sample images at projected points.

Everything is in the input's world frame and units; cameras are OpenCV (x right, y down, z forward),
pixel centres at +0.5 (``renderer.cameras``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from renderer import Cameras


@dataclass
class SceneSphere:
    """A ball that every input camera sees whole, found from the camera poses alone.

    Attributes:
        center: [3] world point nearest all optical axes (least squares).
        radius: world units; the largest ball around ``center`` inside every view frustum.
        converged: False when the optical axes do not meet in front of the cameras (forward-facing
            rigs); ``center`` and ``radius`` are then a rough guess that callers should let users override.
    """

    center: Tensor
    radius: float
    converged: bool


def focus_point(cameras: Cameras) -> tuple[Tensor, bool]:
    """World point ``[3]`` nearest every optical axis in the least-squares sense, and whether it is
    usable (in front of every camera).

    Minimises ``sum_i |(I - d_i d_i^T)(x - o_i)|^2`` over the axes ``o_i + t d_i``; a tiny ridge toward
    the mean camera centre keeps the solve defined when the axes are parallel.
    """
    c2w = cameras.c2w.double()
    o, d = c2w[:, :3, 3], F.normalize(c2w[:, :3, 2], dim=-1)
    eye = torch.eye(3, dtype=o.dtype, device=o.device)
    P = eye - d[:, :, None] * d[:, None, :]  # [C, 3, 3] projectors onto each axis' normal plane
    spread = float((o - o.mean(0)).norm(dim=-1).max().clamp_min(1e-6))
    ridge = 1e-6
    A = P.sum(0) + ridge * eye
    b = (P @ o[:, :, None]).sum(0)[:, 0] + ridge * o.mean(0)
    x = torch.linalg.solve(A, b)
    depths = ((x - o) * d).sum(-1)
    ok = bool((depths > 1e-3 * spread).all())
    if not ok:
        # Forward-facing rig: look a few rig-widths ahead along the mean viewing direction.
        x = o.mean(0) + F.normalize(d.mean(0), dim=0) * 3.0 * spread
    return x.to(cameras.c2w.dtype), ok


def frustum_plane_normals(cameras: Cameras) -> Tensor:
    """Inward unit normals ``[C, 4, 3]`` (camera frame) of the four side planes of each frustum.

    The planes pass through the camera centre, so a camera-frame point ``p`` is inside side ``k``
    by the signed distance ``n_k . p``.
    """
    W, H = cameras.width, cameras.height
    corners_px = torch.tensor([[0.0, 0, 1], [W, 0, 1], [W, H, 1], [0, H, 1]], dtype=cameras.K.dtype, device=cameras.K.device)
    corners = corners_px @ torch.linalg.inv(cameras.K).transpose(1, 2)  # [C, 4, 3] rays through corners
    n = torch.linalg.cross(corners, corners.roll(-1, dims=1), dim=-1)
    n = F.normalize(n, dim=-1)
    # Orient inward: the optical axis (0, 0, 1) lies inside every side plane.
    return n * torch.where(n[..., 2:3] >= 0, 1.0, -1.0)


def scene_sphere(cameras: Cameras) -> SceneSphere:
    """The ball around ``focus_point`` that fits inside every camera's frustum (see ``SceneSphere``)."""
    center, ok = focus_point(cameras)
    w2c = cameras.w2c.to(center.dtype)
    p_cam = (w2c[:, :3, :3] @ center + w2c[:, :3, 3])  # [C, 3]
    normals = frustum_plane_normals(cameras).to(center.dtype)
    r_each = (normals * p_cam[:, None, :]).sum(-1).amin(-1)  # [C] distance to the nearest side plane
    radius = float(r_each.min())
    if not ok or radius <= 0:
        # The centre is outside some frustum: fall back to a ball a quarter of the median depth wide.
        radius = 0.25 * float(p_cam[:, 2].abs().median().clamp_min(1e-6))
        ok = False
    return SceneSphere(center, radius, ok)


def depth_range(cameras: Cameras, sphere: SceneSphere, scale: float = 1.5) -> tuple[Tensor, Tensor]:
    """Per-camera z-depth range ``(near [C], far [C])`` covering the ball ``sphere`` grown by ``scale``.

    The ball from ``scene_sphere`` is inscribed in the frusta, while objects usually reach towards
    the image corners, hence the default growth; ``near`` never drops below 5% of the centre's depth.
    """
    w2c = cameras.w2c.to(sphere.center.dtype)
    z = (w2c[:, :3, :3] @ sphere.center + w2c[:, :3, 3])[:, 2]
    r = sphere.radius * scale
    near = torch.maximum(z - r, 0.05 * z)
    return near, z + r


def sample_images(images: Tensor, uv: Tensor, mode: str = "bilinear") -> Tensor:
    """Sample ``images [C, H, W, D]`` at continuous pixel coordinates ``uv [C, P, 2]``.

    Returns ``[C, P, D]``; points outside the image get zeros (callers check ``in_image``).
    """
    H, W = images.shape[1:3]
    grid = torch.stack([uv[..., 0] / W * 2 - 1, uv[..., 1] / H * 2 - 1], dim=-1)[:, :, None, :]  # [C, P, 1, 2]
    out = F.grid_sample(images.permute(0, 3, 1, 2), grid.to(images.dtype), mode=mode, padding_mode="zeros", align_corners=False)
    return out[..., 0].permute(0, 2, 1)


def in_image(uv: Tensor, depth_z: Tensor, width: int, height: int) -> Tensor:
    """Bool ``[...]``: projected points ``uv [..., 2]`` in front of the camera and inside the image."""
    u, v = uv[..., 0], uv[..., 1]
    return (depth_z > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
