"""Baseline (b): classical multi-view plane-sweep stereo, unprojected to pixel-aligned Gaussians.

Works at a resolution of at most ``max_size`` pixels (box-downscaled inputs). For every input view as
reference (Collins 1996; the cost volume of MVSNet/MVSplat without the learning):

1. sweep D fronto-parallel planes, spaced uniformly in inverse depth between a near and far depth
   found from the rig (``geometry.depth_range``) unless given; enough planes that neighbouring planes
   move the central reference pixel by about ``plane_step_px`` in the ``top_k``-th closest source;
2. warp every other view onto each plane (``grid_sample`` at the plane-induced correspondence) and
   score it with colour ZNCC over a small window; the score of a (pixel, plane) is the mean of the
   best ``top_k`` source views, which tolerates occlusion in the rest;
3. winner-takes-all over the planes, refined by a parabola through the neighbouring scores;
4. keep a pixel when its score clears ``min_score``, its window has texture, and its depth agrees
   with at least ``min_consistent_views`` other views' depth maps after reprojecting there and back
   (pixel error and relative depth error), as in COLMAP's/MVSNet's fusion;
5. unproject the kept pixels to Gaussians: mean at the 3D point, footprint of one pixel at that
   depth, flattened along the reference optical axis, colour of the reference pixel, fixed opacity.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.geometry.conversions import rotation_matrix_to_quaternion
from torch import Tensor

from recon.core.errors import ReconError
from recon.core.geometry import depth_range, in_image, sample_images, scene_sphere
from recon.core.types import Reconstruction, Views
from renderer import Cameras, Gaussians


@dataclass
class PlaneSweepConfig:
    """Settings of ``PlaneSweepBaseline``."""

    near: float | None = None  # z-depth range of the sweep, world units; None = from the rig geometry
    far: float | None = None
    range_scale: float = 1.5  # growth of the rig's inscribed ball when the range is estimated
    num_depths: int | None = None  # planes per reference view; None = from ``plane_step_px``
    plane_step_px: float = 1.0  # target epipolar shift between neighbouring planes, pixels
    min_depths: int = 32
    max_depths: int = 192
    window: int = 5  # ZNCC window edge, pixels (odd)
    top_k: int = 2  # source views averaged per (pixel, plane): the best k
    min_score: float = 0.5  # ZNCC a kept pixel must reach
    min_std: float = 0.02  # texture: colour standard deviation in the reference window (0..1 images)
    reproj_px: float = 2.0  # geometric consistency: round-trip pixel error ...
    rel_depth_tol: float = 0.02  # ... and relative depth difference
    min_consistent_views: int = 1
    fuse_depths: bool = True  # average the depth with the consistent views' estimates
    use_masks: bool = True  # restrict reference pixels to the masks, when given
    max_size: int | None = 160  # sweep at most this many pixels along the longer side (box-downscaled)
    # Gaussians.
    footprint: float = 0.7  # in-plane standard deviation, in pixel footprints (depth / focal)
    flatten: float = 0.3  # standard deviation along the optical axis relative to the in-plane one
    opacity: float = 0.9
    depth_chunk: int = 16  # planes scored at once (memory bound)


@dataclass
class DepthMaps:
    """Per-view results of the sweep (V input views, at the working resolution H x W).

    Attributes:
        depth_z: [V, H, W] camera z-depth, world units; 0 where not kept.
        keep: [V, H, W] bool, pixels that passed every filter.
        score: [V, H, W] winning ZNCC score in [-1, 1] (before filtering).
        near, far: [V] z-depth range swept per view; planes: planes per view.
    """

    depth_z: Tensor
    keep: Tensor
    score: Tensor
    near: Tensor
    far: Tensor
    planes: list[int]


class PlaneSweepBaseline:
    """Plane-sweep multi-view stereo with a geometric consistency check, as pixel-aligned Gaussians.

    Example (``inputs`` is a ``recon.core.types.Views``)::

        rec = PlaneSweepBaseline().reconstruct(inputs)
        rec.info["kept_fraction"], rec.gaussians.means.shape
    """

    name = "plane-sweep"

    def __init__(self, config: PlaneSweepConfig | None = None):
        self.config = config or PlaneSweepConfig()

    def reconstruct(self, inputs: Views) -> Reconstruction:
        """Depth maps for every input view, filtered and unprojected (world frame of ``inputs.cameras``)."""
        t0 = time.perf_counter()
        maps = self.depth_maps(inputs)
        work = self.working_views(inputs)
        cams = work.cameras.to(device=work.images.device, dtype=torch.float32)
        gaussians = unproject_to_gaussians(maps.depth_z, maps.keep, work.images.float(), cams, self.config)
        kept = maps.depth_z[maps.keep]
        info = {
            "kept_fraction": float(maps.keep.float().mean()),
            "gaussians": len(gaussians),
            "planes": maps.planes,
            "near": [float(x) for x in maps.near],
            "far": [float(x) for x in maps.far],
            "depth_range": [float(kept.min()), float(kept.max())] if len(kept) else [0.0, 0.0],
        }
        return Reconstruction(gaussians=gaussians, seconds=time.perf_counter() - t0, info=info)

    def depth_maps(self, inputs: Views) -> DepthMaps:
        """Plane-sweep depth for every input view with the texture, score, mask and consistency filters.

        Maps are at the working resolution (``working_views``), not necessarily the input's.
        """
        cfg = self.config
        inputs = self.working_views(inputs)
        images = inputs.images.float()
        cams = inputs.cameras.to(device=images.device, dtype=torch.float32)
        V = len(cams)
        if V < 2:
            raise ReconError(f"plane-sweep stereo needs at least 2 input views, got {V}")
        near, far = self._depth_range(cams)
        depths, scores, textured, planes = [], [], [], []
        for r in range(V):
            d, s, t, n = sweep(images, cams, r, float(near[r]), float(far[r]), cfg)
            depths.append(d), scores.append(s), textured.append(t), planes.append(n)
        depth, score = torch.stack(depths), torch.stack(scores)  # [V, H, W]
        good = (score >= cfg.min_score) & torch.stack(textured)
        if cfg.use_masks and inputs.masks is not None:
            good &= inputs.masks[..., 0].to(images.device) > 0.5
        depth = torch.where(good, depth, torch.zeros_like(depth))
        fused, n_consistent = consistency(depth, cams, cfg)
        keep = good & (n_consistent >= cfg.min_consistent_views)
        depth = torch.where(keep, fused if cfg.fuse_depths else depth, torch.zeros_like(depth))
        return DepthMaps(depth, keep, score, near, far, planes)

    def working_views(self, inputs: Views) -> Views:
        """``inputs`` box-downscaled so that the longer side is at most ``max_size`` pixels.

        A 5-pixel window at full resolution often sees too little texture, and the sweep's cost grows
        with pixels x planes; Gaussians from a coarser map are simply larger.
        """
        W, H = inputs.cameras.width, inputs.cameras.height
        if self.config.max_size is None or max(W, H) <= self.config.max_size:
            return inputs
        scale = self.config.max_size / max(W, H)
        w, h = max(1, round(W * scale)), max(1, round(H * scale))

        def down(t: Tensor | None) -> Tensor | None:
            return None if t is None else F.interpolate(t.float().permute(0, 3, 1, 2), size=(h, w), mode="area").permute(0, 2, 3, 1)

        return Views(down(inputs.images), inputs.cameras.resize(w, h), down(inputs.masks), names=list(inputs.names))

    def _depth_range(self, cams: Cameras) -> tuple[Tensor, Tensor]:
        """Per-view (near [V], far [V]) z-depths: the configured values, or estimated from the rig."""
        cfg = self.config
        est_near, est_far = depth_range(cams.to(device="cpu"), scene_sphere(cams.to(device="cpu")), cfg.range_scale)
        near = torch.full_like(est_near, cfg.near) if cfg.near is not None else est_near
        far = torch.full_like(est_far, cfg.far) if cfg.far is not None else est_far
        return near.clamp_min(1e-6), torch.maximum(far, near * 1.01)


def _pixel_rays(cams: Cameras, r: int) -> Tensor:
    """[H*W, 3] camera-frame rays ``K^-1 (u, v, 1)`` of view ``r`` through pixel centres (z = 1)."""
    H, W = cams.height, cams.width
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32, device=cams.device) + 0.5,
                          torch.arange(W, dtype=torch.float32, device=cams.device) + 0.5, indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], -1).reshape(-1, 3)
    return pix @ torch.linalg.inv(cams.K[r]).T


def _relative(cams: Cameras, r: int) -> tuple[Tensor, Tensor]:
    """Reference-camera-to-source-camera rotations [V, 3, 3] and translations [V, 3]."""
    T = cams.w2c @ cams.c2w[r]  # [V, 4, 4] maps reference camera coordinates to each camera's
    return T[:, :3, :3], T[:, :3, 3]


def _box(x: Tensor, k: int) -> Tensor:
    """Mean over a k x k window, ``x [B, C, H, W]``; borders average the pixels that exist."""
    return F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)


def sweep(images: Tensor, cams: Cameras, r: int, near: float, far: float, cfg: PlaneSweepConfig) -> tuple[Tensor, Tensor, Tensor, int]:
    """Winner-takes-all plane sweep for reference view ``r``.

    Args:
        images: [V, H, W, 3] in [0, 1]; cams: their cameras; near, far: z-depth range (world units).
    Returns:
        depth [H, W] z-depth in the reference camera (world units), score [H, W] ZNCC in [-1, 1] of the
        winning plane (mean of the best ``top_k`` sources), textured [H, W] bool, number of planes.
    """
    V, H, W, _ = images.shape
    src = [s for s in range(V) if s != r]
    rays = _pixel_rays(cams, r)  # [HW, 3]
    R, t = _relative(cams, r)
    A = (rays @ R[src].transpose(1, 2)) @ cams.K[src].transpose(1, 2)  # [S, HW, 3]: K_s R_sr ray
    B = (cams.K[src] @ t[src, :, None])[..., 0]  # [S, 3]: K_s t_sr; homogeneous pixel = z A + B
    D = cfg.num_depths or _auto_num_depths(A, B, near, far, cfg)
    inv_depths = torch.linspace(1.0 / near, 1.0 / far, D, device=images.device)  # near plane first

    k = cfg.window
    ref = images[r].permute(2, 0, 1)[None]  # [1, 3, H, W]
    ref_mean = _box(ref, k)
    ref_var = (_box(ref * ref, k) - ref_mean**2).clamp_min(0)
    ref_var_sum = ref_var.sum(1)  # [1, H, W]
    textured = (ref_var_sum[0] / 3).sqrt() >= cfg.min_std
    src_imgs = images[src].permute(0, 3, 1, 2)  # [S, 3, H, W]
    top_k = min(cfg.top_k, len(src))

    score = torch.empty(D, H, W, device=images.device)
    for d0 in range(0, D, cfg.depth_chunk):
        z = 1.0 / inv_depths[d0 : d0 + cfg.depth_chunk]  # [d]
        hom = z[None, :, None, None] * A[:, None] + B[:, None, None, :]  # [S, d, HW, 3]
        uv = hom[..., :2] / hom[..., 2:3].clamp_min(1e-6)
        valid = (hom[..., 2] > 1e-6) & in_image(uv, hom[..., 2], W, H)
        S, d = uv.shape[:2]
        grid = torch.stack([uv[..., 0] / W * 2 - 1, uv[..., 1] / H * 2 - 1], -1).reshape(S, d * H, W, 2)
        warped = F.grid_sample(src_imgs, grid, mode="bilinear", padding_mode="border", align_corners=False)
        warped = warped.reshape(S, 3, d, H, W).permute(0, 2, 1, 3, 4).reshape(S * d, 3, H, W)
        # Channel sums are taken before the box filter where the maths allows (5 filtered channels, not 9).
        w_mean = _box(warped, k)  # [S*d, 3, H, W]
        w_sq = _box((warped * warped).sum(1, keepdim=True), k)[:, 0]
        w_var_sum = (w_sq - (w_mean * w_mean).sum(1)).clamp_min(0)
        cross = _box((warped * ref).sum(1, keepdim=True), k)[:, 0]
        cov_sum = cross - (w_mean * ref_mean).sum(1)  # [S*d, H, W]
        # ZNCC over the window, with the three colour channels as extra samples (each zero-mean).
        zncc = cov_sum / (ref_var_sum * w_var_sum + 1e-8).sqrt()
        zncc = torch.where(valid.reshape(S * d, H, W), zncc, torch.full_like(zncc, -1.0)).reshape(S, d, H, W)
        score[d0 : d0 + d] = zncc.topk(top_k, dim=0).values.mean(0)

    best = score.argmax(0)  # [H, W]
    s0 = score.gather(0, best[None])[0]
    # Parabola through the winner and its neighbours, in plane index (uniform in inverse depth).
    lo, hi = (best - 1).clamp_min(0), (best + 1).clamp_max(D - 1)
    s_lo, s_hi = score.gather(0, lo[None])[0], score.gather(0, hi[None])[0]
    curvature = s_lo - 2 * s0 + s_hi
    interior = (best > 0) & (best < D - 1) & (curvature < -1e-6)
    offset = torch.where(interior, 0.5 * (s_lo - s_hi) / curvature.clamp_max(-1e-6), torch.zeros_like(s0)).clamp(-0.5, 0.5)
    step = (inv_depths[-1] - inv_depths[0]) / max(D - 1, 1)
    inv = inv_depths[0] + (best.float() + offset) * step
    # A winner on the first or last plane is usually a surface outside the range: mark it as low score.
    s0 = torch.where((best == 0) | (best == D - 1), torch.full_like(s0, -1.0), s0)
    return 1.0 / inv, s0, textured, D


def _auto_num_depths(A: Tensor, B: Tensor, near: float, far: float, cfg: PlaneSweepConfig) -> int:
    """Planes needed so that neighbours shift the central reference pixel by ~``plane_step_px`` in
    the ``top_k``-th closest source (the widest baselines would need many more planes, and rarely
    hold the best matches)."""
    centre = A.shape[1] // 2
    ends = [z * A[:, centre] + B for z in (near, far)]
    uv = [e[:, :2] / e[:, 2:3].clamp_min(1e-6) for e in ends]
    lengths = (uv[0] - uv[1]).norm(dim=-1).sort().values  # [S] epipolar segment per source, pixels
    length = float(lengths[min(cfg.top_k, len(lengths)) - 1])
    return int(min(max(math.ceil(length / cfg.plane_step_px), cfg.min_depths), cfg.max_depths))


def consistency(depth: Tensor, cams: Cameras, cfg: PlaneSweepConfig) -> tuple[Tensor, Tensor]:
    """Multi-view geometric check of depth maps ``depth [V, H, W]`` (0 = no estimate).

    For each pixel of view r: unproject, project into view s, read s's depth there (nearest),
    unproject that and project back into r. Consistent when the round trip lands within ``reproj_px``
    and the depth agrees within ``rel_depth_tol``.

    Returns (fused depth [V, H, W]: the mean of r's depth and the consistent views' estimates,
    count [V, H, W] of consistent other views).
    """
    V, H, W = depth.shape
    fused, counts = depth.clone(), torch.zeros_like(depth)
    for r in range(V):
        rays = _pixel_rays(cams, r)  # [HW, 3]
        d_r = depth[r].reshape(-1)
        pts_r = rays * d_r[:, None]  # reference camera frame
        total, n = d_r.clone(), torch.zeros_like(d_r)
        R, t = _relative(cams, r)
        for s in range(V):
            if s == r:
                continue
            p_s = pts_r @ R[s].T + t[s]
            uv_s = (p_s @ cams.K[s].T)
            uv_s = uv_s[:, :2] / uv_s[:, 2:3].clamp_min(1e-6)
            ok = in_image(uv_s, p_s[:, 2], W, H) & (d_r > 0)
            d_s = sample_images(depth[s][None, :, :, None], uv_s[None], mode="nearest")[0, :, 0]
            ok &= d_s > 0
            # Back from s: the 3D point s sees at that pixel, expressed in r's camera frame.
            ray_s = torch.cat([uv_s, torch.ones_like(uv_s[:, :1])], -1) @ torch.linalg.inv(cams.K[s]).T
            q_s = ray_s * d_s[:, None]
            q_r = (q_s - t[s]) @ R[s]  # inverse rigid transform (R orthonormal)
            back = q_r @ cams.K[r].T
            uv_back = back[:, :2] / back[:, 2:3].clamp_min(1e-6)
            pix_err = (uv_back - _pixel_rays_uv(H, W, depth.device)).norm(dim=-1)
            rel = (q_r[:, 2] - d_r).abs() / d_r.clamp_min(1e-6)
            ok &= (pix_err < cfg.reproj_px) & (rel < cfg.rel_depth_tol)
            total += torch.where(ok, q_r[:, 2], torch.zeros_like(d_r))
            n += ok.float()
        fused[r] = (total / (1 + n)).reshape(H, W)
        counts[r] = n.reshape(H, W)
    return fused, counts


def _pixel_rays_uv(H: int, W: int, device) -> Tensor:
    """[H*W, 2] pixel-centre coordinates (u, v), row-major."""
    v, u = torch.meshgrid(torch.arange(H, device=device) + 0.5, torch.arange(W, device=device) + 0.5, indexing="ij")
    return torch.stack([u, v], -1).reshape(-1, 2).float()


def unproject_to_gaussians(depth: Tensor, keep: Tensor, images: Tensor, cams: Cameras, cfg: PlaneSweepConfig) -> Gaussians:
    """One Gaussian per kept pixel (``keep [V, H, W]``) at z-depth ``depth [V, H, W]``, world frame.

    Scales are ``footprint * z / f`` in the image plane and ``flatten`` times that along the
    reference optical axis; the local axes are the reference camera's, so the Gaussian is a disc
    facing that camera. Colour is the reference pixel's (SH DC only).
    """
    means, scales, quats, colours = [], [], [], []
    for r in range(len(cams)):
        sel = keep[r].reshape(-1)
        if not sel.any():
            continue
        z = depth[r].reshape(-1)[sel]
        p_cam = _pixel_rays(cams, r)[sel] * z[:, None]
        c2w = cams.c2w[r]
        means.append(p_cam @ c2w[:3, :3].T + c2w[:3, 3])
        f = 0.5 * (cams.K[r, 0, 0] + cams.K[r, 1, 1])
        s = cfg.footprint * z / f
        scales.append(torch.stack([s, s, cfg.flatten * s], -1))
        q = rotation_matrix_to_quaternion(c2w[:3, :3].contiguous()[None])[0]  # wxyz, camera-to-world
        quats.append(q.expand(len(z), 4))
        colours.append(images[r].reshape(-1, 3)[sel])
    if not means:
        return Gaussians.empty().to(device=images.device)
    means = torch.cat(means)
    opacities = torch.full((len(means),), cfg.opacity, device=means.device)
    return Gaussians.from_rgb(means, torch.cat(colours), torch.cat(scales), opacities, torch.cat(quats))
