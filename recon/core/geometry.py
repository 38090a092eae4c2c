"""Shared camera-rig geometry: where the cameras look, how big that region is, how to sample images at
projected points, and similarity alignment of two camera rigs (pose metrics).

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


def align_similarity(src: Tensor, dst: Tensor, weights: Tensor | None = None) -> tuple[float, Tensor, Tensor]:
    """Umeyama's least-squares similarity ``dst ≈ scale * R @ src + t`` for ``src, dst [N, 3]``.

    Returns ``(scale, R [3, 3] proper rotation, t [3])`` in ``dst``'s dtype. Needs N >= 3 points
    not on one line for a unique rotation (fewer give a valid but arbitrary one about the line).
    """
    s64, d64 = src.double(), dst.double()
    w = torch.ones(len(s64), dtype=torch.float64) if weights is None else weights.double()
    w = w / w.sum()
    mu_s, mu_d = (w[:, None] * s64).sum(0), (w[:, None] * d64).sum(0)
    xs, xd = s64 - mu_s, d64 - mu_d
    cov = (w[:, None, None] * xd[:, :, None] * xs[:, None, :]).sum(0)  # [3, 3] = E[d s^T]
    U, S, Vh = torch.linalg.svd(cov)
    D = torch.eye(3, dtype=torch.float64)
    if torch.linalg.det(U) * torch.linalg.det(Vh) < 0:
        D[2, 2] = -1
    R = U @ D @ Vh
    var_s = (w * (xs * xs).sum(-1)).sum()
    scale = float((S * D.diagonal()).sum() / var_s) if var_s > 0 else 1.0
    t = mu_d - scale * R @ mu_s
    return scale, R.to(dst.dtype), t.to(dst.dtype)


def _rotation_mean(Rs: Tensor) -> Tensor:
    """Chordal L2 mean of rotations ``[N, 3, 3]`` (projection of their sum onto SO(3))."""
    U, _, Vh = torch.linalg.svd(Rs.sum(0))
    D = torch.eye(3, dtype=Rs.dtype)
    if torch.linalg.det(U @ Vh) < 0:
        D[2, 2] = -1
    return U @ D @ Vh


def camera_errors(pred_c2w: Tensor, gt_c2w: Tensor) -> tuple[Tensor, Tensor]:
    """Pose errors of predicted cameras after the best similarity from the predicted world to the GT world.

    ``pred_c2w, gt_c2w [V, 4, 4]`` (OpenCV). The similarity is Umeyama's fit of the predicted camera
    centres onto the GT ones; when the GT centres are (near) collinear (e.g. V = 2) the rotation is
    taken instead from the cameras' orientations (chordal mean of ``R_gt R_pred^T``) and scale and
    translation from the centres given it.

    Returns ``rot_deg [V]``: angle of ``(R_align R_pred)^T R_gt`` in degrees, and ``trans_err [V]``:
    distance between the aligned and GT centres divided by the GT rig scale (mean distance of the
    GT centres from their centroid; 1 for a single camera).
    """
    P, G = pred_c2w.double(), gt_c2w.double()
    cp, cg = P[:, :3, 3], G[:, :3, 3]
    xg = cg - cg.mean(0)
    rig = float(xg.norm(dim=-1).mean()) if len(cg) > 1 else 1.0
    sv = torch.linalg.svdvals(xg) if len(cg) > 1 else torch.zeros(3, dtype=torch.float64)
    if len(cg) >= 3 and sv[1] > 1e-3 * max(float(sv[0]), 1e-12):
        s, R, t = align_similarity(cp, cg)
    else:
        R = _rotation_mean(G[:, :3, :3] @ P[:, :3, :3].transpose(1, 2))
        xp = (cp - cp.mean(0)) @ R.T
        denom = float((xp * xp).sum())
        s = float((xp * xg).sum() / denom) if denom > 1e-18 else 1.0
        t = cg.mean(0) - s * R @ cp.mean(0)
    aligned = s * cp @ R.T + t
    trans_err = (aligned - cg).norm(dim=-1) / max(rig, 1e-12)
    Rrel = (R @ P[:, :3, :3]).transpose(1, 2) @ G[:, :3, :3]
    cos = (Rrel.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    sin = torch.stack([Rrel[:, 2, 1] - Rrel[:, 1, 2], Rrel[:, 0, 2] - Rrel[:, 2, 0], Rrel[:, 1, 0] - Rrel[:, 0, 1]],
                      -1).norm(dim=-1) / 2
    return torch.rad2deg(torch.atan2(sin, cos)).float(), trans_err.float()
