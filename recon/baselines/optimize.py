"""Baseline (a): per-scene 3D Gaussian optimisation from scratch at a fixed wall-clock budget.

The recipe is 3DGS (Kerbl et al. 2023) cut down for a handful of views and a CPU budget of tens of
seconds, i.e. a few hundred iterations instead of 30k:

- initialisation from the camera rig alone (no depth): random points in the ball every camera sees
  (``geometry.scene_sphere``), carved by the masks when the input has them (a coarse visual hull),
  coloured by the mean of the input pixels they project to, scaled by nearest-neighbour spacing;
- raw parameters (means, log-scales, quaternions, opacity logits, SH DC and degree-1 rest) under Adam
  with 3DGS's per-parameter learning rates, raised because there are ~100x fewer steps; the means'
  rate is scaled by the scene extent and decays exponentially;
- loss ``(1 - l) L1 + l (1 - SSIM)`` on one random input view per step (plus an alpha-vs-mask L1
  term when masks are given), rendered at half resolution early on for speed;
- a few densification events (clone small / split large Gaussians with the largest screen-space
  position gradient, prune transparent ones) under a cap on the count, so the budget buys iterations.

Schedules are written against *progress* in [0, 1]: elapsed / budget normally, iteration / max_iters
when ``max_iters`` is set (which makes a run deterministic given the seed).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F
from kornia.geometry.conversions import quaternion_to_rotation_matrix
from torch import Tensor

from recon.core.geometry import in_image, sample_images, scene_sphere
from recon.core.types import Reconstruction, Views
from renderer import Cameras, Gaussians, render
from renderer.sh import SH_C0, num_sh_bases


@dataclass
class OptimizeConfig:
    """Settings of ``OptimizeBaseline``. Fractions named ``*_at`` / ``*_until`` are of progress in [0, 1]."""

    seed: int = 0
    max_iters: int | None = None  # stop after this many steps too (progress then counts steps: deterministic)
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)  # behind the Gaussians while optimising
    # Initialisation.
    num_init: int = 3000
    init_opacity: float = 0.1
    use_masks: bool = True  # carve the initial points and supervise alpha with the input masks, if any
    # Capacity and densification.
    max_gaussians: int = 10000
    densify_at: tuple[float, ...] = (0.3, 0.6)
    densify_fraction: float = 0.1  # of the current count, those with the largest view-space gradient
    densify_min_steps: int = 20  # a scheduled event is skipped unless this many steps passed since the last
    percent_dense: float = 0.01  # split (not clone) Gaussians larger than this fraction of the extent
    prune_opacity: float = 0.005
    opacity_reset_at: tuple[float, ...] = ()  # 3DGS resets every 3k of 30k steps; too few steps here
    # Appearance.
    sh_degree: int = 1
    sh_up_at: float = 0.4  # degree 0 before this, ``sh_degree`` after
    # Loss.
    ssim_weight: float = 0.2
    mask_weight: float = 0.1
    views_per_step: int = 1
    # Adam learning rates (3DGS: means 1.6e-4 -> 1.6e-6 x extent, dc 2.5e-3, opacity 0.05 (0.025 later
    # versions), scaling 5e-3, rotation 1e-3), raised for a few hundred steps.
    lr_means: float = 1.6e-3  # x extent
    lr_means_final: float = 1.6e-5  # x extent, reached at progress 1
    lr_sh_dc: float = 0.01
    lr_sh_rest: float = 0.0005
    lr_opacity: float = 0.05
    lr_log_scales: float = 0.01
    lr_quats: float = 0.002
    # Coarse-to-fine: (until progress, downscale factor) pairs, then full resolution. A level whose
    # shorter side would fall below ``min_level_size`` pixels is skipped.
    resolution_schedule: tuple[tuple[float, int], ...] = ((0.3, 4), (0.6, 2))
    min_level_size: int = 48


def activate(raw: dict[str, Tensor], sh_degree: int) -> Gaussians:
    """Raw optimiser parameters -> activated ``Gaussians`` (the one place this happens).

    ``raw``: means [N, 3] world; log_scales [N, 3]; quats [N, 4] wxyz, any norm; opacity_logits [N];
    sh_dc [N, 1, 3]; sh_rest [N, K-1, 3]. Only the first ``sh_degree`` bands are returned.
    """
    sh = torch.cat([raw["sh_dc"], raw["sh_rest"][:, : num_sh_bases(sh_degree) - 1]], dim=1)
    return Gaussians(
        means=raw["means"],
        quats_wxyz=F.normalize(raw["quats"], dim=-1),
        scales=torch.exp(raw["log_scales"]),
        opacities=torch.sigmoid(raw["opacity_logits"]),
        sh=sh,
    )


def raw_from_gaussians(g: Gaussians, sh_degree: int, min_opacity: float = 1e-4) -> dict[str, Tensor]:
    """The inverse of ``activate``: raw parameters whose activation is ``g`` (opacities clamped to
    ``[min_opacity, 1 - min_opacity]`` so the logits stay finite; SH bands beyond ``g``'s start at 0,
    bands beyond ``sh_degree`` are dropped)."""
    n, k = len(g), num_sh_bases(sh_degree)
    rest = torch.zeros(n, k - 1, 3, device=g.means.device)
    have = min(g.sh.shape[1], k) - 1
    rest[:, :have] = g.sh[:, 1 : 1 + have].float()
    return {
        "means": g.means.float().clone(),
        "log_scales": torch.log(g.scales.float().clamp_min(1e-8)),
        "quats": F.normalize(g.quats_wxyz.float(), dim=-1),
        "opacity_logits": torch.logit(g.opacities.float().clamp(min_opacity, 1 - min_opacity)),
        "sh_dc": g.sh[:, :1].float().clone(),
        "sh_rest": rest,
    }


class _AdamParams:
    """Raw parameters under Adam (Kingma & Ba; torch's update rule), with the row surgery that
    densification needs: pruning drops rows of the moments, new rows start with zero moments.

    Hand-written because it is a few lines, keeps the surgery obvious, and ``torch.optim`` imports
    ``torch._dynamo`` on first use (seconds of a short budget).
    """

    def __init__(self, raw: dict[str, Tensor], lrs: dict[str, float], betas=(0.9, 0.999), eps: float = 1e-15):
        self.params = {k: v.detach().clone().requires_grad_(True) for k, v in raw.items()}
        self.lrs = dict(lrs)
        self.betas, self.eps = betas, eps  # 3DGS's eps: these gradients are tiny
        self.exp_avg = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.exp_avg_sq = {k: torch.zeros_like(v) for k, v in self.params.items()}
        self.steps = 0

    def __len__(self) -> int:
        return self.params["means"].shape[0]

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        b1, b2 = self.betas
        bias1, bias2 = 1 - b1**self.steps, 1 - b2**self.steps
        for name, p in self.params.items():
            if p.grad is None:
                continue
            m, v = self.exp_avg[name], self.exp_avg_sq[name]
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.addcdiv_(m, (v / bias2).sqrt_().add_(self.eps), value=-self.lrs[name] / bias1)

    @torch.no_grad()
    def edit(self, keep: Tensor, extra: dict[str, Tensor] | None = None) -> None:
        """Keep rows ``keep`` (bool [N]) and append ``extra`` rows; new rows start with zero moments."""
        for name, p in self.params.items():
            add = extra[name] if extra else p.new_zeros((0,) + p.shape[1:])
            self.params[name] = torch.cat([p.detach()[keep], add]).requires_grad_(True)
            for moments in (self.exp_avg, self.exp_avg_sq):
                moments[name] = torch.cat([moments[name][keep], torch.zeros_like(add)])

    @torch.no_grad()
    def reset_state(self, name: str) -> None:
        self.exp_avg[name].zero_()
        self.exp_avg_sq[name].zero_()


class OptimizeBaseline:
    """Per-scene Gaussian optimisation on the input views only, stopped by a wall-clock budget.

    Example (``inputs`` is a ``recon.core.types.Views``)::

        method = OptimizeBaseline(budget_s=30.0)
        rec = method.reconstruct(inputs)
        rec.info["iterations"], len(rec.gaussians), rec.seconds
    """

    def __init__(self, budget_s: float = 30.0, config: OptimizeConfig | None = None):
        self.budget_s = float(budget_s)
        self.config = config or OptimizeConfig()
        self.name = f"optimize-{int(budget_s)}s"

    def reconstruct(self, inputs: Views, init: Gaussians | None = None, t0: float | None = None) -> Reconstruction:
        """Optimise Gaussians (world frame of ``inputs.cameras``) until the budget or ``max_iters`` ends.

        ``init``: start from these Gaussians (world frame) instead of the random ball; ``t0``: the
        ``time.perf_counter()`` the budget counts from (default now), so time spent making ``init``
        can count against it.
        """
        t0 = time.perf_counter() if t0 is None else t0
        cfg = self.config
        gen = torch.Generator().manual_seed(cfg.seed)  # CPU generator: same draws on any device
        device = inputs.images.device
        images = inputs.images.float()
        cams = inputs.cameras.to(device=device, dtype=torch.float32)
        masks = inputs.masks.float() if (cfg.use_masks and inputs.masks is not None) else None
        centers = cams.centers
        extent = 1.1 * float((centers - centers.mean(0)).norm(dim=-1).max().clamp_min(1e-6))  # 3DGS's
        V = len(cams)

        raw = _initial_raw(images, cams, masks, cfg, gen) if init is None else raw_from_gaussians(init.to(device), cfg.sh_degree)
        params = _AdamParams(raw, self._lrs(extent))
        levels = _pyramid(images, cams, masks, cfg)
        bg = torch.tensor(cfg.background, dtype=torch.float32, device=device)
        grad_sum = torch.zeros(len(params), device=device)
        seen = torch.zeros(len(params), device=device)
        densify_next, reset_next, last_densify, order = 0, 0, 0, torch.empty(0, dtype=torch.long)
        it, loss_value, t_init = 0, float("nan"), time.perf_counter() - t0

        while True:
            elapsed = time.perf_counter() - t0
            if elapsed >= self.budget_s or (cfg.max_iters is not None and it >= cfg.max_iters):
                break
            progress = it / cfg.max_iters if cfg.max_iters is not None else elapsed / self.budget_s

            # Scheduled structure edits happen between steps.
            if densify_next < len(cfg.densify_at) and progress >= cfg.densify_at[densify_next]:
                densify_next += 1
                if it - last_densify >= cfg.densify_min_steps:
                    last_densify = it
                    _densify_and_prune(params, grad_sum / seen.clamp_min(1), seen > 0, cfg, extent, gen)
                    grad_sum = torch.zeros(len(params), device=device)
                    seen = torch.zeros(len(params), device=device)
            if reset_next < len(cfg.opacity_reset_at) and progress >= cfg.opacity_reset_at[reset_next]:
                reset_next += 1
                with torch.no_grad():
                    params.params["opacity_logits"].clamp_(max=math.log(0.01 / 0.99))
                params.reset_state("opacity_logits")
            params.lrs["means"] = extent * cfg.lr_means * (cfg.lr_means_final / cfg.lr_means) ** min(progress, 1.0)

            # Views cycle through random permutations, as in 3DGS.
            if len(order) < cfg.views_per_step:
                order = torch.cat([order, torch.randperm(V, generator=gen)])
            idx, order = order[: cfg.views_per_step].tolist(), order[cfg.views_per_step :]
            level_images, level_cams, level_masks = levels[_level_factor(progress, levels, cfg)]
            degree = 0 if progress < cfg.sh_up_at else cfg.sh_degree

            out = render(activate(params.params, degree), level_cams[idx], background=bg, sh_degree=degree)
            loss = _loss(out.rgb, out.alpha, level_images[idx], None if level_masks is None else level_masks[idx], cfg)
            params.zero_grad()
            loss.backward()
            with torch.no_grad():
                visible = (out.radii > 0).all(-1).any(0)
                grad_sum += _view_space_grad(params.params["means"], level_cams[idx]) * visible
                seen += visible
            params.step()
            loss_value = float(loss.detach())
            it += 1

        return self._result(params, t0, t_init, it, loss_value, extent)

    @torch.no_grad()
    def _result(self, params: _AdamParams, t0: float, t_init: float, iterations: int, loss_value: float,
                extent: float) -> Reconstruction:
        """The optimised Gaussians at full SH degree without the transparent ones (below
        ``prune_opacity``), timed from ``t0``; ``t_init``: seconds spent before the first step."""
        g = activate(params.params, self.config.sh_degree).detach()
        g = g[g.opacities >= self.config.prune_opacity]
        seconds = time.perf_counter() - t0
        info = {
            "iterations": iterations,
            "gaussians": len(g),
            "iters_per_s": iterations / max(seconds - t_init, 1e-9),
            "init_s": t_init,
            "final_loss": loss_value,
            "budget_s": self.budget_s,
            "extent": extent,
        }
        return Reconstruction(gaussians=g, seconds=seconds, info=info)

    def _lrs(self, extent: float) -> dict[str, float]:
        c = self.config
        return {
            "means": c.lr_means * extent,
            "log_scales": c.lr_log_scales,
            "quats": c.lr_quats,
            "opacity_logits": c.lr_opacity,
            "sh_dc": c.lr_sh_dc,
            "sh_rest": c.lr_sh_rest,
        }


def _loss(rgb: Tensor, alpha: Tensor, target: Tensor, mask: Tensor | None, cfg: OptimizeConfig) -> Tensor:
    """``(1 - l) L1 + l (1 - SSIM)`` on colour ``[C, H, W, 3]``, plus ``mask_weight`` x L1(alpha, mask)."""
    ssim = kornia.metrics.ssim(rgb.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2), window_size=11).mean()
    loss = (1 - cfg.ssim_weight) * (rgb - target).abs().mean() + cfg.ssim_weight * (1 - ssim)
    if mask is not None and cfg.mask_weight > 0:
        loss = loss + cfg.mask_weight * (alpha - mask).abs().mean()
    return loss


def _initial_raw(images: Tensor, cams: Cameras, masks: Tensor | None, cfg: OptimizeConfig, gen: Tensor) -> dict[str, Tensor]:
    """Raw parameters of the initial Gaussians (see the module docstring); ``images`` [V, H, W, 3]."""
    device = images.device
    sphere = scene_sphere(cams.to(device="cpu"))
    # Uniform points in the ball (radius ~ cube root of a uniform draw); oversample when carving.
    n_draw = cfg.num_init * (8 if masks is not None else 1)
    dirs = F.normalize(torch.randn(n_draw, 3, generator=gen), dim=-1)
    radii = sphere.radius * torch.rand(n_draw, 1, generator=gen) ** (1 / 3)
    points = (sphere.center.float() + dirs * radii).to(device)

    uv, depth = cams.project(points)  # [V, P, 2], [V, P]
    inside = in_image(uv, depth, cams.width, cams.height)
    if masks is not None:
        # Visual hull: drop points that some view sees over its background.
        fg = sample_images(masks, uv, mode="nearest")[..., 0] > 0.5
        hull = (fg | ~inside).all(0)
        if int(hull.sum()) >= 16:  # a failed carve (bad masks) falls back to the whole ball
            points, uv, inside = points[hull], uv[:, hull], inside[:, hull]
    points, uv, inside = points[: cfg.num_init], uv[:, : cfg.num_init], inside[:, : cfg.num_init]

    colours = sample_images(images, uv)  # [V, P, 3]
    w = inside.float()[..., None]
    rgb = (colours * w).sum(0) / w.sum(0).clamp_min(1.0)
    n = points.shape[0]
    quats = torch.zeros(n, 4, device=device)
    quats[:, 0] = 1.0
    opacity_logit = math.log(cfg.init_opacity / (1 - cfg.init_opacity))
    return {
        "means": points,
        "log_scales": torch.log(_knn_spacing(points))[:, None].expand(n, 3).clone(),
        "quats": quats,
        "opacity_logits": torch.full((n,), opacity_logit, device=device),
        "sh_dc": ((rgb - 0.5) / SH_C0)[:, None, :],
        "sh_rest": torch.zeros(n, num_sh_bases(cfg.sh_degree) - 1, 3, device=device),
    }


def _knn_spacing(points: Tensor, k: int = 3, chunk: int = 2048) -> Tensor:
    """[P] root-mean-square distance to the ``k`` nearest other points (3DGS's initial scale)."""
    if len(points) < 2:
        return torch.full((len(points),), 0.01, device=points.device)
    out = []
    for start in range(0, len(points), chunk):
        d2 = torch.cdist(points[start : start + chunk], points).pow(2)
        nearest = d2.topk(min(k + 1, len(points)), dim=-1, largest=False).values[:, 1:]  # drop self
        out.append(nearest.mean(-1).sqrt())
    return torch.cat(out).clamp_min(1e-7)


def _pyramid(images: Tensor, cams: Cameras, masks: Tensor | None, cfg: OptimizeConfig) -> dict[int, tuple]:
    """{downscale factor: (images, cameras, masks)} for full resolution and every usable schedule level."""
    levels = {1: (images, cams, masks)}
    for _, f in cfg.resolution_schedule:
        w, h = cams.width // f, cams.height // f
        if f <= 1 or min(w, h) < cfg.min_level_size:
            continue
        levels[f] = (_area_resize(images, w, h), cams.resize(w, h), None if masks is None else _area_resize(masks, w, h))
    return levels


def _area_resize(images: Tensor, width: int, height: int) -> Tensor:
    """Box-filtered resize of ``images [V, H, W, D]`` (exact averages for integer factors)."""
    return F.interpolate(images.permute(0, 3, 1, 2), size=(height, width), mode="area").permute(0, 2, 3, 1)


def _level_factor(progress: float, levels: dict[int, tuple], cfg: OptimizeConfig) -> int:
    """Downscale factor to render at, at this progress (1 once the schedule has run out)."""
    for until, f in cfg.resolution_schedule:
        if progress < until and f in levels:
            return f
    return 1


def _view_space_grad(means: Tensor, cams: Cameras) -> Tensor:
    """[N] approximate norm of dLoss/d(projected mean) in NDC units, from the 3D mean's gradient.

    A pixel shift of the projection is a world shift of ``z / f`` at depth ``z``; NDC divides pixels
    by ``W / 2``. This stands in for the 2D gradient 3DGS accumulates, which ``render`` does not expose.
    """
    z = (means.detach()[None] - cams.centers[:, None]) @ cams.forward[:, :, None]  # [C, N, 1]
    px_per_ndc = 0.5 * cams.width / cams.K[:, 0, 0]  # [C]  (W/2) / f
    scale = (z[..., 0].clamp_min(1e-6) * px_per_ndc[:, None]).mean(0)
    return means.grad.norm(dim=-1) * scale


@torch.no_grad()
def _densify_and_prune(params: _AdamParams, grad: Tensor, seen: Tensor, cfg: OptimizeConfig, extent: float,
                       gen: torch.Generator) -> None:
    """Clone/split the Gaussians with the largest mean view-space gradient, then prune transparent ones.

    Rather than 3DGS's absolute gradient threshold (which depends on image size and loss scale), the
    top ``densify_fraction`` of the seen Gaussians grow, as far as ``max_gaussians`` allows.
    """
    p = params.params
    n = len(params)
    budget = min(int(cfg.densify_fraction * n), cfg.max_gaussians - n, int(seen.sum()))
    keep = torch.sigmoid(p["opacity_logits"]) >= cfg.prune_opacity
    extra = None
    if budget > 0:
        chosen = torch.where(seen, grad, torch.full_like(grad, -1.0)).topk(budget).indices
        scales = torch.exp(p["log_scales"][chosen])
        large = scales.amax(-1) > cfg.percent_dense * extent
        clone, split = chosen[~large], chosen[large]
        # Split: two children drawn from the parent's Gaussian, 1.6x smaller; the parent goes.
        rot = quaternion_to_rotation_matrix(F.normalize(p["quats"][split], dim=-1))
        offsets = torch.randn(2, len(split), 3, generator=gen).to(rot.device) * scales[large]
        children = (p["means"][split][None] + (rot[None] @ offsets[..., None])[..., 0]).reshape(-1, 3)
        extra = {}
        for name, t in p.items():
            t = t.detach()
            split_rows = t[split].repeat(2, *([1] * (t.ndim - 1)))
            if name == "means":
                split_rows = children
            elif name == "log_scales":
                split_rows = split_rows - math.log(1.6)
            extra[name] = torch.cat([t[clone], split_rows])
        keep[split] = False
    if not keep.any() and extra is None:
        keep[:] = True  # never prune everything: the next render would have nothing to differentiate
    params.edit(keep, extra)
