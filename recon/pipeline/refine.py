"""Stage 4, refine: a few hundred photometric steps on the predicted Gaussians (optional).

This is the slot the time-budgeted refinement fills: ``refine(prediction, model_cfg, steps)`` is the
stage; ``refine_gaussians`` the optimisation it runs.

The feed-forward prediction is a good start but not pixel-exact; ``refine_gaussians`` optimises the
Gaussians' raw parameters (positions, log-scales, rotations, opacity logits, colour) against the
input views with the same renderer (gsplat on CUDA, our own on CPU). With only a few views a free
optimisation overfits (Gaussians stretch along the rays, floaters appear), so it is anchored to the
prediction: positions and log-scales are pulled back towards their predicted values, and a small
opacity penalty lets unsupported Gaussians fade. Input-view PSNR before and after goes in the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from kornia.losses import ssim_loss
from torch import Tensor

from recon.core.resize import model_input_size, resize_views
from recon.core.types import Views
from recon.models import ModelConfig
from recon.pipeline.predict import Prediction
from renderer import Gaussians, render
from renderer.sh import SH_C0


@dataclass
class RefineConfig:
    steps: int = 0  # 0 = no refinement
    views_per_step: int = 1
    lr_means: float = 2e-3  # x the median Gaussian scale (so the step is scale-free)
    lr_log_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacity: float = 2e-2
    lr_color: float = 5e-3
    ssim_weight: float = 0.2
    anchor_means: float = 1e-2  # weight of |means - predicted|^2 / scale^2
    anchor_scales: float = 1e-2  # weight of (log s - predicted log s)^2
    opacity_penalty: float = 1e-3  # weight of the mean opacity
    seed: int = 0


@dataclass
class RefineResult:
    gaussians: Gaussians
    steps: int
    seconds: float
    psnr_before: float  # mean input-view PSNR (dB) of the prediction
    psnr_after: float


def _psnr(a: Tensor, b: Tensor) -> float:
    return float(-10 * torch.log10(F.mse_loss(a, b).clamp_min(1e-12)))


@torch.no_grad()
def input_view_psnr(g: Gaussians, views: Views, background: Tensor) -> float:
    """Mean PSNR (dB) of ``g`` rendered at every input camera against the input images."""
    vals = [_psnr(render(g, views.cameras[[i]], background=background).rgb[0], views.images[i]) for i in range(len(views))]
    return sum(vals) / len(vals)


def refine_gaussians(g: Gaussians, views: Views, cfg: RefineConfig, background: Tensor | tuple = (1.0, 1.0, 1.0)) -> RefineResult:
    """Refine ``g`` (world frame, SH degree 0 or more) on the posed ``views`` for ``cfg.steps`` steps."""
    bg = torch.as_tensor(background, dtype=torch.float32, device=g.device)
    t0 = time.perf_counter()
    before = input_view_psnr(g, views, bg)
    if cfg.steps <= 0 or len(g) == 0:
        return RefineResult(g, 0, time.perf_counter() - t0, before, before)
    g = g.detach()
    s0 = g.scales.clamp_min(1e-8).log()
    m0 = g.means.clone()
    unit = float(g.scales.median())
    eps = 1e-4
    raw = {
        "means": g.means.clone().requires_grad_(),
        "log_scales": s0.clone().requires_grad_(),
        "quats": g.quats_wxyz.clone().requires_grad_(),
        "opacity": torch.logit(g.opacities.clamp(eps, 1 - eps)).requires_grad_(),
        "sh": g.sh.clone().requires_grad_(),
    }
    opt = torch.optim.Adam([
        {"params": [raw["means"]], "lr": cfg.lr_means * unit},
        {"params": [raw["log_scales"]], "lr": cfg.lr_log_scales},
        {"params": [raw["quats"]], "lr": cfg.lr_quats},
        {"params": [raw["opacity"]], "lr": cfg.lr_opacity},
        {"params": [raw["sh"]], "lr": cfg.lr_color / SH_C0},
    ], eps=1e-15)
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.steps):
        idx = torch.randperm(len(views), generator=gen)[: cfg.views_per_step].tolist()
        cur = Gaussians(raw["means"], F.normalize(raw["quats"], dim=-1), raw["log_scales"].exp(),
                        torch.sigmoid(raw["opacity"]), raw["sh"])
        out = render(cur, views.cameras[idx], background=bg)
        gt = views.images[idx]
        loss = F.l1_loss(out.rgb, gt) * (1 - cfg.ssim_weight)
        loss = loss + cfg.ssim_weight * ssim_loss(out.rgb.permute(0, 3, 1, 2), gt.permute(0, 3, 1, 2), 11)
        loss = loss + cfg.anchor_means * (((raw["means"] - m0) / s0.exp().amax(-1, keepdim=True)) ** 2).mean()
        loss = loss + cfg.anchor_scales * ((raw["log_scales"] - s0) ** 2).mean()
        loss = loss + cfg.opacity_penalty * torch.sigmoid(raw["opacity"]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = Gaussians(raw["means"].detach(), F.normalize(raw["quats"].detach(), dim=-1), raw["log_scales"].detach().exp(),
                          torch.sigmoid(raw["opacity"].detach()), raw["sh"].detach())
    after = input_view_psnr(final, views, bg)
    return RefineResult(final, cfg.steps, time.perf_counter() - t0, before, after)


@dataclass
class Refinement:
    """The refined Gaussians (the prediction's when nothing ran) and what the report records."""

    gaussians: Gaussians
    info: dict | None = None  # steps, seconds, input-view PSNR before and after; None when not run
    seconds: float | None = None


def refine(prediction: Prediction, model_cfg: ModelConfig, steps: int) -> Refinement:
    """Stage 4: ``steps`` refinement steps on the input views resized to the model's working size."""
    if steps <= 0:
        return Refinement(prediction.gaussians)
    t0 = time.perf_counter()
    views = prediction.views
    w, h = model_input_size(views.cameras.width, views.cameras.height, model_cfg.input_long_side,
                            model_cfg.input_multiple)
    small_img, small_cams = resize_views(views.images, views.cameras, w, h)
    r = refine_gaussians(prediction.gaussians, Views(small_img, small_cams), RefineConfig(steps=steps))
    info = {"steps": r.steps, "seconds": r.seconds, "input_psnr_before": r.psnr_before, "input_psnr_after": r.psnr_after}
    return Refinement(r.gaussians, info, time.perf_counter() - t0)
