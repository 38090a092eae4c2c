"""Both baselines on a small exact scene: a textured sphere ray-cast analytically in the test.

The scene is ray-cast (not splatted) so that its depth and colours are exactly consistent across
views: splatting a surface of overlapping Gaussians shifts colours by about a pixel towards the near
side (front-to-back order plus the 0.3 px^2 low-pass), which a stereo test would read as depth error.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from recon.baselines import (
    OptimizeBaseline,
    OptimizeConfig,
    PlaneSweepBaseline,
    PlaneSweepConfig,
)
from recon.baselines.optimize import _AdamParams, activate, raw_from_gaussians
from recon.core.geometry import depth_range, scene_sphere
from recon.core.types import Method, Reconstruction, Views
from renderer import Cameras, render

SIZE = 64
RADIUS = 0.6  # of the sphere at the world origin
WHITE = (1.0, 1.0, 1.0)


def _rig(azimuths_deg, elevations_deg, size=SIZE, distance=2.5) -> Cameras:
    eyes = [
        [distance * math.cos(math.radians(e)) * math.cos(math.radians(a)),
         distance * math.cos(math.radians(e)) * math.sin(math.radians(a)),
         distance * math.sin(math.radians(e))]
        for a, e in zip(azimuths_deg, elevations_deg, strict=True)
    ]
    return Cameras.look_at(torch.tensor(eyes), torch.zeros(3), fov_deg=50.0, width=size, height=size)


def _texture(points: torch.Tensor) -> torch.Tensor:
    """Solid colour texture [P, 3] in [0, 1]: a few sharpened random sinusoids (wavelength ~ 1 world unit)."""
    gen = torch.Generator().manual_seed(0)
    freq, phase, mix = torch.randn(6, 3, generator=gen) * 6, torch.rand(6, generator=gen) * 6.28, torch.rand(6, 3, generator=gen)
    waves = torch.sin(points @ freq.T + phase)
    return (0.5 + 0.45 * torch.tanh(2 * (waves @ (mix - 0.5)))).clamp(0, 1)


def _sphere_hits(cams: Cameras) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(hit [C, H, W], points [C, H, W, 3], z-depth [C, H, W]) of the pixel-centre rays with the sphere."""
    o, d = cams.rays()
    od, oo = (o * d).sum(-1), (o * o).sum(-1)
    disc = od**2 - (oo - RADIUS**2)
    t = -od - torch.sqrt(disc.clamp_min(0))
    hit = disc > 0
    z = t * (d * cams.forward[:, None, None, :]).sum(-1)
    return hit, o + t[..., None] * d, torch.where(hit, z, torch.zeros_like(z))


def _views(cams: Cameras, supersample: int = 2) -> Views:
    """Exact views of the sphere over white: colours and masks supersampled, depth at pixel centres."""
    hi = cams.resize(cams.width * supersample, cams.height * supersample)
    hit, points, _ = _sphere_hits(hi)
    rgb = torch.where(hit[..., None], _texture(points), torch.ones_like(points))

    def pool(x):
        return F.avg_pool2d(x.permute(0, 3, 1, 2), supersample).permute(0, 2, 3, 1)

    _, _, depth = _sphere_hits(cams)
    return Views(pool(rgb), cams, masks=pool(hit[..., None].float()), depth_z=depth[..., None])


@pytest.fixture(scope="module")
def scene() -> tuple[Views, Views]:
    inputs = _views(_rig([0, 45, 90, 135], [20, 30, 15, 25]))
    targets = _views(_rig([22.5, 112.5], [25, 20]))
    return inputs, targets


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


def _render_psnr(rec: Reconstruction, views: Views) -> float:
    with torch.no_grad():
        return _psnr(render(rec.gaussians, views.cameras, background=WHITE).rgb, views.images)


def _trivial_psnr(inputs: Views, targets: Views) -> float:
    """The better of two trivial predictions: the mean input colour, and a white image."""
    mean = inputs.images.mean(dim=(0, 1, 2)).expand_as(targets.images)
    return max(_psnr(mean, targets.images), _psnr(torch.ones_like(targets.images), targets.images))


# ---- geometry ------------------------------------------------------------------------------------


def test_scene_sphere_of_an_orbit_rig():
    cams = Cameras.orbit(5, radius=3.0, elevation_deg=20, fov_deg=40, width=80, height=60)
    sphere = scene_sphere(cams)
    assert sphere.converged
    torch.testing.assert_close(sphere.center, torch.zeros(3), atol=1e-4, rtol=0)
    # Inscribed ball: limited by the narrower (vertical) half field of view.
    half_fov_y = math.atan(30 / cams.K[0, 1, 1].item())
    assert sphere.radius == pytest.approx(3.0 * math.sin(half_fov_y), rel=1e-4)
    near, far = depth_range(cams, sphere, scale=1.0)
    torch.testing.assert_close(near, torch.full((5,), 3.0 - sphere.radius), atol=1e-4, rtol=0)
    torch.testing.assert_close(far, torch.full((5,), 3.0 + sphere.radius), atol=1e-4, rtol=0)


def test_scene_sphere_falls_back_for_parallel_cameras():
    eyes = torch.tensor([[x, 0.0, 0.0] for x in (-0.2, 0.0, 0.2)])
    cams = Cameras.look_at(eyes, eyes + torch.tensor([0.0, 0.0, 1.0]), up=(0, -1, 0), width=32, height=32)
    sphere = scene_sphere(cams)
    assert not sphere.converged and sphere.radius > 0
    assert sphere.center[2] > 0  # in front of the rig


# ---- optimisation baseline -------------------------------------------------------------------------


def test_activate_is_the_raw_to_physical_map():
    raw = {
        "means": torch.randn(5, 3),
        "log_scales": torch.randn(5, 3),
        "quats": torch.randn(5, 4),
        "opacity_logits": torch.randn(5),
        "sh_dc": torch.randn(5, 1, 3),
        "sh_rest": torch.randn(5, 3, 3),
    }
    g0, g1 = activate(raw, 0), activate(raw, 1)
    assert g0.sh.shape == (5, 1, 3) and g1.sh.shape == (5, 4, 3)
    torch.testing.assert_close(g1.scales, raw["log_scales"].exp())
    torch.testing.assert_close(g1.opacities, torch.sigmoid(raw["opacity_logits"]))
    torch.testing.assert_close(g1.quats_wxyz.norm(dim=-1), torch.ones(5))


def test_adam_matches_torch_and_its_surgery_keeps_moments_by_row():
    raw = {"means": torch.randn(4, 3), "opacity_logits": torch.randn(4)}
    params = _AdamParams(raw, {"means": 0.1, "opacity_logits": 0.05})
    reference = {k: v.clone().requires_grad_(True) for k, v in raw.items()}
    torch_adam = torch.optim.Adam([{"params": [reference["means"]], "lr": 0.1},
                                   {"params": [reference["opacity_logits"]], "lr": 0.05}], eps=1e-15)
    for _ in range(3):
        for p in (params.params, reference):
            (p["means"].pow(2).sum() + p["opacity_logits"].sin().sum()).backward()
        params.step()
        torch_adam.step()
        params.zero_grad()
        torch_adam.zero_grad()
    for k in raw:
        torch.testing.assert_close(params.params[k], reference[k].detach())

    moment = params.exp_avg["means"].clone()
    keep = torch.tensor([True, False, True, True])
    params.edit(keep, {"means": torch.zeros(2, 3), "opacity_logits": torch.zeros(2)})
    assert len(params) == 5 and params.params["opacity_logits"].shape == (5,)
    assert params.params["means"].requires_grad
    torch.testing.assert_close(params.exp_avg["means"][:3], moment[keep])
    assert (params.exp_avg["means"][3:] == 0).all() and params.exp_avg_sq["opacity_logits"].shape == (5,)


@pytest.fixture(scope="module")
def optimised(scene):
    inputs, _ = scene
    inputs = Views(inputs.images, inputs.cameras)  # no masks: the harder, unmasked initialisation
    config = OptimizeConfig(max_iters=50, num_init=1500)
    init = OptimizeBaseline(1e6, OptimizeConfig(max_iters=0, num_init=1500)).reconstruct(inputs)
    return init, OptimizeBaseline(1e6, config).reconstruct(inputs)


def test_optimize_fits_inputs_and_generalises(scene, optimised):
    inputs, targets = scene
    init, rec = optimised
    assert rec.info["iterations"] == 50 and rec.info["gaussians"] == len(rec.gaussians) > 100
    rec.gaussians.validate("optimize baseline")
    # Rendering at the input cameras reproduces the inputs: the Gaussians are in the input world frame.
    psnr_init, psnr_fit = _render_psnr(init, inputs), _render_psnr(rec, inputs)
    assert psnr_fit > psnr_init + 4.0, (psnr_init, psnr_fit)
    assert psnr_fit > 17.0
    assert _render_psnr(rec, targets) > _trivial_psnr(inputs, targets) + 5.0


def test_optimize_uses_masks_for_a_visual_hull(scene):
    inputs, _ = scene
    rec = OptimizeBaseline(1e6, OptimizeConfig(max_iters=0, num_init=500)).reconstruct(inputs)
    # Carved initial points lie in the (loose, four-view) hull of the sphere, not throughout the
    # ball all cameras see (radius ~1.06 here).
    assert rec.gaussians.means.norm(dim=-1).max() < RADIUS * 1.5


def test_optimize_is_deterministic_given_seed_and_iterations(scene):
    inputs, _ = scene
    config = OptimizeConfig(max_iters=6, num_init=300, densify_at=(0.5,), densify_min_steps=1, seed=3)
    a = OptimizeBaseline(1e6, config).reconstruct(inputs)
    b = OptimizeBaseline(1e6, config).reconstruct(inputs)
    assert len(a.gaussians) == len(b.gaussians) > 300  # one densification event happened
    for name in ("means", "quats_wxyz", "scales", "opacities", "sh"):
        assert torch.equal(getattr(a.gaussians, name), getattr(b.gaussians, name)), name


def test_optimize_respects_the_wall_clock_budget(scene):
    inputs, _ = scene
    method: Method = OptimizeBaseline(budget_s=2.0, config=OptimizeConfig(num_init=500))
    assert method.name == "optimize-2s"
    rec = method.reconstruct(inputs)
    assert rec.info["iterations"] >= 1
    # Overshoot is at most one step plus the final activation; the slack tolerates a shared CPU.
    assert 2.0 <= rec.seconds < 2.0 + 5.0


def test_raw_from_gaussians_inverts_activate():
    raw = {
        "means": torch.randn(6, 3),
        "log_scales": torch.randn(6, 3),
        "quats": F.normalize(torch.randn(6, 4), dim=-1),
        "opacity_logits": torch.randn(6),
        "sh_dc": torch.randn(6, 1, 3),
        "sh_rest": torch.randn(6, 3, 3),
    }
    g = activate(raw, 1)
    back = raw_from_gaussians(g, 1)
    for k, v in raw.items():
        torch.testing.assert_close(back[k], v, rtol=1e-4, atol=1e-4)
    # degree-0 Gaussians into a degree-1 optimiser: the new band starts at zero; the other way it is dropped
    up = raw_from_gaussians(activate(raw, 0), 1)
    assert up["sh_rest"].shape == (6, 3, 3) and (up["sh_rest"] == 0).all()
    assert raw_from_gaussians(g, 0)["sh_rest"].shape == (6, 0, 3)
    # opacities of exactly 0 or 1 stay finite
    g.opacities = torch.tensor([0.0, 1.0, 0.5, 0.5, 0.5, 0.5])
    assert torch.isfinite(raw_from_gaussians(g, 1)["opacity_logits"]).all()


def test_optimize_from_given_gaussians(scene, optimised):
    inputs, _ = scene
    inputs = Views(inputs.images, inputs.cameras)
    _, fitted = optimised
    # No steps: the start is returned as given (only the transparent ones pruned).
    start = fitted.gaussians
    kept = OptimizeBaseline(1e6, OptimizeConfig(max_iters=0, prune_opacity=0.0)).reconstruct(inputs, init=start)
    torch.testing.assert_close(kept.gaussians.means, start.means)
    torch.testing.assert_close(kept.gaussians.sh, start.sh)
    torch.testing.assert_close(kept.gaussians.opacities, start.opacities, rtol=1e-4, atol=1e-6)
    # From a damaged copy of the fit, a few steps win back most of the input fit.
    damaged = start.clone()
    damaged.sh[:, 0] = damaged.sh[:, 0] + 0.8 * torch.randn(len(start), 3, generator=torch.Generator().manual_seed(0))
    before = _render_psnr(Reconstruction(damaged), inputs)
    after = _render_psnr(OptimizeBaseline(1e6, OptimizeConfig(max_iters=30)).reconstruct(inputs, init=damaged), inputs)
    assert after > before + 3.0 and after > _render_psnr(fitted, inputs) - 2.0, (before, after)
    # ``t0`` counts time already spent against the budget: a spent budget takes no step.
    import time

    late = OptimizeBaseline(5.0, OptimizeConfig()).reconstruct(inputs, init=start, t0=time.perf_counter() - 10.0)
    assert late.info["iterations"] == 0 and late.seconds >= 10.0


# ---- plane-sweep baseline --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def swept(scene):
    inputs, _ = scene
    method = PlaneSweepBaseline()
    return method.depth_maps(inputs), method.reconstruct(inputs)


def test_plane_sweep_recovers_depth(scene, swept):
    inputs, _ = scene
    maps, _ = swept
    gt = inputs.depth_z[..., 0]
    assert not (maps.keep & (gt == 0)).any()  # masks restrict the reference pixels
    # Most of the object survives the score and consistency filters...
    assert maps.keep.sum() > 0.35 * (gt > 0).sum()
    # ... with depth that agrees with the exact depth (45 deg baselines, 64 px images).
    rel = (maps.depth_z - gt).abs()[maps.keep] / gt[maps.keep]
    assert float(rel.median()) < 0.03
    assert float((rel < 0.05).float().mean()) > 0.75


def test_plane_sweep_gaussians_render_in_the_input_frame(scene, swept):
    inputs, targets = scene
    maps, rec = swept
    method: Method = PlaneSweepBaseline()
    assert method.name == "plane-sweep"
    assert len(rec.gaussians) == int(maps.keep.sum())
    assert 0 < rec.info["kept_fraction"] < 1 and rec.info["depth_range"][0] > 0
    with torch.no_grad():
        out = render(rec.gaussians, inputs.cameras, background=WHITE)
    gt = inputs.depth_z[..., 0]
    both = (out.alpha[..., 0] > 0.5) & (gt > 0)
    rel = (out.depth[..., 0] - gt).abs()[both] / gt[both]
    assert float(rel.median()) < 0.03
    assert _render_psnr(rec, targets) > _trivial_psnr(inputs, targets) + 3.0


def test_plane_sweep_without_masks_and_with_a_given_range(scene):
    inputs, _ = scene
    unmasked = Views(inputs.images, inputs.cameras)
    maps = PlaneSweepBaseline(PlaneSweepConfig(near=1.5, far=3.5, num_depths=48)).depth_maps(unmasked)
    assert maps.planes == [48] * 4 and torch.allclose(maps.near, torch.full((4,), 1.5))
    gt = inputs.depth_z[..., 0]
    on_object = maps.keep & (gt > 0)
    # The flat white background has no texture, so little of it survives.
    assert on_object.sum() > 0.3 * (gt > 0).sum() and (maps.keep & (gt == 0)).sum() < 0.5 * on_object.sum()
    rel = (maps.depth_z - gt).abs()[on_object] / gt[on_object]
    assert float(rel.median()) < 0.03


def test_plane_sweep_works_at_a_reduced_resolution(scene):
    inputs, targets = scene
    method = PlaneSweepBaseline(PlaneSweepConfig(max_size=48))
    maps = method.depth_maps(inputs)
    assert maps.depth_z.shape == (4, 48, 48)
    gt = _views(method.working_views(inputs).cameras).depth_z[..., 0]
    rel = (maps.depth_z - gt).abs()[maps.keep] / gt[maps.keep]
    assert maps.keep.sum() > 0.3 * (gt > 0).sum() and float(rel.median()) < 0.04
    # Gaussians from the coarser maps still render at the inputs' resolution in the same frame.
    assert _render_psnr(method.reconstruct(inputs), targets) > _trivial_psnr(inputs, targets) + 3.0


def test_plane_sweep_needs_two_views(scene):
    from recon.core.errors import ReconError

    inputs, _ = scene
    with pytest.raises(ReconError):
        PlaneSweepBaseline().reconstruct(inputs.select([0]))
