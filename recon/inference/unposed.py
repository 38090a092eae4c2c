"""Unposed inference: images without cameras -> recovered cameras and Gaussians placed with them.

The model predicts Gaussians and a pointmap (every pixel's 3D point in the first camera's frame);
the pointmap is normalised (``normalise_pointmap``), cameras are solved from it
(``recon.inference.pose``), and each pixel's Gaussian is placed on its recovered camera's ray at
the z-depth of its point (``place_gaussians``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from recon.core.errors import ReconError
from recon.core.resize import resize_images, resize_masks
from recon.core.types import Reconstruction
from recon.inference.pose import PointmapCameras, cameras_from_pointmaps, select_points
from recon.inference.settings import InferenceSettings, autocast, working_size
from recon.models import ModelConfig, ReconModel
from recon.models.adapter import PixelGaussians, gaussians_from_raw
from renderer import Cameras


@dataclass
class UnposedPrediction:
    """The unposed path's result at the model's working resolution ``w x h``.

    World frame: the first camera's (OpenCV axes, ``cameras.c2w[0] = I``). Units: the predicted
    pointmap divided by the mean distance of its confident points (``conf >= pose_min_conf``, all
    views) from the first camera's centre, i.e. that mean distance is 1 (the normalisation the
    pointmap loss trains with). Gaussians sit on the recovered cameras' pixel rays at the z-depth
    of each pixel's predicted point in its recovered camera.

    Attributes:
        gaussians: per-pixel Gaussians ``[1, V, h, w, ...]``; opacity 0 for pixels whose point lies
            behind its camera and for views after the first whose camera was not recovered.
        cameras: V recovered cameras of ``w x h``.
        pose: the pose solver's output and statistics.
        points: [V, h, w, 3] normalised pointmap, world frame. conf: [V, h, w] its confidence.
    """

    gaussians: PixelGaussians
    cameras: Cameras
    pose: PointmapCameras
    points: Tensor
    conf: Tensor


def check_images(images: Tensor, masks: Tensor | None = None) -> Tensor:
    """``images`` when they are ``[V, H, W, 3]`` with V >= 1 and ``masks`` (if any) match their
    ``V, H, W``; else a one-line ``ReconError``."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] < 1:
        raise ReconError(f"unposed input must be images [V, H, W, 3] with V >= 1, got {tuple(images.shape)}")
    if masks is not None and (masks.shape[0] != images.shape[0] or tuple(masks.shape[1:3]) != tuple(images.shape[1:3])):
        raise ReconError(f"masks {tuple(masks.shape)} do not match images {tuple(images.shape)}")
    return images


def normalise_pointmap(points: Tensor, conf: Tensor, valid: Tensor, min_conf: float) -> Tensor:
    """``points [V, h, w, 3]`` divided by the mean distance of the selected points (``valid`` and
    ``conf >= min_conf``, or the 64 most confident valid ones; ``select_points``) from the first
    camera's centre, the origin: the normalisation the pointmap loss trains with."""
    keep = select_points(conf, valid, min_conf, min_points=64)
    scale = points[keep].norm(dim=-1).mean() if keep.any() else torch.tensor(1.0)
    return points / scale.clamp_min(1e-6)


def place_gaussians(cfg: ModelConfig, raw: Tensor, img: Tensor, points: Tensor, pose: PointmapCameras,
                    settings: InferenceSettings, device: torch.device) -> PixelGaussians:
    """Per-pixel Gaussians from the Gaussian head's ``raw`` output, on the rays of the recovered
    cameras (``pose``, first camera's frame) at the z-depth of each pixel's point ``points
    [V, h, w, 3]`` in its camera. ``img [1, V, 3, h, w]``: the working-size input colours.
    Pixels whose point is behind their camera, and views after the first without a solved camera,
    get opacity 0; scales are multiplied by ``scale_gain``."""
    V, h, w, _ = points.shape
    c2w, K = pose.c2w.float(), pose.K.float()
    w2c = torch.linalg.inv(c2w)
    z = (points @ w2c[:, None, :3, :3].transpose(-1, -2) + w2c[:, None, None, :3, 3])[..., 2]  # [V, h, w]
    front = z > 0
    # Points behind their camera would get a negative depth: clamp to a small positive one (and
    # hide them below), relative to the scene's median depth.
    z_min = 1e-3 * (z[front].median() if front.any() else torch.tensor(1.0))
    depth = z.clamp_min(float(z_min))
    inv_unused = torch.ones(V, 1, h, w, device=device)  # the coarse depth is replaced by ``depth_override``
    pg = gaussians_from_raw(cfg.adapter, raw.float(), inv_unused, img.float(), c2w[None].to(device),
                            K[None].to(device), depth_override=depth[None].to(device))
    placed = pose.solved.clone()
    placed[0] = True  # the first camera is the world origin whether or not its focal length was found
    visible = front & placed[:, None, None]
    pg.opacities = pg.opacities * visible[None].to(device)
    pg.scales = pg.scales * settings.scale_gain
    return pg


@torch.no_grad()
def predict_unposed(model: ReconModel, images: Tensor, masks: Tensor | None, settings: InferenceSettings,
                    device: torch.device, dtype: torch.dtype) -> UnposedPrediction:
    """Run the model on ``images [V, H, W, 3]`` (in [0, 1]) without cameras, recover the cameras
    from the predicted pointmap (``recon.inference.pose``) and place the Gaussians with them.

    ``masks [V, H, W]`` or ``[V, H, W, 1]`` (foreground in [0, 1], optional): only pixels on the
    object (mask >= 0.5 at the working size) count for the pose and the scale. The pointmap
    loss trains points and confidence on surface pixels only, so the background's confidence is
    untrained and can exceed the object's; without masks it competes for the pose.
    Everything is at the working resolution and in the frame and units ``UnposedPrediction`` states.
    """
    check_images(images, masks)
    if model.pointmap_head is None or model.gaussian_head is None:
        raise ReconError("this model has no pointmap or Gaussian head, so it cannot reconstruct unposed input")
    _, H, W, _ = images.shape
    w, h = working_size(model.cfg, W, H)
    img = resize_images(images, w, h).permute(0, 3, 1, 2)[None].to(device)  # [1, V, 3, h, w]
    with autocast(device, dtype):
        out = model(img, None, None, None, heads=("gaussians", "pointmap"))
    pts, conf = out.pointmap[0].float().cpu(), out.conf[0].float().cpu()  # [V, h, w, 3], [V, h, w]
    valid = torch.isfinite(pts).all(-1)
    if masks is not None:
        valid &= resize_masks(masks, w, h).cpu() >= 0.5
    pts = normalise_pointmap(pts, conf, valid, settings.pose_min_conf)
    pose = cameras_from_pointmaps(pts, conf, w, h, min_conf=settings.pose_min_conf, valid=valid)
    pg = place_gaussians(model.cfg, out.gaussian_raw, img, pts, pose, settings, device)
    return UnposedPrediction(pg, Cameras(pose.c2w.float(), pose.K.float(), w, h), pose, pts, conf)


def reconstruct_unposed(model: ReconModel, images: Tensor, masks: Tensor | None, settings: InferenceSettings,
                        device: torch.device, dtype: torch.dtype,
                        info: dict | None = None) -> tuple[Reconstruction, Cameras]:
    """Reconstruct from ``images [V, H, W, 3]`` (in [0, 1]) without cameras; ``masks [V, H, W(, 1)]``
    (foreground in [0, 1], optional) restrict the pose recovery to the object (``predict_unposed``).

    Returns the Gaussians above ``min_opacity`` (on the CPU) and the recovered cameras (OpenCV
    ``c2w``, ``K`` in pixels of the input's ``W x H``). World frame: the first camera's
    (``c2w[0] = I``); units: the normalised pointmap's (mean distance of the confident predicted
    points from the first camera = 1), see ``UnposedPrediction``. The result's ``info`` says so,
    carries the pose statistics, then the given ``info``.
    """
    t0 = time.perf_counter()
    _, H, W, _ = check_images(images).shape
    pred = predict_unposed(model, images, masks, settings, device, dtype)
    g = pred.gaussians.item(0, settings.min_opacity).to(torch.device("cpu"))
    cams = pred.cameras.resize(W, H)
    dt = time.perf_counter() - t0
    p = pred.pose
    reproj = [None if math.isnan(x) else x for x in p.reproj_px.tolist()]  # JSON has no NaN
    out_info = {"mode": "unposed", "world": "first camera", "scale": "pointmap mean distance = 1",
                "pose_masks": masks is not None,
                "gaussians": len(g), "pose_solved": p.solved.tolist(), "pose_inlier_ratio": p.inlier_ratio.tolist(),
                "pose_reproj_px": reproj, **(info or {})}
    return Reconstruction(g, None, dt, out_info), cams
