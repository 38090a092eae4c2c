"""Surface extraction: analytic sphere through the SDF path and through Gaussians + TSDF fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.eval.metrics import mesh_metrics
from recon.export import (
    TsdfOptions,
    clean_mesh,
    fuse_tsdf,
    gaussian_color_fn,
    mesh_from_gaussians,
    mesh_from_sdf,
    mesh_report,
    point_depth,
    sdf_color_fn,
    virtual_cameras,
)
from renderer import Cameras, Gaussians
from tests.recon.export.conftest import icosphere, sphere_gaussians

RADIUS = 0.5
CENTER = (0.1, -0.05, 0.3)  # off the origin, so a wrong camera/extrinsic convention shows


def sphere_field(p: torch.Tensor):
    c = torch.tensor(CENTER)
    return (p - c).norm(dim=-1) - RADIUS, ((p - c) / RADIUS * 0.5 + 0.5).clamp(0, 1)


def test_sdf_sphere_is_accurate_closed_and_coloured():
    mesh = mesh_from_sdf(sphere_field, resolution=48, extent=0.9)
    gt = icosphere(RADIUS, subdivisions=5, center=CENTER)
    m = mesh_metrics(mesh, gt, samples=20_000)
    assert m["chamfer_l1"] < 0.02 * RADIUS, m  # 20k samples: the sampling floor alone is ~1.2% of r
    assert m["fscore"] > 0.95, m
    exact = ((mesh.vertices - torch.tensor(CENTER)).norm(dim=-1) - RADIUS).abs()
    assert float(exact.max()) < 0.01 * RADIUS  # vertices on the analytic surface
    rep = mesh_report(mesh)
    assert rep["watertight"] and rep["genus"] == 0 and rep["components"] == 1, rep
    expected = sdf_color_fn(sphere_field)(mesh.vertices.numpy())
    assert torch.allclose(mesh.vertex_colors, torch.tensor(expected, dtype=torch.float32), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("source, options", [
    ("render", TsdfOptions(views=40, image_size=128, resolution=64, depth_source="render")),
    ("points", TsdfOptions(views=32, resolution=64, depth_source="points")),
])
def test_gaussian_sphere_through_tsdf_is_accurate(source, options):
    g = sphere_gaussians(3000, RADIUS, CENTER)
    mesh = mesh_from_gaussians(g, options)
    gt = icosphere(RADIUS, subdivisions=5, center=CENTER)
    raw = mesh_metrics(mesh, gt, samples=20_000)
    # render: isotropic blobs of sigma 0.04 r put the expected-depth surface ~1 sigma out;
    # points: the centres lie on the sphere, the 48-px views and 64^3 grid bound the error
    assert raw["chamfer_l1"] < 0.05 * RADIUS, raw
    cleaned = clean_mesh(mesh)
    m = mesh_metrics(cleaned, gt, samples=20_000)
    assert m["chamfer_l1"] < 0.05 * RADIUS, m
    rep = mesh_report(cleaned)
    assert rep["components"] == 1, rep
    # colours come from the Gaussians: the top (+z) is bluish-white, per the normal colouring
    top = cleaned.vertices[:, 2] > CENTER[2] + 0.45
    assert top.any() and float(cleaned.vertex_colors[top, 2].mean()) > 0.8


def test_point_depth_of_a_dense_plane_is_exact():
    # a 400 x 400 lattice on the plane z = 2 seen head-on by a camera at the origin looking down +z
    xs = torch.linspace(-1, 1, 400)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    means = torch.cat([grid, torch.full((len(grid), 1), 2.0)], 1)
    g = Gaussians.from_rgb(means, torch.full_like(means, 0.5), torch.full_like(means, 0.005), torch.full((len(means),), 0.9))
    cams = Cameras.look_at(torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([0.0, 0.0, 1.0]), (0.0, -1.0, 0.0), 40.0, 64, 64)
    depth, alpha = point_depth(g, cams)
    assert alpha.shape == (1, 64, 64) and bool((alpha == 1).all())  # the plane fills the 40-degree view
    assert torch.allclose(depth, torch.full_like(depth, 2.0), atol=1e-5)
    # opacity below the threshold: not a surface sample
    g.opacities[:] = 0.3
    depth, alpha = point_depth(g, cams)
    assert float(alpha.sum()) == 0 and float(depth.abs().sum()) == 0


def test_point_depth_keeps_the_nearest_and_marks_holes_unknown():
    cams = Cameras.look_at(torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([0.0, 0.0, 1.0]), (0.0, -1.0, 0.0), 60.0, 32, 32)
    # a front layer at depth 3 over the left 24 columns and a back layer at depth 5 everywhere;
    # pixel (10, 12) has no sample at all, pixel (20, 5) only the back layer (seen through a hole)
    K = cams.K[0]
    r, c = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    x, y = (c + 0.5 - K[0, 2]) / K[0, 0], (r + 0.5 - K[1, 2]) / K[1, 1]
    empty = (r == 10) & (c == 12)
    front = (c < 24) & ~empty & ~((r == 20) & (c == 5))
    back = ~empty
    pts = [torch.stack([x[m] * d, y[m] * d, torch.full_like(x[m], d)], -1) for m, d in ((back, 5.0), (front, 3.0))]
    means = torch.cat(pts)
    g = Gaussians.from_rgb(means, torch.full_like(means, 0.5), torch.full_like(means, 0.01), torch.full((len(means),), 0.9))
    depth, alpha = point_depth(g, cams, gap=0.5)
    a, d = alpha[0], depth[0]
    assert float(a[10, 12]) == 0.5 and float(a[20, 5]) == 0.5  # the hole and the see-through pixel: unknown
    assert float(a[5, 24]) == 0.5  # just behind the front layer's edge: more than gap behind a neighbour
    surface = (a == 1)
    assert torch.allclose(d[surface & front], torch.full_like(d[surface & front], 3.0), atol=1e-4)  # nearest wins
    assert torch.allclose(d[:, 26:], torch.full_like(d[:, 26:], 5.0), atol=1e-4) and bool((a[:, 26:] == 1).all())
    assert float(d[10, 12]) == 0 and float(d[20, 5]) == 0
    # an empty pixel outside a silhouette carves free space
    lone = Gaussians.from_rgb(means[:1], torch.full((1, 3), 0.5), torch.full((1, 3), 0.01), torch.full((1,), 0.9))
    _, a1 = point_depth(lone, cams)
    assert float(a1.sum()) == 1.0 and int((a1 == 0).sum()) == 32 * 32 - 1


def test_coarse_to_fine_fusion_gives_the_same_surface():
    g = sphere_gaussians(20_000, RADIUS, CENTER, sigma=0.01)
    center = torch.tensor(CENTER)
    cams = virtual_cameras(center, RADIUS * 1.1, 24, 64, 40.0)
    depth, alpha = point_depth(g, cams)
    half, res = RADIUS * 1.2, 49
    trunc = 4 * 2 * half / (res - 1)
    full = fuse_tsdf(depth, alpha, cams, center, half, res, trunc, coarse_to_fine=False)
    fast = fuse_tsdf(depth, alpha, cams, center, half, res, trunc, coarse_to_fine=True)
    assert torch.equal(full > 0, fast > 0)
    sign = (full > 0).float()[None, None]
    near = (torch.nn.functional.max_pool3d(sign, 3, 1, 1) != -torch.nn.functional.max_pool3d(-sign, 3, 1, 1))[0, 0]
    assert int(near.sum()) > 1000 and torch.equal(full[near], fast[near])  # exact wherever marching cubes looks
    # and the fused surface is the sphere: nodes well inside negative, well outside positive
    axis = torch.linspace(-half, half, res)
    pts = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    r = pts.norm(dim=-1)
    assert bool((fast[r < RADIUS - 3 * trunc] < 0).all()) and bool((fast[r > RADIUS + 3 * trunc] > 0).all())


def test_gaussian_colours_ignore_faint_gaussians():
    # an opaque red Gaussian and, closer to the query point, a faint white one (a background pixel)
    means = torch.tensor([[0.0, 0.0, 0.0]] * 8 + [[0.0, 0.0, 0.01]] * 8)
    rgb = torch.tensor([[1.0, 0.0, 0.0]] * 8 + [[1.0, 1.0, 1.0]] * 8)
    opac = torch.tensor([0.9] * 8 + [0.3] * 8)
    g = Gaussians.from_rgb(means, rgb, torch.full((16, 3), 0.05), opac)
    query = np.array([[0.0, 0.0, 0.02]])
    mixed = gaussian_color_fn(g)(query)[0]
    assert mixed[1] > 0.2  # all Gaussians: the faint white ones pull the colour towards white
    pure = gaussian_color_fn(g, min_opacity=0.5)(query)[0]
    assert np.allclose(pure, [1.0, 0.0, 0.0], atol=1e-6)
    # fewer than k opaque Gaussians: all of them take part
    assert np.allclose(gaussian_color_fn(g, k=12, min_opacity=0.5)(query)[0], gaussian_color_fn(g, k=12)(query)[0])
