"""One micro-batch of training: items stacked into model inputs, and the loss of the model's output.

Geometry is in each item's canonical frame (``recon.models.frame``); images are rendered over white
like the procedural data. ``batch_loss`` runs the model once (posed: Gaussian head, plus the
triplane head when any item has SDF samples; unposed: pointmap head only).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from recon.core.types import Item
from recon.models import ReconModel
from recon.models.adapter import PixelGaussians
from recon.models.frame import CanonicalFrame
from recon.train.losses import (
    LossWeights,
    depth_log_l1,
    gt_pointmap,
    photometric,
    pointmap_loss,
    sdf_losses,
    sdf_query_points,
)
from renderer import render

WHITE = (1.0, 1.0, 1.0)


@dataclass
class Batch:
    """B items with V input views of H x W pixels each, ready for ``ReconModel``.

    Attributes:
        images: [B, V, 3, H, W] input colours in [0, 1].
        c2w: [B, V, 4, 4] OpenCV camera-to-world in each item's canonical frame.
        K: [B, V, 3, 3] intrinsics in pixels of H x W.
        converged: [B] bool, object rig (True) or forward-facing (False).
        frames: each item's canonical frame (world -> canonical similarity).
        items: the items themselves (world frame), for targets, depth, masks and SDF samples.
    """

    images: torch.Tensor
    c2w: torch.Tensor
    K: torch.Tensor
    converged: torch.Tensor
    frames: list[CanonicalFrame]
    items: list[Item]


def make_batch(items: list[Item], device: torch.device) -> Batch:
    """Stack ``items`` (same view count and image size) into a ``Batch`` on ``device``."""
    frames, c2w, K, imgs, conv = [], [], [], [], []
    for it in items:
        fr = CanonicalFrame.from_cameras(it.inputs.cameras)
        cams = fr.cameras_to_canonical(it.inputs.cameras)
        frames.append(fr)
        c2w.append(cams.c2w)
        K.append(cams.K)
        imgs.append(it.inputs.images.permute(0, 3, 1, 2))
        conv.append(fr.converged)
    return Batch(torch.stack(imgs).to(device), torch.stack(c2w).to(device), torch.stack(K).to(device),
                  torch.tensor(conv, device=device), frames, items)


def batch_loss(model: ReconModel, batch: Batch, unposed: bool, w: LossWeights, amp: bool, render_views: int = 2,
               render_size: int = 64, render_backend: str = "auto") -> tuple[torch.Tensor, dict]:
    """Total loss (scalar, mean over items) of one micro-batch and its parts (floats) for logging.

    ``model`` may be a ``ReconModel`` or its DDP wrapper. Posed: photometric (MSE + SSIM) and alpha
    losses on ``render_views`` target views rendered at ``render_size`` (long side), log-depth L1 on
    the input views, opacity BCE against input masks (objects), SDF losses (items with samples).
    Unposed: the confidence-weighted pointmap loss (items with depth). Terms whose ground truth an
    item lacks (depth, masks, SDF samples) are skipped for that item. ``render_backend`` goes to
    ``renderer.render`` (``"auto"``, ``"torch"`` or ``"gsplat"``). ``amp``: bf16 autocast.
    """
    if unposed:
        return _unposed_loss(model, batch, w, amp)
    dev = batch.images.device
    sdf_items, sdf_q, sdf_gt, sdf_col = _sdf_targets(batch)
    heads = ("gaussians", "triplane") if sdf_items else ("gaussians",)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
        out = model(batch.images, batch.c2w, batch.K, batch.converged, heads=heads, sdf_points=sdf_q)
    total = batch.images.new_zeros(())
    agg: dict[str, float] = {}
    for b, (it, fr) in enumerate(zip(batch.items, batch.frames)):
        loss, lg = _posed_item_loss(out.gaussians, b, it.to(dev), fr, w, render_views, render_size, render_backend)
        for k, v in lg.items():
            agg[k] = agg.get(k, 0.0) + v / len(batch.items)
        total = total + loss / len(batch.items)
    if sdf_items:
        valid = torch.zeros(len(batch.items), dtype=torch.bool, device=dev)
        valid[sdf_items] = True
        l_sdf, ls = sdf_losses(out.sdf, out.sdf_rgb, sdf_gt, sdf_col, valid, w)
        total = total + l_sdf * len(sdf_items) / len(batch.items)
        agg.update(ls)
    return total, agg


def _unposed_loss(model: ReconModel, batch: Batch, w: LossWeights, amp: bool) -> tuple[torch.Tensor, dict]:
    """The pointmap loss (mean over items, in the first input camera's frame) of an unposed step;
    items without depth add zero but keep the head in the graph (DDP needs every rank's heads used)."""
    dev = batch.images.device
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
        out = model(batch.images, None, None, heads=("pointmap",))
    total = batch.images.new_zeros(())
    for b, it in enumerate(batch.items):
        v = it.inputs.to(dev)
        if v.depth_z is None:
            total = total + out.pointmap[b].sum() * 0  # keeps the head in the graph
            continue
        gt, valid = gt_pointmap(v.depth_z[..., 0], v.cameras.c2w, v.cameras.K)
        total = total + w.pointmap * pointmap_loss(out.pointmap[b], out.conf[b], gt, valid, w)
    total = total / len(batch.items)
    return total, {"pointmap": float(total.detach())}


def _sdf_targets(batch: Batch) -> tuple[list[int], torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """The SDF supervision of a posed step, in each item's canonical frame, on the batch's device:
    ``(indices of the items with samples, query points [B, P, 3] as the triplane head takes them,
    signed distances [B, P] (canonical units), colours [B, P, 3])``, P the fewest samples of any item;
    rows of items without samples are zeros. All None (and no indices) when no item has samples."""
    sdf_items = [b for b, it in enumerate(batch.items) if it.sdf is not None]
    if not sdf_items:
        return sdf_items, None, None, None
    dev = batch.images.device
    P = min(batch.items[b].sdf.points.shape[0] for b in sdf_items)
    pts = torch.zeros(len(batch.items), P, 3)
    sdf_gt = torch.zeros(len(batch.items), P)
    sdf_col = torch.zeros(len(batch.items), P, 3)
    for b in sdf_items:
        s, fr = batch.items[b].sdf, batch.frames[b]
        pts[b] = fr.points_to_canonical(s.points[:P])
        sdf_gt[b] = s.sdf[:P] / fr.scale  # distances scale with the frame
        if s.colors is not None:
            sdf_col[b] = s.colors[:P]
    return sdf_items, sdf_query_points(pts).to(dev), sdf_gt.to(dev), sdf_col.to(dev)


def _posed_item_loss(pg: PixelGaussians, b: int, it: Item, fr: CanonicalFrame, w: LossWeights, render_views: int, render_size: int,
                     render_backend: str) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of item ``b`` (on the model's device) given the batch's predicted Gaussians ``pg``:
    photometric and alpha on its first ``render_views`` targets rendered at ``render_size`` (long
    side, pixels) over white, plus log-depth L1 and opacity BCE where the item has depth and masks."""
    dev = pg.depth_z.device
    g = pg.item(b)
    tv = min(render_views, len(it.targets))
    tgt_cams = fr.cameras_to_canonical(it.targets.cameras[:tv])
    W0, H0 = tgt_cams.width, tgt_cams.height
    rw, rh = (render_size, max(1, round(H0 * render_size / W0))) if W0 >= H0 else (max(1, round(W0 * render_size / H0)), render_size)
    gt = _resize(it.targets.images[:tv], rh, rw)
    masks_t = _resize(it.targets.masks[:tv], rh, rw) if it.targets.masks is not None else torch.ones_like(gt[..., :1])
    r = render(g, tgt_cams.resize(rw, rh), background=torch.tensor(WHITE, device=dev), backend=render_backend)
    l_rgb, lg = photometric(r.rgb, gt, w)
    l_alpha = F.mse_loss(r.alpha, masks_t)
    loss = l_rgb + w.alpha * l_alpha
    if it.inputs.depth_z is not None:
        l_depth = depth_log_l1(pg.depth_z[b], it.inputs.depth_z[..., 0] / fr.scale)
        loss = loss + w.depth * l_depth
        lg["depth"] = float(l_depth.detach())
    if it.meta.get("kind") == "object" and it.inputs.masks is not None:
        l_op = F.binary_cross_entropy(pg.opacities[b].clamp(1e-4, 1 - 1e-4), it.inputs.masks[..., 0])
        loss = loss + w.opacity * l_op
        lg["opacity_bce"] = float(l_op.detach())
    with torch.no_grad():
        mse_t = F.mse_loss(r.rgb, gt)
    lg.update(alpha=float(l_alpha.detach()), psnr_target=float(-10 * torch.log10(mse_t.clamp_min(1e-10))))
    return loss, lg


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Antialiased resize of ``[N, H, W, C]`` images."""
    if x.shape[1:3] == (h, w):
        return x
    return F.interpolate(x.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", antialias=True,
                         align_corners=False).permute(0, 2, 3, 1)
