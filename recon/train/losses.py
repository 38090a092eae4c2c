"""Training losses of ReconModel, each a function of a model output and one typed batch.

All geometry is in the canonical frame of each item (``recon.models.frame``). Images are ``[N, H, W, 3]``
in [0, 1]; the procedural data is rendered over white, so predictions are rendered over white too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.losses import ssim_loss
from torch import Tensor

from recon.models.adapter import unproject


@dataclass
class LossWeights:
    rgb_mse: float = 1.0
    rgb_ssim: float = 0.2
    alpha: float = 0.1  # rendered alpha vs mask on target views
    depth: float = 0.2  # L1 of log z-depth on input views (where GT has a surface)
    opacity: float = 0.05  # BCE of per-pixel opacity vs input masks (objects only)
    pointmap: float = 0.2
    pointmap_conf_alpha: float = 0.2  # DUSt3R's -alpha log(conf)
    # + this * log(conf) on pixels with no surface: without it the background's confidence is never
    # trained and can outrank the object's in the pose recovery (measured on the first checkpoint)
    pointmap_bg_conf: float = 0.1
    sdf: float = 1.0
    eikonal: float = 0.05
    sdf_color: float = 0.2


def photometric(pred: Tensor, target: Tensor, w: LossWeights) -> tuple[Tensor, dict]:
    """MSE + SSIM of ``pred/target [N, H, W, 3]``."""
    mse = F.mse_loss(pred, target)
    ss = ssim_loss(pred.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2), window_size=11)
    return w.rgb_mse * mse + w.rgb_ssim * ss, {"mse": float(mse.detach()), "ssim_loss": float(ss.detach())}


def depth_log_l1(pred_z: Tensor, gt_z: Tensor) -> Tensor:
    """Mean |log pred - log gt| over pixels where the ground truth has a surface (gt > 0)."""
    valid = gt_z > 0
    if not valid.any():
        return pred_z.sum() * 0
    return (pred_z[valid].clamp_min(1e-4).log() - gt_z[valid].log()).abs().mean()


def normalise_points(points: Tensor, valid: Tensor) -> Tensor:
    """Divide ``points [..., 3]`` by their mean distance to the origin over ``valid`` (DUSt3R's scale)."""
    d = (points.norm(dim=-1) * valid).sum() / valid.sum().clamp_min(1)
    return points / d.clamp_min(1e-6)


def gt_pointmap(depth_z: Tensor, c2w: Tensor, K: Tensor) -> tuple[Tensor, Tensor]:
    """Ground-truth points ``[V, H, W, 3]`` of every view's depth in the first camera's frame,
    normalised to unit mean distance, and their validity ``[V, H, W]``."""
    pts_w = unproject(depth_z[None], c2w[None], K[None])[0]  # [V, H, W, 3]
    w2c0 = torch.linalg.inv(c2w[0].float())
    pts = pts_w @ w2c0[:3, :3].T + w2c0[:3, 3]
    valid = depth_z > 0
    return normalise_points(pts, valid), valid


def pointmap_loss(pred: Tensor, conf: Tensor, gt: Tensor, valid: Tensor, w: LossWeights) -> Tensor:
    """Confidence-weighted regression (DUSt3R): ``sum conf * |p - gt| - alpha * log conf`` over valid
    pixels, with the prediction normalised by its own mean distance; plus ``pointmap_bg_conf *
    mean log conf`` over the pixels with no surface, which pulls their confidence to its floor of 1."""
    p = normalise_points(pred, valid)
    err = (p - gt).norm(dim=-1)
    c = conf[valid]
    loss = (c * err[valid] - w.pointmap_conf_alpha * c.log()).mean()
    if w.pointmap_bg_conf > 0 and not bool(valid.all()):
        loss = loss + w.pointmap_bg_conf * conf[~valid].log().mean()
    return loss


def sdf_query_points(points: Tensor, h: float = 0.01) -> Tensor:
    """``points [B, P, 3]`` followed by +-h offsets along x, y, z of their first quarter (for the
    eikonal term by central differences): ``[B, P + 6 * (P // 4), 3]``."""
    q = points[:, : max(1, points.shape[1] // 4)]
    offs = torch.eye(3, device=points.device, dtype=points.dtype) * h
    return torch.cat([points] + [q + o for o in offs] + [q - o for o in offs], 1)


def sdf_losses(sdf: Tensor, rgb: Tensor, sdf_gt: Tensor, color_gt: Tensor | None, valid: Tensor, w: LossWeights,
               h: float = 0.01) -> tuple[Tensor, dict]:
    """SDF L1 (clamped to +-0.2 canonical units so far-field errors do not dominate), eikonal by
    central differences, colour L1 near the surface.

    ``sdf [B, Q]``, ``rgb [B, Q, 3]``: predictions at ``sdf_query_points`` (Q = P + 6 * (P // 4));
    ``sdf_gt [B, P]``, ``color_gt [B, P, 3]``; ``valid [B]`` bool selects items that have samples."""
    P = sdf_gt.shape[1]
    n = max(1, P // 4)
    vb = valid.float()
    if not valid.any():
        zero = sdf.sum() * 0
        return zero, {}
    per = (sdf[:, :P].clamp(-0.2, 0.2) - sdf_gt.clamp(-0.2, 0.2)).abs().mean(1)
    l_sdf = (per * vb).sum() / vb.sum()
    grads = torch.stack([(sdf[:, P + k * n : P + (k + 1) * n] - sdf[:, P + (3 + k) * n : P + (4 + k) * n]) / (2 * h)
                         for k in range(3)], -1)
    l_eik = ((((grads.norm(dim=-1) - 1) ** 2).mean(1)) * vb).sum() / vb.sum()
    loss = w.sdf * l_sdf + w.eikonal * l_eik
    logs = {"sdf_l1": float(l_sdf.detach()), "eikonal": float(l_eik.detach())}
    if color_gt is not None:
        near = (sdf_gt.abs() < 0.03).float()[..., None] * vb[:, None, None]
        l_col = ((rgb[:, :P] - color_gt).abs() * near).sum() / (near.sum() * 3).clamp_min(1)
        loss = loss + w.sdf_color * l_col
        logs["sdf_color"] = float(l_col.detach())
    return loss, logs
