"""Posed inference: images with cameras -> pixel-aligned Gaussians in the input world frame and units.

``run_posed`` resizes the views to the model's working size, moves the cameras into the model's
canonical frame (``recon.models.frame``) and runs the model; ``predict_posed`` adds the scale
calibration and silhouette carving (``recon.inference.carve``); ``reconstruct_posed`` maps the
kept Gaussians back to the input world frame as a ``Reconstruction``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import Tensor

from recon.core.errors import ReconError
from recon.core.resize import resize_masks, resize_views
from recon.core.types import Reconstruction, Views
from recon.inference.carve import outside_mask_votes
from recon.inference.settings import InferenceSettings, autocast, working_size
from recon.models import ModelOutput, ReconModel
from recon.models.adapter import PixelGaussians
from recon.models.frame import CanonicalFrame
from renderer import Cameras


@dataclass
class PosedPrediction:
    """The posed path's result at the model's working resolution ``w x h``.

    Attributes:
        gaussians: per-pixel Gaussians ``[1, V, h, w, ...]`` in the canonical frame, scales times
            ``scale_gain``; carved pixels have opacity 0.
        frame: the canonical frame (canonical <-> input world, a similarity).
        cameras: V cameras of ``w x h`` in the input world frame (OpenCV, ``K`` in working pixels).
        carved: how many pixel Gaussians above ``min_opacity`` the carving made transparent.
    """

    gaussians: PixelGaussians
    frame: CanonicalFrame
    cameras: Cameras
    carved: int


def run_posed(model: ReconModel, views: Views, heads: tuple[str, ...], device: torch.device,
              dtype: torch.dtype) -> tuple[ModelOutput, CanonicalFrame, Cameras]:
    """Model outputs of ``heads`` for posed ``views`` (``images [V, H, W, 3]`` in [0, 1]) at the
    working size: ``(ModelOutput, CanonicalFrame, working Cameras in the input world frame)``."""
    _, H, W, _ = views.images.shape
    w, h = working_size(model.cfg, W, H)
    images, cams = resize_views(views.images, views.cameras, w, h)
    frame = CanonicalFrame.from_cameras(cams)
    canon = frame.cameras_to_canonical(cams)
    img = images.permute(0, 3, 1, 2)[None].to(device)  # [1, V, 3, h, w]
    conv = torch.tensor([frame.converged], device=device)
    with autocast(device, dtype):
        out = model(img, canon.c2w[None].to(device), canon.K[None].to(device), conv, heads=heads)
    return out, frame, cams


def silhouette_drop(gaussians: PixelGaussians, frame: CanonicalFrame, cameras: Cameras, masks: Tensor,
                    settings: InferenceSettings) -> Tensor:
    """``[1, V, h, w]`` bool: pixel Gaussians whose centre lies on the background of at least
    ``settings.carve_votes`` other views. ``masks [V, H, W(, 1)]``: foreground in [0, 1] at the input
    size (resized here to the working ``w x h``); ``cameras``: working cameras, input world frame."""
    _, V, h, w = gaussians.opacities.shape
    canon = frame.cameras_to_canonical(cameras)
    dev = gaussians.means.device
    source = torch.arange(V, device=dev).repeat_interleave(h * w)
    votes = outside_mask_votes(gaussians.means[0].reshape(-1, 3), source, canon.c2w.to(dev), canon.K.to(dev),
                               resize_masks(masks, w, h).to(dev), threshold=settings.carve_threshold)
    return (votes >= settings.carve_votes).reshape(1, V, h, w)


@torch.no_grad()
def predict_posed(model: ReconModel, views: Views, settings: InferenceSettings, device: torch.device,
                  dtype: torch.dtype) -> PosedPrediction:
    """Gaussians for posed ``views`` (see ``PosedPrediction``). When ``views.masks`` is given, there
    is more than one view and ``carve_votes > 0``, Gaussians outside the silhouettes of other views
    get opacity 0."""
    out, frame, cams = run_posed(model, views, ("gaussians",), device, dtype)
    pg = out.gaussians
    pg.scales = pg.scales * settings.scale_gain
    carved = 0
    if settings.carve_votes > 0 and views.masks is not None and len(views) > 1:
        drop = silhouette_drop(pg, frame, cams, views.masks, settings)
        carved = int((drop & (pg.opacities > settings.min_opacity)).sum())
        pg.opacities = pg.opacities * (~drop).to(pg.opacities.dtype)
    return PosedPrediction(pg, frame, cams, carved)


@torch.no_grad()
def reconstruct_posed(model: ReconModel, views: Views, settings: InferenceSettings, device: torch.device,
                      dtype: torch.dtype, info: dict | None = None) -> Reconstruction:
    """Gaussians above ``min_opacity`` in the input world frame and units (on the CPU), with
    ``info``: gaussians, carve_votes, carved, frame, then the given ``info`` (checkpoint, ...)."""
    t0 = time.perf_counter()
    if len(views) < 1:
        raise ReconError("no input views")
    pred = predict_posed(model, views, settings, device, dtype)
    g = pred.frame.gaussians_to_world(pred.gaussians.item(0, settings.min_opacity).to(torch.device("cpu")))
    dt = time.perf_counter() - t0
    return Reconstruction(g, None, dt, {"gaussians": len(g), "carve_votes": settings.carve_votes,
                                        "carved": pred.carved, "frame": pred.frame.to_dict(), **(info or {})})
