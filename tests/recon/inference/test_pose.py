"""Cameras from pointmaps on exact synthetic pointmaps, and the similarity tools of the pose metrics."""

from __future__ import annotations

import math

import pytest
import torch
from kornia.geometry.conversions import axis_angle_to_rotation_matrix

from recon.core.geometry import align_similarity, camera_errors
from recon.data.procedural.item import make_item
from recon.inference.pose import cameras_from_pointmaps, focal_from_own_points
from tests.recon.models.helpers import gt_pointmap, relative_c2w

SIZE = 64


@pytest.fixture(scope="module")
def item():
    return make_item(3, n_inputs=4, n_targets=0, size=SIZE)


def _rotation_deg(Ra: torch.Tensor, Rb: torch.Tensor) -> torch.Tensor:
    cos = ((Ra.transpose(-1, -2) @ Rb).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.rad2deg(torch.acos(cos.clamp(-1, 1)))


@pytest.mark.parametrize("outliers", [False, True])
def test_cameras_from_exact_pointmaps(item, outliers):
    """The solver returns the true cameras: rotation < 0.5 deg, centre < 1% of the rig, focal < 1%.

    With ``outliers``: 20% of the object pixels get points thrown off by ~half the object size at low
    confidence, and another 5% at full confidence (only RANSAC / the robust focal fit remove those).
    Background pixels carry random points at the lowest confidence throughout.
    """
    views = item.inputs
    pts, valid = gt_pointmap(views)
    scale = pts[valid].norm(dim=-1).mean()  # the pointmap's arbitrary units: mean distance 1
    pts = pts / scale
    gen = torch.Generator().manual_seed(1)
    conf = torch.where(valid, 5.0, 1.0)
    pts = torch.where(valid[..., None], pts, torch.randn(pts.shape, generator=gen))
    if outliers:
        r = torch.rand(valid.shape, generator=gen)
        for bad, c in ((valid & (r < 0.2), 1.2), (valid & (r >= 0.2) & (r < 0.25), 5.0)):
            pts[bad] += 0.5 * torch.randn(int(bad.sum()), 3, generator=gen)
            conf[bad] = c

    got = cameras_from_pointmaps(pts, conf, SIZE, SIZE)

    gt = relative_c2w(views)
    gt[:, :3, 3] /= scale
    assert got.solved.all()
    assert torch.equal(got.c2w[0], torch.eye(4))
    rig = torch.cdist(gt[:, :3, 3], gt[:, :3, 3]).max()
    assert (_rotation_deg(got.c2w[:, :3, :3], gt[:, :3, :3]) < 0.5).all()
    assert ((got.c2w[:, :3, 3] - gt[:, :3, 3]).norm(dim=-1) < 0.01 * rig).all()
    assert torch.allclose(got.K[:, 0, 0], views.cameras.K[:, 0, 0], rtol=0.01)
    assert torch.allclose(got.K[:, 1, 1], got.K[:, 0, 0])
    assert torch.allclose(got.K[:, :2, 2], torch.tensor([SIZE / 2, SIZE / 2]).expand(4, 2))
    assert (got.reproj_px < 0.1).all()
    assert (got.inlier_ratio > (0.9 if outliers else 0.99)).all()
    # The same numbers through the protocol metric (similarity-aligned, so also scale-free).
    rot, trans = camera_errors(got.c2w, views.cameras.c2w)
    assert (rot < 0.5).all() and (trans < 0.01).all()


def _degenerate(kind: str) -> torch.Tensor:
    pts = torch.randn(2, 16, 16, 3, generator=torch.Generator().manual_seed(0))
    if kind == "constant":
        pts = torch.tensor([0.0, 0.0, 1.0]).expand(2, 16, 16, 3).clone()
    elif kind == "nan":
        pts[:] = float("nan")
    elif kind == "behind":
        pts[..., 2] = -1.0 - pts[..., 2].abs()
    return pts


@pytest.mark.parametrize("kind", ["random", "constant", "nan", "behind"])
def test_unsolvable_views_are_flagged(kind):
    """Points that fit no camera (noise, all equal, NaN, behind view 0) are reported as unsolved,
    without raising, and the fallback cameras are still usable (identity pose, positive focal)."""
    got = cameras_from_pointmaps(_degenerate(kind), torch.full((2, 16, 16), 5.0), 16, 16)
    assert not got.solved.any()
    assert torch.equal(got.c2w, torch.eye(4).expand(2, 4, 4))
    assert torch.isfinite(got.K).all() and (got.K[:, 0, 0] > 0).all()


def test_focal_fit_is_robust_to_gross_outliers():
    """Weighted-median start + inlier least squares: with 40% of the points thrown off by ~30 px the
    focal length is still right to 0.1% (plain least squares would be off by tens of percent; the
    few outliers that land within the 1 px threshold by chance account for the rest)."""
    gen = torch.Generator().manual_seed(0)
    p = torch.rand(500, 3, generator=gen) * torch.tensor([2.0, 2.0, 1.0]) + torch.tensor([-1.0, -1.0, 2.0])
    f, c = 77.0, (32.0, 24.0)
    uv = f * p[:, :2] / p[:, 2:] + torch.tensor(c)
    uv[:200] += 30 * torch.randn(200, 2, generator=gen)
    got, med, ratio = focal_from_own_points(p, uv, torch.ones(500), c, max_error_px=1.0)
    assert got == pytest.approx(f, rel=1e-3)
    assert med < 0.05 and 0.55 < ratio < 0.65


def _random_rotation(gen: torch.Generator) -> torch.Tensor:
    """[3, 3] float64, orthonormal to float64 precision."""
    return axis_angle_to_rotation_matrix(torch.randn(1, 3, generator=gen, dtype=torch.float64))[0]


def test_align_similarity_recovers_a_similarity():
    gen = torch.Generator().manual_seed(0)
    src = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    R, t, s = _random_rotation(gen), torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), 2.7
    dst = s * src @ R.T + t
    s_got, R_got, t_got = align_similarity(src, dst)
    assert s_got == pytest.approx(s, rel=1e-9)
    assert torch.allclose(R_got, R, atol=1e-9) and torch.allclose(t_got, t, atol=1e-9)
    assert torch.linalg.det(R_got) == pytest.approx(1.0)
    # A reflected point set still gets a proper rotation (the closest one), never a reflection.
    _, R_refl, _ = align_similarity(src, src * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))
    assert torch.linalg.det(R_refl) == pytest.approx(1.0)


@pytest.mark.parametrize("n_views", [2, 4])
def test_camera_errors_are_similarity_invariant(n_views):
    """A predicted rig that differs from the GT by a similarity has zero error; rotating one camera
    by 3 degrees about its own centre shows up as 3 degrees on that camera and nothing else
    (with 2 views the rotation alignment comes from the orientations, not the collinear centres)."""
    from renderer import Cameras

    gt = Cameras.orbit(n_views, radius=3.0, elevation_deg=25.0).c2w.double()
    gen = torch.Generator().manual_seed(0)
    S = torch.eye(4, dtype=torch.float64)
    S[:3, :3], S[:3, 3] = _random_rotation(gen), torch.tensor([0.3, 1.0, -2.0], dtype=torch.float64)
    pred = S @ gt
    pred[:, :3, 3] *= 0.37  # and rescaled about the origin (rotation columns untouched)
    rot, trans = camera_errors(pred, gt)
    assert rot.max() < 1e-3 and trans.max() < 1e-6

    turn = axis_angle_to_rotation_matrix(torch.tensor([[0.0, math.radians(3.0), 0.0]]))[0].double()
    pred[1, :3, :3] = pred[1, :3, :3] @ turn
    rot, trans = camera_errors(pred, gt)
    if n_views > 2:
        assert rot[1] == pytest.approx(3.0, abs=1e-3)
        assert torch.cat([rot[:1], rot[2:]]).max() < 1e-3
        assert trans.max() < 1e-6
    else:  # the chordal mean spreads the 3 degrees over both cameras, and turns the centres by half
        assert rot.sum() == pytest.approx(3.0, abs=0.05)
        assert 0 < trans.max() <= 2 * math.sin(math.radians(1.5) / 2) + 1e-6  # chord of a 1.5 degree turn
