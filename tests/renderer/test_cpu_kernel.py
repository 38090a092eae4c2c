"""The compiled CPU kernel (renderer._cpu) against its pure-torch twin, the brute-force compositor and
autograd: images, gradients, degenerate inputs, the fallback without a compiler."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys

import pytest
import torch

from bench.scenes import random_scene
from renderer import Cameras, Gaussians, ReconError, _cpu, render
from renderer import _torch_impl as impl
from renderer._reference import rasterize_reference

if shutil.which("c++") is None:  # without a compiler render() falls back (tested below); nothing else to test
    pytest.skip("no C++ compiler: the compiled CPU kernel cannot be built", allow_module_level=True)

FIELDS = ("means", "quats_wxyz", "scales", "opacities", "sh")


@pytest.fixture(scope="module", autouse=True)
def kernel():
    # With a compiler the build must succeed: a broken kernel fails here instead of being skipped.
    ops = _cpu.load()
    assert ops is not None, _cpu.unavailable_reason()
    return ops


def _cams(n=3, w=37, h=29, dtype=torch.float64, radius=2.5):
    return Cameras.orbit(n, radius=radius, elevation_deg=25, width=w, height=h, fov_deg=45).to(dtype=dtype)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference relative to the reference's largest magnitude."""
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30)) if b.numel() else 0.0


def _scene(n=300, seed=0, dtype=torch.float64, sh_degree=0, grow=4.0):
    g = random_scene(n, seed=seed, sh_degree=sh_degree, dtype=dtype)
    g.scales = g.scales * grow  # footprints of a few pixels at these resolutions
    return g


def _leaf(g: Gaussians) -> Gaussians:
    g = g.clone()
    for name in FIELDS:
        getattr(g, name).requires_grad_(True)
    return g


# ---- projection ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_projection_matches_twin(dtype):
    g, cams = _scene(500, seed=1, dtype=dtype), _cams(n=2, w=64, h=48, dtype=dtype)
    a, b = impl.project(g, cams), _cpu.project(g, cams)
    assert torch.equal(a.radii, b.radii)
    vis = (a.radii > 0).all(-1)
    assert vis.sum() > 300
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for name in ("means2d", "conics", "depths"):
        assert _rel(getattr(b, name)[vis], getattr(a, name)[vis]) < tol, name


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_projection_gradients_match_twin(dtype):
    g, cams = _scene(400, seed=2, dtype=dtype), _cams(n=3, dtype=dtype)
    grads = []
    for project in (impl.project, _cpu.project):
        gl = _leaf(g)
        c2w = cams.c2w.clone().requires_grad_(True)
        p = project(gl, Cameras(c2w, cams.K, cams.width, cams.height))
        vis = (p.radii > 0).all(-1)
        gen = torch.Generator().manual_seed(0)
        w = [torch.randn(t.shape, generator=gen, dtype=dtype) for t in (p.means2d, p.conics, p.depths)]
        loss = ((w[0] * p.means2d)[vis].sum() + (w[1] * p.conics)[vis].sum() + (w[2] * p.depths)[vis].sum())
        grads.append(torch.autograd.grad(loss, [gl.means, gl.quats_wxyz, gl.scales, c2w]))
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    for name, kern, twin in zip(("means", "quats", "scales", "c2w"), grads[1], grads[0]):
        assert _rel(kern, twin) < tol, name


# ---- rasterization ------------------------------------------------------------------------------


def _raster_inputs(seed, dtype, n=300, channels=5):
    g, cams = _scene(n, seed=seed, dtype=dtype), _cams(dtype=dtype)
    proj = impl.project(g, cams)
    gen = torch.Generator().manual_seed(seed)
    values = torch.randn(len(cams), len(g), channels, dtype=dtype, generator=gen)
    return proj, values, cams


@pytest.mark.parametrize("tile_size", [1, 2, 4, 8, 16, 32])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rasterizer_matches_twin_and_brute_force(tile_size, dtype):
    proj, values, cams = _raster_inputs(tile_size, dtype)
    W, H = cams.width, cams.height
    img, alpha = _cpu.rasterize(proj, values, W, H, tile_size=tile_size)
    twin_img, twin_alpha = impl.rasterize(proj, values, W, H)
    ref_img, ref_alpha = rasterize_reference(proj, values, W, H)
    assert twin_alpha.max() > 0.5, "the scene should cover part of the image"
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert (img - twin_img).abs().max() <= tol and (alpha - twin_alpha).abs().max() <= tol
    assert (img - ref_img).abs().max() <= tol and (alpha - ref_alpha).abs().max() <= tol


@pytest.mark.parametrize("tile_size", [1, 3, 8, 16])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rasterizer_gradients_match_twin(tile_size, dtype):
    proj, values, cams = _raster_inputs(10 + tile_size, dtype)
    W, H = cams.width, cams.height
    gen = torch.Generator().manual_seed(tile_size)
    g_img = torch.randn(len(cams), H, W, values.shape[-1], dtype=dtype, generator=gen)
    g_alpha = torch.randn(len(cams), H, W, 1, dtype=dtype, generator=gen)
    grads = []
    for raster in (lambda p, v: impl.rasterize(p, v, W, H), lambda p, v: _cpu.rasterize(p, v, W, H, tile_size)):
        leaves = [proj.means2d.detach().requires_grad_(), proj.conics.detach().requires_grad_(),
                  proj.opacities.detach().clone().requires_grad_(), values.clone().requires_grad_()]
        p = impl.Projection(leaves[0], leaves[1], proj.depths.detach(), leaves[2], proj.radii)
        img, alpha = raster(p, leaves[3])
        grads.append(torch.autograd.grad((img * g_img).sum() + (alpha * g_alpha).sum(), leaves))
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    for name, kern, twin in zip(("means2d", "conics", "opacities", "values"), grads[1], grads[0]):
        assert _rel(kern, twin) < tol, name


def test_early_termination_matches_brute_force():
    # Many opaque layers on one pixel drive transmittance below 1e-4: the stop rule must agree.
    n, dt = 40, torch.float64
    means = torch.zeros(n, 3, dtype=dt)
    means[:, 2] = torch.linspace(-0.5, 0.5, n, dtype=dt)
    means[:, :2] = 0.01 * torch.randn(n, 2, dtype=dt, generator=torch.Generator().manual_seed(3))
    g = Gaussians.from_rgb(means, torch.rand(n, 3, dtype=dt), torch.full((n, 3), 0.05, dtype=dt),
                           torch.full((n,), 0.95, dtype=dt))
    cams = Cameras.look_at(torch.tensor([[0.0, 0.0, -3.0]]), torch.zeros(3), up=(0, -1, 0), width=16, height=16,
                           fov_deg=30).to(dtype=dt)
    proj = _cpu.project(g, cams)
    values = torch.rand(1, n, 3, dtype=dt)
    img, alpha = _cpu.rasterize(proj, values, 16, 16, tile_size=4)
    ref_img, ref_alpha = rasterize_reference(proj, values, 16, 16)
    assert alpha.max() > 1 - 2e-4
    assert (img - ref_img).abs().max() < 1e-10 and (alpha - ref_alpha).abs().max() < 1e-10


def test_equal_depths_keep_index_order():
    # Two Gaussians at exactly the same depth: the lower index composites first, as in the reference.
    dt = torch.float64
    means = torch.tensor([[-0.02, 0.0, 0.0], [0.02, 0.0, 0.0]], dtype=dt)
    g = Gaussians.from_rgb(means, torch.eye(3, dtype=dt)[:2], torch.full((2, 3), 0.2, dtype=dt),
                           torch.tensor([0.7, 0.8], dtype=dt))
    cams = Cameras.look_at(torch.tensor([[0.0, 0.0, -3.0]]), torch.zeros(3), up=(0, -1, 0), width=20, height=20,
                           fov_deg=30).to(dtype=dt)
    proj = _cpu.project(g, cams)
    assert proj.depths[0, 0] == proj.depths[0, 1]
    values = torch.rand(1, 2, 3, dtype=dt)
    img, _ = _cpu.rasterize(proj, values, 20, 20, tile_size=8)
    ref, _ = rasterize_reference(proj, values, 20, 20)
    assert (img - ref).abs().max() < 1e-12


# ---- render(): the kernel against the torch backend ---------------------------------------------


def _render_both(g, cams, **kw):
    """Outputs and gradients (Gaussian fields, features) of backend "cpu" and backend "torch"."""
    results = []
    for backend in ("cpu", "torch"):
        gl = _leaf(g)
        feats = kw.get("features")
        feats = None if feats is None else feats.clone().requires_grad_(True)
        out = render(gl, cams, backend=backend, **{**kw, "features": feats})
        gen = torch.Generator().manual_seed(1)
        loss = sum((torch.randn(t.shape, generator=gen, dtype=t.dtype) * t).sum()
                   for t in (out.rgb, out.alpha, out.depth * out.alpha) + ((out.features,) if feats is not None else ()))
        leaves = [getattr(gl, f) for f in FIELDS] + ([feats] if feats is not None else [])
        results.append((out, torch.autograd.grad(loss, leaves)))
    return results


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_render_matches_torch_backend(sh_degree, dtype):
    g, cams = _scene(1000, seed=20 + sh_degree, dtype=dtype, sh_degree=sh_degree, grow=2.0), _cams(n=2, w=40, h=32, dtype=dtype)
    (a, ga), (b, gb) = _render_both(g, cams, background=(0.2, 0.5, 1.0))
    assert torch.equal(a.radii, b.radii) and b.alpha.max() > 0.5
    tol_img, tol_grad = (1e-5, 1e-4) if dtype == torch.float32 else (1e-12, 1e-10)
    for name in ("rgb", "alpha", "depth"):
        assert (getattr(a, name) - getattr(b, name)).abs().max() <= tol_img * (10 if name == "depth" else 1), name
    for name, kern, twin in zip(FIELDS, ga, gb):
        assert _rel(kern, twin) < tol_grad, name


@pytest.mark.parametrize("background", [None, "per_camera"])
def test_render_backgrounds_and_features_match(background):
    dt = torch.float32
    g, cams = _scene(1200, seed=31, dtype=dt, sh_degree=1, grow=2.0), _cams(n=3, w=40, h=32, dtype=dt)
    bg = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.5, 0.0], [0.1, 0.2, 0.3]]) if background else None
    feats = torch.randn(len(g), 3, generator=torch.Generator().manual_seed(4))
    (a, ga), (b, gb) = _render_both(g, cams, background=bg, features=feats)
    for name in ("rgb", "alpha", "features"):
        assert (getattr(a, name) - getattr(b, name)).abs().max() <= 1e-5, name
    assert (a.depth - b.depth).abs().max() <= 1e-4  # depth = composited z / alpha: z is ~2.5
    for name, kern, twin in zip(FIELDS + ("features",), ga, gb):
        assert _rel(kern, twin) < 1e-4, name


def test_pose_and_intrinsics_gradients():
    dt = torch.float64
    g, cams = _scene(300, seed=5, dtype=dt), _cams(n=2, dtype=dt)
    grads = []
    for backend in ("cpu", "torch"):
        c2w, K = cams.c2w.clone().requires_grad_(True), cams.K.clone().requires_grad_(True)
        out = render(g, Cameras(c2w, K, cams.width, cams.height), backend=backend)
        grads.append(torch.autograd.grad(out.rgb.square().sum(), [c2w, K]))
    assert _rel(grads[0][0], grads[1][0]) < 1e-10 and _rel(grads[0][1], grads[1][1]) < 1e-10
    assert grads[0][0].abs().max() > 0 and grads[0][1].abs().max() > 0


def test_gradcheck_rasterizer():
    cams = _cams(n=2, w=10, h=8)
    proj = impl.project(_scene(6, seed=3, grow=8.0), cams)
    values = torch.randn(2, 6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    inputs = (proj.means2d.detach().requires_grad_(), proj.conics.detach().requires_grad_(),
              proj.opacities.detach().clone().requires_grad_(), values.requires_grad_())

    def f(m, c, o, v):
        return _cpu.rasterize(impl.Projection(m, c, proj.depths, o, proj.radii), v, 10, 8, tile_size=4)

    assert (proj.radii > 0).all(-1).sum() >= 6
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_projection():
    g, cams = _scene(5, seed=6), _cams(n=2, w=16, h=12)
    g.means = g.means * 0.3  # all visible: culled Gaussians get no gradient by design
    assert (impl.project(g, cams).radii > 0).all()
    w2c = cams.w2c.clone().requires_grad_(True)
    inputs = (g.means.clone().requires_grad_(), g.quats_wxyz.clone().requires_grad_(),
              g.scales.clone().requires_grad_(), w2c)

    def f(m, q, s, w):
        means2d, conics, depths, _ = _cpu._ProjectFn.apply(m, q, s, w, g.opacities, cams.K, 16, 12, 0.3, 0.01, 1e10)
        return means2d, conics, depths

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_render():
    gen = torch.Generator().manual_seed(5)
    n, dt = 3, torch.float64
    means = (torch.randn(n, 3, dtype=dt, generator=gen) * 0.15).requires_grad_()
    quats = torch.nn.functional.normalize(torch.randn(n, 4, dtype=dt, generator=gen), dim=-1).requires_grad_()
    scales = (0.12 + 0.05 * torch.rand(n, 3, dtype=dt, generator=gen)).requires_grad_()
    opac = torch.tensor([0.5, 0.6, 0.4], dtype=dt).requires_grad_()
    sh = (0.3 * torch.randn(n, 4, 3, dtype=dt, generator=gen)).requires_grad_()
    feats = torch.randn(n, 2, dtype=dt, generator=gen).requires_grad_()
    cams = _cams(n=2, w=12, h=10)

    def f(m, q, s, o, c, ft):
        out = render(Gaussians(m, q, s, o, c), cams, background=(0.2, 0.3, 0.4), features=ft, backend="cpu")
        return out.rgb, out.alpha, out.depth * out.alpha, out.features

    assert torch.autograd.gradcheck(f, (means, quats, scales, opac, sh, feats), eps=1e-6, atol=1e-5, rtol=1e-3)


# ---- degenerate inputs --------------------------------------------------------------------------


def test_zero_gaussians():
    cams = _cams(n=2, w=8, h=6, dtype=torch.float32)
    out = render(Gaussians.empty(), cams, background=(0.5, 0.5, 0.5), backend="cpu")
    assert torch.all(out.rgb == 0.5) and torch.all(out.alpha == 0)
    proj = _cpu.project(Gaussians.empty(), cams)
    img, alpha = _cpu.rasterize(proj, torch.zeros(2, 0, 4), 8, 6)
    assert img.shape == (2, 6, 8, 4) and torch.all(img == 0) and torch.all(alpha == 0)


def test_everything_behind_the_camera():
    dt = torch.float32
    cam = Cameras.look_at(torch.tensor([[0.0, 0.0, -3.0]]), torch.zeros(3), up=(0, -1, 0), width=16, height=16).to(dtype=dt)
    means = torch.tensor([[0.0, 0.0, -4.0], [0.1, 0.0, -3.0], [0.0, 0.0, -2.995]], dtype=dt)  # behind, at, inside near
    g = _leaf(Gaussians.from_rgb(means, torch.ones(3, 3), torch.full((3, 3), 0.3), torch.full((3,), 0.9)))
    out = render(g, cam, backend="cpu", background=(0.1, 0.2, 0.3))
    assert (out.radii == 0).all() and out.alpha.max() == 0
    (out.rgb.sum() + out.depth.sum()).backward()
    for name in FIELDS:
        grad = getattr(g, name).grad
        assert grad is None or (torch.isfinite(grad).all() and grad.abs().max() == 0), name


def test_gaussians_larger_than_the_image():
    dt = torch.float64
    g = _scene(40, seed=7, dtype=dt, grow=1.0)
    g.scales = torch.tensor([1.5, 0.9, 0.4], dtype=dt).expand(40, 3).clone()  # footprints many times the image
    cams = _cams(n=2, w=24, h=20, dtype=dt)
    (a, ga), (b, gb) = _render_both(g, cams)
    assert (a.radii > 24).any()
    assert (a.rgb - b.rgb).abs().max() < 1e-12 and (a.alpha - b.alpha).abs().max() < 1e-12
    for name, kern, twin in zip(FIELDS, ga, gb):
        assert _rel(kern, twin) < 1e-10, name


def test_one_gaussian():
    dt = torch.float64
    g = Gaussians.from_rgb(torch.zeros(1, 3, dtype=dt), torch.tensor([[1.0, 0.5, 0.0]], dtype=dt),
                           torch.tensor([[0.3, 0.15, 0.05]], dtype=dt), torch.tensor([0.8], dtype=dt),
                           torch.tensor([[0.9, 0.3, -0.2, 0.1]], dtype=dt))
    cams = _cams(n=2, w=30, h=30, dtype=dt)
    (a, ga), (b, gb) = _render_both(g, cams)
    assert a.alpha.max() > 0.7
    assert (a.rgb - b.rgb).abs().max() < 1e-12
    for name, kern, twin in zip(FIELDS, ga, gb):
        assert _rel(kern, twin) < 1e-10, name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiny_scales_are_nan_free(dtype):
    g = _leaf(random_scene(200, seed=8, dtype=dtype).to(dtype=dtype))
    with torch.no_grad():
        g.scales.fill_(1e-8)
    out = render(g, _cams(n=2, w=32, h=24, dtype=dtype), backend="cpu", features=torch.ones(len(g), 1, dtype=dtype))
    for t in (out.rgb, out.alpha, out.depth, out.features):
        assert torch.isfinite(t).all()
    (out.rgb.sum() + out.depth.sum() + out.alpha.sum()).backward()
    for name in FIELDS:
        assert torch.isfinite(getattr(g, name).grad).all(), name


# ---- threads, build, fallback -------------------------------------------------------------------


def test_results_do_not_depend_on_threads():
    g, cams = _scene(2000, seed=9, dtype=torch.float32, grow=2.0), _cams(n=2, w=64, h=48, dtype=torch.float32)
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            gl = _leaf(g)
            out = render(gl, cams, backend="cpu")
            (out.rgb.sum() + out.depth.sum()).backward()
            runs.append([out.rgb, out.alpha] + [getattr(gl, f).grad for f in FIELDS])
    finally:
        torch.set_num_threads(before)
    for a, b in zip(*runs):
        assert torch.equal(a, b)  # tiles are independent and gradients are summed in a fixed order


def test_auto_backend_uses_the_kernel_on_cpu():
    g, cams = _leaf(_scene(300, seed=10, dtype=torch.float32)), _cams(dtype=torch.float32)
    auto = render(g, cams)
    assert auto.alpha.grad_fn.name() == "_RasterizeFnBackward"
    assert render(g, cams, backend="torch").alpha.grad_fn.name() != "_RasterizeFnBackward"
    torch.testing.assert_close(auto.rgb, render(g, cams, backend="cpu").rgb, atol=0, rtol=0)


def test_importing_builds_nothing():
    code = "import renderer, renderer._cpu as c; assert c._state == {}, c._state"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_fallback_warns_once_without_the_kernel(monkeypatch, caplog):
    def broken(verbose=False, isa=None):
        raise RuntimeError("no C++ compiler ('c++' is not on PATH)")

    monkeypatch.setattr(_cpu, "build", broken)
    monkeypatch.setattr(_cpu, "_state", {})
    g, cams = _scene(200, seed=11, dtype=torch.float32), _cams(dtype=torch.float32)
    with caplog.at_level(logging.WARNING, logger="renderer._cpu"):
        a = render(g, cams)
        b = render(g, cams)
    lines = [r.getMessage() for r in caplog.records if "CPU splatting kernel unavailable" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0] and "no C++ compiler" in lines[0]
    torch.testing.assert_close(a.rgb, render(g, cams, backend="torch").rgb, atol=0, rtol=0)
    torch.testing.assert_close(a.rgb, b.rgb, atol=0, rtol=0)
    assert not _cpu.has_cpu_kernel()
    with pytest.raises(ReconError, match="unavailable"):
        render(g, cams, backend="cpu")


def test_backend_errors():
    g = random_scene(10)
    with pytest.raises(ReconError, match="backend"):
        render(g, _cams(dtype=torch.float32), backend="opengl")
    with pytest.raises(ReconError, match="float32/float64"):
        render(g.to(dtype=torch.bfloat16), _cams(dtype=torch.bfloat16), backend="cpu")
