"""Metrics against hand-computed values: PSNR of a known MSE, SSIM of identical images, depth
errors on a few pixels, Chamfer of a shifted point set, F-score edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recon.core.types import Mesh
from recon.eval.metrics import (
    bounding_diagonal,
    chamfer_fscore,
    depth_errors,
    mesh_metrics,
    nearest_distances,
    nearest_distances_reference,
    psnr,
    sample_mesh_points,
    ssim,
)


def test_psnr_of_known_mse():
    target = torch.full((8, 8, 3), 0.5)
    assert psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    assert psnr(target, target) == math.inf
    # Masked: only the left half counts, where the error is 0.01 (40 dB); the right half is far off.
    pred = target.clone()
    pred[:, :4] += 0.01
    pred[:, 4:] = 0.0
    mask = torch.zeros(8, 8, 1)
    mask[:, :4] = 1.0
    assert psnr(pred, target, mask) == pytest.approx(40.0, abs=1e-3)
    assert math.isnan(psnr(pred, target, torch.zeros(8, 8, 1)))
    # Values outside [0, 1] are clamped before scoring.
    assert psnr(target + 5.0, target) == pytest.approx(-10 * math.log10(0.25), abs=1e-4)


def test_ssim_identical_and_different():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(32, 40, 3, generator=g)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-5)
    noisy = (img + 0.2 * torch.randn(32, 40, 3, generator=g)).clamp(0, 1)
    assert 0.0 < ssim(noisy, img) < 0.9
    assert ssim(noisy, img) == pytest.approx(ssim(img, noisy), abs=1e-6)  # symmetric
    assert ssim(img[:6, :6], img[:6, :6]) == pytest.approx(1.0, abs=1e-5)  # smaller than the window


def test_depth_errors_hand_computed():
    gt = torch.tensor([[2.0, 4.0], [0.0, 1.0]]).reshape(2, 2, 1)
    pred = torch.tensor([[2.5, 3.0], [7.0, 9.0]]).reshape(2, 2, 1)
    alpha = torch.tensor([[0.9, 0.8], [0.9, 0.1]]).reshape(2, 2, 1)
    out = depth_errors(pred, alpha, gt)  # scored: (0,0) and (0,1); (1,0) has no GT, (1,1) is transparent
    assert out["depth_abs_rel"] == pytest.approx((0.5 / 2 + 1.0 / 4) / 2)
    assert out["depth_rmse"] == pytest.approx(math.sqrt((0.25 + 1.0) / 2))
    assert out["depth_coverage"] == pytest.approx(2 / 3)
    none = depth_errors(pred, torch.zeros_like(alpha), gt)
    assert math.isnan(none["depth_rmse"]) and none["depth_coverage"] == 0.0


def _grid_points(n=6, spacing=1.0):
    r = np.arange(n) * spacing
    return np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)


def test_chamfer_of_shifted_set_equals_shift():
    pts = _grid_points()
    shift = np.array([0.03, -0.04, 0.0])  # |shift| = 0.05, far below half the spacing
    out = chamfer_fscore(pts + shift, pts, tau=0.1)
    assert out["chamfer_l1"] == pytest.approx(0.05, abs=1e-12)
    assert out["accuracy"] == pytest.approx(0.05) and out["completeness"] == pytest.approx(0.05)
    assert out["fscore"] == 1.0 and out["precision"] == 1.0 and out["recall"] == 1.0
    assert chamfer_fscore(pts + shift, pts, tau=0.04)["fscore"] == 0.0  # every point just outside tau


def test_fscore_edge_cases():
    pts = _grid_points(4)
    # A subset: perfectly precise, incomplete.
    half = pts[: len(pts) // 2]
    out = chamfer_fscore(half, pts, tau=0.1)
    assert out["precision"] == 1.0 and out["recall"] == pytest.approx(0.5)
    assert out["fscore"] == pytest.approx(2 * 0.5 / 1.5)
    assert out["accuracy"] == 0.0 and out["completeness"] > 0
    # Empty prediction: F = 0, Chamfer infinite; empty GT or tau <= 0 are errors.
    empty = chamfer_fscore(np.zeros((0, 3)), pts, tau=0.1)
    assert empty["fscore"] == 0.0 and empty["chamfer_l1"] == math.inf
    with pytest.raises(ValueError):
        chamfer_fscore(pts, np.zeros((0, 3)), tau=0.1)
    with pytest.raises(ValueError):
        chamfer_fscore(pts, pts, tau=0.0)


def test_nearest_distances_match_the_brute_force_twin():
    rng = np.random.default_rng(0)
    q, p = rng.normal(size=(300, 3)), rng.normal(size=(500, 3))
    reference = nearest_distances_reference(q, p, chunk=64)
    np.testing.assert_allclose(nearest_distances(q, p), reference, rtol=1e-9, atol=1e-12)
    assert np.isinf(nearest_distances(q, p[:0])).all() and np.isinf(nearest_distances_reference(q, p[:0])).all()


def _cube(offset=(0.0, 0.0, 0.0)) -> Mesh:
    import trimesh

    m = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    return Mesh(torch.tensor(m.vertices + np.asarray(offset), dtype=torch.float32), torch.tensor(m.faces))


def test_mesh_metrics_on_cubes():
    pts = sample_mesh_points(_cube().vertices, _cube().faces, 2000, seed=3)
    assert pts.shape == (2000, 3) and np.abs(pts).max() <= 0.5 + 1e-6
    # Identical surfaces score F ~ 1 once the sample spacing (sqrt(6 / 20000) ~ 0.017) is below tau.
    same = mesh_metrics(_cube(), _cube(), samples=20000, tau_rel=0.02)
    assert same["gt_diagonal"] == pytest.approx(math.sqrt(3), abs=0.01)
    assert same["tau"] == pytest.approx(0.02 * same["gt_diagonal"])
    assert same["fscore"] > 0.9 and same["chamfer_l1"] < 0.01
    far = mesh_metrics(_cube((1.0, 0.0, 0.0)), _cube(), samples=5000, tau_rel=0.02)
    assert far["fscore"] < 0.3 and far["chamfer_l1"] > 0.2
    assert bounding_diagonal(np.zeros((0, 3))) == 0.0
