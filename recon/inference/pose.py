"""Cameras from pointmaps (the unposed path).

A pointmap gives, for every pixel of every view, a 3D point in the first camera's frame (OpenCV
axes: x right, y down, z forward) at some unknown but shared scale. Cameras follow from it:

- View 0 is the world origin (``c2w[0] = I``); its points are in its own camera frame, so its
  focal length is the one number that maps them onto their pixels: ``u - cx = f x / z`` and
  ``v - cy = f y / z`` with the principal point at the image centre and square pixels. The
  robust estimate is the exact minimiser of the weighted L1 residual (for one parameter, a weighted
  median of the per-pixel ratios, breakdown point 50%, what IRLS/Weiszfeld iterations converge
  to), followed by weighted least squares over the pixels it explains within ``max_error_px``.
- Every other view is a 2D-3D correspondence problem: its pixel centres against its points in
  view 0's frame. Pose and focal length come from pycolmap's absolute pose solver
  (``estimate_and_refine_absolute_pose``: LO-RANSAC over a minimal pose-and-focal solver, then
  non-linear refinement of pose and focal on the inliers, COLMAP's pixel convention, which is ours),
  with a fixed RANSAC seed so results are repeatable. This is the PnP route that DUSt3R-style
  methods take for views whose points live in another camera's frame; it needs no focal sweep
  and rejects gross outliers that a Procrustes fit would absorb.

Confidence selects the pixels (``conf >= min_conf``, or the most confident ones when too few pass)
and weights view 0's focal fit. Units of the returned translations are those of the pointmap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from renderer.cameras import intrinsics_matrix


@dataclass
class PointmapCameras:
    """Cameras recovered from a pointmap of V views (world = first camera's frame, pointmap units).

    Attributes:
        c2w: [V, 4, 4] camera-to-world, OpenCV axes; ``c2w[0]`` is the identity.
        K: [V, 3, 3] intrinsics in pixels of a ``width`` x ``height`` image (principal point at the
            image centre, square pixels).
        width, height: image size in pixels.
        reproj_px: [V] median reprojection error of the inlier points, pixels (for view 0: the
            residual of the focal fit).
        inlier_ratio: [V] fraction of the selected points within the inlier threshold (0 where no
            camera was found at all).
        num_points: [V] points selected by confidence.
        solved: [V] bool; False where the solver failed or explained fewer than ``min_inlier_ratio``
            of the points. Then ``c2w`` is the identity and ``K`` has view 0's focal length (or,
            when view 0 failed too, one long side: about 53 degrees across it). View 0's pose is
            the identity by definition; ``solved[0]`` speaks of its focal length only.
    """

    c2w: Tensor
    K: Tensor
    width: int
    height: int
    reproj_px: Tensor
    inlier_ratio: Tensor
    num_points: Tensor
    solved: Tensor


def select_points(conf: Tensor, valid: Tensor, min_conf: float, min_points: int) -> Tensor:
    """Pixels to use ``[H, W]`` bool: ``valid & conf >= min_conf``, or, when fewer than ``min_points``
    pass, the ``min_points`` most confident valid pixels."""
    keep = valid & (conf >= min_conf)
    if int(keep.sum()) >= min_points:
        return keep
    n = min(min_points, int(valid.sum()))
    if n == 0:
        return keep
    score = torch.where(valid, conf, torch.full_like(conf, -math.inf)).reshape(-1)
    out = torch.zeros_like(keep).reshape(-1)
    out[score.topk(n).indices] = True
    return out.reshape(keep.shape)


def _weighted_median(values: Tensor, weights: Tensor) -> Tensor:
    order = values.argsort()
    cw = weights[order].cumsum(0)
    i = int(torch.searchsorted(cw, 0.5 * cw[-1]))
    return values[order][min(i, len(values) - 1)]


def focal_from_own_points(
    points: Tensor,  # [P, 3] points in the camera's own frame (z forward)
    uv: Tensor,  # [P, 2] their pixel coordinates (pixel centres at +0.5)
    weights: Tensor,  # [P] non-negative (e.g. confidence)
    center: tuple[float, float],  # principal point (cx, cy), pixels
    max_error_px: float,
) -> tuple[float, float, float]:
    """Focal length (pixels) of a camera that sees its own ``points`` at ``uv``: robust L1 start
    (weighted median), then weighted least squares over the inliers.

    Returns ``(focal, median inlier residual px, inlier ratio)``; ``focal`` is NaN when no point
    lies in front of the camera.
    """
    p, w = points.double(), weights.double()
    front = p[:, 2] > 1e-9
    if int(front.sum()) < 2:
        return math.nan, math.nan, 0.0
    p, w, uv = p[front], w[front], uv.double()[front]
    a = (p[:, :2] / p[:, 2:3]).reshape(-1)  # [2P] normalised coordinates
    d = (uv - torch.tensor(center, dtype=torch.float64)).reshape(-1)  # [2P] pixel offsets
    ww = w.repeat_interleave(2)
    use = (a.abs() > 1e-9) & (ww > 0)
    if not use.any():
        return math.nan, math.nan, 0.0
    # argmin_f sum w |d - f a| = weighted median of d / a with weights w |a| (exact L1 minimiser).
    f = float(_weighted_median(d[use] / a[use], ww[use] * a[use].abs()))
    for _ in range(3):  # least squares on the points the current estimate explains
        r = (d - f * a).reshape(-1, 2).norm(dim=-1)
        inl = (r <= max_error_px).repeat_interleave(2)
        if int(inl.sum()) < 2:
            break
        f = float((ww * a * d)[inl].sum() / (ww * a * a)[inl].sum().clamp_min(1e-12))
    r = (d - f * a).reshape(-1, 2).norm(dim=-1)
    inl = r <= max_error_px
    med = float(r[inl].median()) if inl.any() else math.nan
    return f, med, float(inl.float().sum()) / int(front.numel())


def _absolute_pose(uv: np.ndarray, xyz: np.ndarray, focal0: float, width: int, height: int, max_error_px: float,
                   seed: int) -> tuple[np.ndarray, float, np.ndarray] | None:
    """pycolmap LO-RANSAC pose + focal and refinement; ``(w2c [3, 4], focal, inlier mask)`` or None."""
    import pycolmap  # lazy: heavy native module

    cam = pycolmap.Camera(model="SIMPLE_PINHOLE", width=width, height=height, params=[focal0, width / 2, height / 2])
    est = pycolmap.AbsolutePoseEstimationOptions()
    est.estimate_focal_length = True
    est.ransac.max_error = max_error_px
    est.ransac.random_seed = seed
    ref = pycolmap.AbsolutePoseRefinementOptions()
    ref.refine_focal_length = True
    try:
        res = pycolmap.estimate_and_refine_absolute_pose(uv, xyz, cam, est, ref)
    except (RuntimeError, ValueError):  # degenerate input (e.g. all points equal) counts as no solution
        return None
    if res is None:
        return None
    return np.asarray(res["cam_from_world"].matrix()), float(cam.params[0]), np.asarray(res["inlier_mask"], bool)


def cameras_from_pointmaps(
    points: Tensor,  # [V, H, W, 3] in the first camera's frame (OpenCV axes), any shared scale
    conf: Tensor,  # [V, H, W] confidence, higher is better (the pointmap head's is >= 1)
    width: int,  # image size the pointmap's pixels belong to
    height: int,
    min_conf: float = 1.5,
    valid: Tensor | None = None,  # [V, H, W] bool pixels allowed at all (default: all finite points)
    min_points: int = 64,  # fall back to the most confident pixels when fewer pass ``min_conf``
    max_error_px: float | None = None,  # inlier threshold; default 1% of the long side, >= 1 px
    focal_range: tuple[float, float] = (0.1, 20.0),  # plausible focal lengths, in long sides
    min_inlier_ratio: float = 0.2,  # a view whose camera explains fewer of its points is not solved
    seed: int = 0,
) -> PointmapCameras:
    """Recover every view's camera from a pointmap (see the module docstring for the method).

    Pixel ``(i, j)`` of the pointmap is the image pixel centred at ``(j + 0.5, i + 0.5)`` of a
    ``width`` x ``height`` image (the pointmap may be at that resolution only). World frame =
    camera 0's frame; translations in the pointmap's units.

    Example::

        >>> cams = cameras_from_pointmaps(out.pointmap[0], out.conf[0], W, H)  # doctest: +SKIP
        >>> cams.c2w.shape, cams.K.shape
        (torch.Size([V, 4, 4]), torch.Size([V, 3, 3]))
    """
    V, H, W, _ = points.shape
    if (H, W) != (height, width):
        raise ValueError(f"pointmap is {W}x{H} but the image size is {width}x{height}")
    pts = points.detach().double().cpu()
    cf = conf.detach().double().cpu()
    ok = torch.isfinite(pts).all(-1) & torch.isfinite(cf)
    if valid is not None:
        ok &= valid.cpu().bool()
    long_side = max(width, height)
    thr = max_error_px if max_error_px is not None else max(1.0, 0.01 * long_side)
    f_lo, f_hi = focal_range[0] * long_side, focal_range[1] * long_side
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64) + 0.5, torch.arange(W, dtype=torch.float64) + 0.5,
                          indexing="ij")
    uv_all = torch.stack([u, v], -1)  # [H, W, 2]

    c2w = torch.eye(4, dtype=torch.float64).repeat(V, 1, 1)
    focal = torch.full((V,), math.nan, dtype=torch.float64)
    reproj = torch.full((V,), math.nan, dtype=torch.float64)
    inlier_ratio = torch.zeros(V, dtype=torch.float64)
    num_points = torch.zeros(V, dtype=torch.long)
    solved = torch.zeros(V, dtype=torch.bool)

    for i in range(V):
        sel = select_points(cf[i], ok[i], min_conf, min_points)
        num_points[i] = int(sel.sum())
        if i == 0:
            f, med, ratio = focal_from_own_points(pts[0][sel], uv_all[sel], cf[0][sel], (width / 2, height / 2), thr)
            inlier_ratio[0] = ratio
            if math.isfinite(f) and f_lo <= f <= f_hi and ratio >= min_inlier_ratio:
                focal[0], reproj[0], solved[0] = f, med, True
            continue
        if num_points[i] < 6:
            continue
        f0 = float(focal[0]) if solved[0] else long_side
        res = _absolute_pose(uv_all[sel].numpy(), pts[i][sel].numpy(), f0, width, height, thr, seed)
        if res is None or not (math.isfinite(res[1]) and f_lo <= res[1] <= f_hi):
            continue
        w2c, f, inl = res
        inlier_ratio[i] = float(inl.mean())
        if inlier_ratio[i] < min_inlier_ratio:
            continue
        w2c_t = torch.eye(4, dtype=torch.float64)
        w2c_t[:3] = torch.from_numpy(w2c)
        c2w[i] = torch.linalg.inv(w2c_t)
        # Reprojection residuals of the inliers under the refined camera.
        p_cam = pts[i][sel] @ w2c_t[:3, :3].T + w2c_t[:3, 3]
        proj = f * p_cam[:, :2] / p_cam[:, 2:3] + torch.tensor([width / 2, height / 2], dtype=torch.float64)
        r = (proj - uv_all[sel]).norm(dim=-1)[torch.from_numpy(inl)]
        focal[i], reproj[i], solved[i] = f, float(r.median()) if len(r) else math.nan, True
    fallback = float(focal[0]) if solved[0] else float(long_side)
    focal = torch.where(solved, focal, torch.full_like(focal, fallback))
    K = intrinsics_matrix(focal, focal, width / 2, height / 2, dtype=torch.float64)
    dt = points.dtype if points.dtype.is_floating_point else torch.float32
    return PointmapCameras(c2w.to(dt), K.to(dt), width, height, reproj.float(), inlier_ratio.float(), num_points,
                           solved)
