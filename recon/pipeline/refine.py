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
from collections.abc import Callable
from dataclasses import dataclass, field

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
    steps: int | None = 0  # at most this many steps; None = as many as ``seconds`` allows
    seconds: float | None = None  # wall-clock budget of the whole call (PSNR checks included); None = none
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
    # (seconds since the start, step, PSNR of that step's rendered input view in dB), at most
    # HISTORY_POINTS entries spread over the run
    history: list[tuple[float, int, float]] = field(default_factory=list)


HISTORY_POINTS = 50
StepCallback = Callable[[int, float, float], None]  # (step, seconds since the start, that step's PSNR in dB)


def _psnr(a: Tensor, b: Tensor) -> float:
    return float(-10 * torch.log10(F.mse_loss(a, b).clamp_min(1e-12)))


@torch.no_grad()
def input_view_psnr(g: Gaussians, views: Views, background: Tensor) -> float:
    """Mean PSNR (dB) of ``g`` rendered at every input camera against the input images."""
    vals = [_psnr(render(g, views.cameras[[i]], background=background).rgb[0], views.images[i]) for i in range(len(views))]
    return sum(vals) / len(vals)


def refine_gaussians(g: Gaussians, views: Views, cfg: RefineConfig, background: Tensor | tuple = (1.0, 1.0, 1.0),
                     on_step: StepCallback | None = None) -> RefineResult:
    """Refine ``g`` (world frame, SH degree 0 or more) on the posed ``views`` until ``cfg.steps`` steps
    or the ``cfg.seconds`` budget runs out, whichever comes first.

    The budget covers the whole call: the input-view PSNR before and after are measured inside it,
    and a step is only started when the time of one more step and of the final PSNR still fit.
    ``on_step(step, seconds_since_start, step_psnr)`` is called after every step (progress bars)."""
    bg = torch.as_tensor(background, dtype=torch.float32, device=g.device)
    t0 = time.perf_counter()
    before = input_view_psnr(g, views, bg)
    check_seconds = time.perf_counter() - t0  # the final PSNR costs about as much again
    max_steps = cfg.steps if cfg.steps is not None else (1 << 62)
    if max_steps <= 0 or len(g) == 0 or (cfg.seconds is not None and cfg.seconds <= 2 * check_seconds):
        return RefineResult(g, 0, time.perf_counter() - t0, before, before)
    deadline = None if cfg.seconds is None else t0 + cfg.seconds - check_seconds
    state = _RefineState(g.detach(), cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    history, step, step_seconds = [], 0, 0.0
    while step < max_steps and (deadline is None or time.perf_counter() + step_seconds <= deadline):
        t_step = time.perf_counter()
        idx = torch.randperm(len(views), generator=gen)[: cfg.views_per_step].tolist()
        step_psnr = state.step(views.images[idx], views.cameras[idx], bg)
        step += 1
        step_seconds = max(step_seconds * 0.8, time.perf_counter() - t_step)  # recent steps, the slow ones kept
        history.append((time.perf_counter() - t0, step, step_psnr))
        if on_step is not None:
            on_step(step, history[-1][0], step_psnr)
    final = state.gaussians()
    after = input_view_psnr(final, views, bg)
    return RefineResult(final, step, time.perf_counter() - t0, before, after, _thin(history, HISTORY_POINTS))


def _thin(history: list, n: int) -> list:
    """At most ``n`` entries of ``history``, evenly spread, the last one kept."""
    if len(history) <= n:
        return history
    keep = {round(i * (len(history) - 1) / (n - 1)) for i in range(n)}
    return [h for i, h in enumerate(history) if i in keep]


class _RefineState:
    """The optimised raw parameters, the anchors to the prediction, and the optimiser."""

    def __init__(self, g: Gaussians, cfg: RefineConfig, eps: float = 1e-4):
        self.cfg = cfg
        self.s0 = g.scales.clamp_min(1e-8).log()
        self.m0 = g.means.clone()
        self.anchor_unit = self.s0.exp().amax(-1, keepdim=True)  # each Gaussian's predicted largest scale
        unit = float(g.scales.median())
        self.raw = {
            "means": g.means.clone().requires_grad_(),
            "log_scales": self.s0.clone().requires_grad_(),
            "quats": g.quats_wxyz.clone().requires_grad_(),
            "opacity": torch.logit(g.opacities.clamp(eps, 1 - eps)).requires_grad_(),
            "sh": g.sh.clone().requires_grad_(),
        }
        self.opt = torch.optim.Adam([
            {"params": [self.raw["means"]], "lr": cfg.lr_means * unit},
            {"params": [self.raw["log_scales"]], "lr": cfg.lr_log_scales},
            {"params": [self.raw["quats"]], "lr": cfg.lr_quats},
            {"params": [self.raw["opacity"]], "lr": cfg.lr_opacity},
            {"params": [self.raw["sh"]], "lr": cfg.lr_color / SH_C0},
        ], eps=1e-15)

    def gaussians(self) -> Gaussians:
        r = self.raw
        return Gaussians(r["means"], F.normalize(r["quats"], dim=-1), r["log_scales"].exp(), torch.sigmoid(r["opacity"]),
                         r["sh"])

    def step(self, gt: Tensor, cameras, bg: Tensor) -> float:
        """One photometric step on ``gt [B, H, W, 3]`` seen from ``cameras``; returns its PSNR (dB)."""
        cfg, raw = self.cfg, self.raw
        out = render(self.gaussians(), cameras, background=bg)
        loss = F.l1_loss(out.rgb, gt) * (1 - cfg.ssim_weight)
        loss = loss + cfg.ssim_weight * ssim_loss(out.rgb.permute(0, 3, 1, 2), gt.permute(0, 3, 1, 2), 11)
        loss = loss + cfg.anchor_means * (((raw["means"] - self.m0) / self.anchor_unit) ** 2).mean()
        loss = loss + cfg.anchor_scales * ((raw["log_scales"] - self.s0) ** 2).mean()
        loss = loss + cfg.opacity_penalty * torch.sigmoid(raw["opacity"]).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return _psnr(out.rgb.detach(), gt)


@dataclass
class Refinement:
    """The refined Gaussians (the prediction's when nothing ran) and what the report records."""

    gaussians: Gaussians
    info: dict | None = None  # steps, seconds, input-view PSNR before and after; None when not run
    seconds: float | None = None


def refine(prediction: Prediction, model_cfg: ModelConfig, steps: int | None, seconds: float | None = None,
           on_step: StepCallback | None = None) -> Refinement:
    """Stage 4: refinement on the input views resized to the model's working size, for at most
    ``steps`` steps (None: no step limit) and ``seconds`` of wall clock (None: no budget). Nothing
    runs when ``steps`` is 0 or when neither limit is set."""
    if steps == 0 or (steps is None and seconds is None) or (seconds is not None and seconds <= 0):
        return Refinement(prediction.gaussians)
    t0 = time.perf_counter()
    views = prediction.views
    w, h = model_input_size(views.cameras.width, views.cameras.height, model_cfg.input_long_side,
                            model_cfg.input_multiple)
    small_img, small_cams = resize_views(views.images, views.cameras, w, h)
    r = refine_gaussians(prediction.gaussians, Views(small_img, small_cams), RefineConfig(steps=steps, seconds=seconds),
                         on_step=on_step)
    info = {"steps": r.steps, "seconds": r.seconds, "budget_seconds": seconds, "input_psnr_before": r.psnr_before,
            "input_psnr_after": r.psnr_after, "gaussians": len(r.gaussians),
            "history": [{"seconds": round(s, 3), "step": k, "psnr": round(v, 3)} for s, k, v in r.history]}
    return Refinement(r.gaussians, info, time.perf_counter() - t0)
