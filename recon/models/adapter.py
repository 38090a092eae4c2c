"""The one place where raw network outputs become physical values (depth, Gaussians, points).

Everything here is in the model's canonical frame (``recon.models.frame``); OpenCV cameras, pixel
centres at +0.5, ``K`` in pixels of the image the outputs belong to.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.geometry.conversions import rotation_matrix_to_quaternion
from torch import Tensor

from renderer import Gaussians
from renderer.gaussians import quat_wxyz_multiply
from renderer.sh import SH_C0

# Channel layout of the Gaussian head's full-resolution output.
GAUSSIAN_CHANNELS = {"inv_depth_refine": slice(0, 1), "opacity": slice(1, 2), "scale": slice(2, 5),
                     "rotation": slice(5, 9), "color": slice(9, 12)}


@dataclass
class AdapterConfig:
    refine_range: float = 0.15  # full-resolution inverse-depth refinement, as a fraction (tanh-bounded)
    min_scale_px: float = 0.4  # Gaussian in-plane standard deviation range, in pixel footprints
    max_scale_px: float = 3.0
    opacity_bias: float = 0.0
    color_range: float = 0.5  # the colour residual is bounded by this (tanh)


@dataclass
class PixelGaussians:
    """Per-pixel Gaussians of B items x V views at H x W (canonical frame).

    Attributes:
        depth_z: [B, V, H, W] camera z-depth. means: [B, V, H, W, 3]. quats_wxyz: [B, V, H, W, 4].
        scales: [B, V, H, W, 3]. opacities: [B, V, H, W]. rgb: [B, V, H, W, 3] in [0, 1].
    """

    depth_z: Tensor
    means: Tensor
    quats_wxyz: Tensor
    scales: Tensor
    opacities: Tensor
    rgb: Tensor

    def item(self, b: int, min_opacity: float = 0.0) -> Gaussians:
        """Gaussians of item ``b`` (all its views), optionally without the near-transparent ones."""
        keep = self.opacities[b].reshape(-1) > min_opacity
        g = Gaussians.from_rgb(self.means[b].reshape(-1, 3)[keep], self.rgb[b].reshape(-1, 3)[keep],
                               self.scales[b].reshape(-1, 3)[keep], self.opacities[b].reshape(-1)[keep],
                               self.quats_wxyz[b].reshape(-1, 4)[keep])
        return g


def expected_inverse_depth(logits: Tensor, near: Tensor, far: Tensor) -> Tensor:
    """Soft-argmin over planes uniform in inverse depth: ``logits [B*V, D, h, w]``, ``near/far [B*V]``
    -> inverse z-depth ``[B*V, 1, h, w]``."""
    D = logits.shape[1]
    t = torch.linspace(0, 1, D, device=logits.device)
    inv = (1 / near)[:, None] * (1 - t) + (1 / far)[:, None] * t  # [BV, D]
    p = torch.softmax(logits.float(), 1)
    return (p * inv[:, :, None, None]).sum(1, keepdim=True)


def pixel_rays(K: Tensor, H: int, W: int) -> Tensor:
    """Camera-frame rays with z = 1 through pixel centres: ``K [..., 3, 3]`` -> ``[..., H, W, 3]``."""
    v, u = torch.meshgrid(torch.arange(H, device=K.device) + 0.5, torch.arange(W, device=K.device) + 0.5, indexing="ij")
    pix = torch.stack([u, v, torch.ones_like(u)], -1).float()
    Kinv = torch.linalg.inv(K.float())
    return pix @ Kinv[..., None, :, :].transpose(-1, -2)


def unproject(depth_z: Tensor, c2w: Tensor, K: Tensor) -> Tensor:
    """World points ``[B, V, H, W, 3]`` of z-depths ``[B, V, H, W]`` seen by cameras ``c2w/K [B, V, ...]``."""
    H, W = depth_z.shape[-2:]
    p_cam = pixel_rays(K, H, W) * depth_z[..., None]
    return p_cam @ c2w[:, :, None, :3, :3].float().transpose(-1, -2) + c2w[:, :, None, None, :3, 3].float()


def gaussians_from_raw(
    cfg: AdapterConfig,
    params: Tensor,  # [B*V, 12, H, W] raw head output
    inv_depth_coarse: Tensor,  # [B*V, 1, h, w] expected inverse depth (canonical units^-1)
    images: Tensor,  # [B, V, 3, H, W] input colours in [0, 1]
    c2w: Tensor,  # [B, V, 4, 4] canonical frame
    K: Tensor,  # [B, V, 3, 3] pixels of H x W
    depth_override: Tensor | None = None,  # [B, V, H, W] z-depth to use instead of the predicted one
) -> PixelGaussians:
    B, V, _, H, W = images.shape
    p = params.float().reshape(B, V, -1, H, W).permute(0, 1, 3, 4, 2)  # [B, V, H, W, 12]
    ch = GAUSSIAN_CHANNELS
    inv = F.interpolate(inv_depth_coarse.float(), size=(H, W), mode="bilinear", align_corners=False)
    inv = inv.reshape(B, V, H, W) * torch.exp(cfg.refine_range * torch.tanh(p[..., ch["inv_depth_refine"]][..., 0]))
    depth_z = 1 / inv.clamp_min(1e-6) if depth_override is None else depth_override
    means = unproject(depth_z, c2w, K)
    focal = 0.5 * (K[..., 0, 0] + K[..., 1, 1]).float()  # [B, V]
    footprint = depth_z / focal[..., None, None]  # world size of one pixel at that depth
    s = torch.sigmoid(p[..., ch["scale"]])
    scales = footprint[..., None] * (cfg.min_scale_px + (cfg.max_scale_px - cfg.min_scale_px) * s)
    q_cam = p[..., ch["rotation"]] + torch.tensor([1.0, 0, 0, 0], device=p.device)
    q_cam = F.normalize(q_cam, dim=-1)
    # Rotate the camera-frame orientation into the world: q_world = q(R_c2w) * q_cam.
    q_R = rotation_matrix_to_quaternion(c2w[..., :3, :3].float().contiguous())  # [B, V, 4] wxyz
    quats = quat_wxyz_multiply(q_R[:, :, None, None].expand_as(q_cam), q_cam)
    opac = torch.sigmoid(p[..., ch["opacity"]][..., 0] + cfg.opacity_bias)
    rgb = images.float().permute(0, 1, 3, 4, 2) + cfg.color_range * torch.tanh(p[..., ch["color"]])
    return PixelGaussians(depth_z, means, quats, scales, opac, rgb.clamp(0, 1))


def rgb_to_sh_dc(rgb: Tensor) -> Tensor:
    return (rgb - 0.5) / SH_C0


def pointmap_from_raw(raw: Tensor, B: int, V: int) -> tuple[Tensor, Tensor]:
    """Raw pointmap head output ``[B*V, 4, H, W]`` -> points ``[B, V, H, W, 3]`` (first camera's frame,
    scale-normalised units) and confidence ``[B, V, H, W]`` >= 1 (DUSt3R's 1 + exp)."""
    H, W = raw.shape[-2:]
    r = raw.float().reshape(B, V, 4, H, W).permute(0, 1, 3, 4, 2)
    xyz = r[..., :3]
    # Depth-like channel kept positive-leaning: z = exp-free but offset so an untrained head sits in front.
    xyz = torch.cat([xyz[..., :2], xyz[..., 2:3] + 2.0], -1)
    conf = 1 + torch.exp(r[..., 3].clamp(max=10))
    return xyz, conf
