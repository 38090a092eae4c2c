"""ReconModel: a backbone and optional heads (Gaussians, pointmap, triplane SDF), one forward pass.

Frames: posed inputs arrive in the canonical frame (``recon.models.frame``: the observed ball is the
unit ball at the origin); all outputs are in that frame. Unposed inputs carry no cameras; their
pointmaps are in the first camera's frame at a normalised scale (``recon.inference.pose``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recon.models.adapter import (
    AdapterConfig,
    PixelGaussians,
    expected_inverse_depth,
    gaussians_from_raw,
    pointmap_from_raw,
)
from recon.models.backbone import Backbone, BackboneConfig, depth_range
from recon.models.heads import (
    GaussianHead,
    GaussianHeadConfig,
    PointmapHead,
    PointmapHeadConfig,
    TriplaneHeadConfig,
    TriplaneSdfHead,
)


@dataclass
class ModelConfig:
    image_size: int = 128  # long side the backbone works at (multiple of backbone.patch)
    # The heads' full-resolution output is this many times the backbone's working size: the model
    # takes images of ``image_size * output_scale`` (long side), the backbone sees them area-
    # downsampled, and the Gaussian head's last stage (and the pointmap) runs on the full images,
    # one Gaussian per input pixel. 1 = Gaussians at the working size (the shipped checkpoint).
    # No parameter depends on it, so weights trained at one scale load at another.
    output_scale: int = 1
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    gaussian_head: GaussianHeadConfig | None = field(default_factory=GaussianHeadConfig)
    pointmap_head: PointmapHeadConfig | None = field(default_factory=PointmapHeadConfig)
    triplane_head: TriplaneHeadConfig | None = field(default_factory=TriplaneHeadConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)

    def __post_init__(self):
        if isinstance(self.output_scale, bool) or not isinstance(self.output_scale, int) or self.output_scale < 1:
            raise ValueError(f"output_scale must be a whole number >= 1, not {self.output_scale!r}")

    @property
    def input_long_side(self) -> int:
        """Long side (pixels) of the images the model takes: the working size times ``output_scale``."""
        return self.image_size * self.output_scale

    @property
    def input_multiple(self) -> int:
        """Both input sides must be multiples of this (the backbone's patch at its working size)."""
        return self.backbone.patch * self.output_scale

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        sub = {"backbone": BackboneConfig, "gaussian_head": GaussianHeadConfig, "pointmap_head": PointmapHeadConfig,
               "triplane_head": TriplaneHeadConfig, "adapter": AdapterConfig}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        kw = {}
        for k, v in d.items():
            if k in sub and v is not None:
                fields = {f.name for f in dataclasses.fields(sub[k])}
                bad = set(v) - fields
                if bad:
                    raise ValueError(f"unknown keys in model config {k!r}: {sorted(bad)}")
                kw[k] = sub[k](**v)
            else:
                kw[k] = v
        return cls(**kw)


def preset(name: str) -> ModelConfig:
    """Named configurations: ``tiny`` (tests), ``small`` (shipped, CPU), ``small-hires`` (``small`` with one
    Gaussian per pixel of 256 px inputs), ``large`` (GPU training at scale)."""
    if name == "tiny":
        return ModelConfig(
            image_size=32,
            backbone=BackboneConfig(dim=32, depth=2, heads=2, c2=8, c4=16, match_channels=8, num_planes=8, rope_grid=4),
            gaussian_head=GaussianHeadConfig(c4=16, c2=8, c1=8),
            pointmap_head=PointmapHeadConfig(c4=16),
            triplane_head=TriplaneHeadConfig(tokens=4, layers=1, plane_res=8, plane_channels=8, hidden=16),
        )
    if name == "small":
        return ModelConfig()
    if name == "small-hires":  # the small network, Gaussians at 2x its working size (256 px inputs)
        return ModelConfig(output_scale=2)
    if name == "large":
        return ModelConfig(
            image_size=256,
            backbone=BackboneConfig(dim=768, depth=24, heads=12, patch=8, c2=48, c4=96, match_channels=64,
                                    num_planes=64, rope_grid=32),
            gaussian_head=GaussianHeadConfig(c4=192, c2=96, c1=48),
            pointmap_head=PointmapHeadConfig(c4=128),
            triplane_head=TriplaneHeadConfig(tokens=16, layers=4, plane_res=64, plane_channels=48, hidden=128),
        )
    raise ValueError(f"unknown model preset {name!r}; known: tiny, small, small-hires, large")


@dataclass
class ModelOutput:
    """What ``ReconModel.forward`` returns (canonical frame; B items, V views, H x W pixels).

    Attributes:
        gaussians: per-pixel Gaussians (posed input with a Gaussian head), else None.
        depth_logits: [B*V, D, H/(4s), W/(4s)] plane logits (s = ``output_scale``); near/far: [B, V]
            plane range (posed only).
        pointmap: [B, V, H, W, 3] points in the first camera's frame, conf: [B, V, H, W] (pointmap head).
        planes: [B, 3, C, R, R] triplanes (triplane head); decode with ``ReconModel.sdf``.
        sdf, sdf_rgb: the triplane decoded at ``sdf_points`` when they were given.
    """

    gaussians: PixelGaussians | None = None
    depth_logits: Tensor | None = None
    near: Tensor | None = None
    far: Tensor | None = None
    pointmap: Tensor | None = None
    conf: Tensor | None = None
    planes: Tensor | None = None
    gaussian_raw: Tensor | None = None  # [B*V, 12, H, W], for unposed placement after pose recovery
    sdf: Tensor | None = None  # [B, P] at ``sdf_points`` (canonical units, negative inside)
    sdf_rgb: Tensor | None = None  # [B, P, 3]


class ReconModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        b = cfg.backbone
        self.backbone = Backbone(b)
        self.gaussian_head = (GaussianHead(cfg.gaussian_head, b.dim, b.c2, b.c4, b.num_planes)
                              if cfg.gaussian_head else None)
        self.pointmap_head = PointmapHead(cfg.pointmap_head, b.dim, b.c4) if cfg.pointmap_head else None
        self.triplane_head = TriplaneSdfHead(cfg.triplane_head, b.dim, b.heads) if cfg.triplane_head else None

    def forward(
        self,
        images: Tensor,  # [B, V, 3, H, W] in [0, 1]
        c2w: Tensor | None = None,  # [B, V, 4, 4] canonical frame; None = unposed
        K: Tensor | None = None,  # [B, V, 3, 3] pixels of H x W; None = unposed
        converged: Tensor | None = None,  # [B] bool: object rig (True) or forward-facing (False)
        heads: tuple[str, ...] = ("gaussians", "pointmap", "triplane"),
        sdf_points: Tensor | None = None,  # [B, P, 3] canonical points to decode with the triplane head
    ) -> ModelOutput:
        B, V, _, H, W = images.shape
        posed = c2w is not None
        if posed and converged is None:
            converged = torch.ones(B, dtype=torch.bool, device=images.device)
        s = self.cfg.output_scale
        if H % s or W % s:
            raise ValueError(f"image size {W}x{H} must be a multiple of output_scale {s}")
        small, K_small = self._backbone_inputs(images, K)
        feats = self.backbone(small, c2w, K_small, converged)
        out = ModelOutput()
        if "gaussians" in heads and self.gaussian_head is not None:
            logits, raw = self.gaussian_head(feats, images)
            out.gaussian_raw = raw
            if posed:
                with torch.autocast(images.device.type, enabled=False):  # geometry in fp32
                    near, far = depth_range(c2w, converged)
                    inv = expected_inverse_depth(logits, near.reshape(-1), far.reshape(-1))
                    out.gaussians = gaussians_from_raw(self.cfg.adapter, raw, inv, images, c2w, K)
                out.depth_logits, out.near, out.far = logits, near, far
        if "pointmap" in heads and self.pointmap_head is not None:
            out.pointmap, out.conf = pointmap_from_raw(self.pointmap_head(feats, (H, W)), B, V)
        if "triplane" in heads and self.triplane_head is not None:
            out.planes = self.triplane_head(feats)
            if sdf_points is not None:
                with torch.autocast(images.device.type, enabled=False):
                    out.sdf, out.sdf_rgb = self.triplane_head.decode(out.planes, sdf_points)
        return out

    def _backbone_inputs(self, images: Tensor, K: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Images ``[B, V, 3, H, W]`` and ``K`` (pixels of H x W) -> the backbone's: area-downsampled by
        ``output_scale`` (exact blocks), ``K`` in pixels of the smaller image (pixel edges at 0)."""
        s = self.cfg.output_scale
        if s == 1:
            return images, K
        B, V, C, H, W = images.shape
        small = F.avg_pool2d(images.reshape(B * V, C, H, W), s).reshape(B, V, C, H // s, W // s)
        if K is None:
            return small, None
        K_small = K.clone()
        K_small[..., :2, :] = K_small[..., :2, :] / s
        return small, K_small

    def sdf(self, planes: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
        """Signed distance ``[B, P]`` (canonical units, negative inside) and colour ``[B, P, 3]`` at
        canonical ``points [B, P, 3]``."""
        if self.triplane_head is None:
            raise ValueError("this model has no triplane head")
        return self.triplane_head.decode(planes, points)
